//! The worker runtime: register handlers by kind, and a `Worker` claims tasks into its
//! slots, keeps every lease alive with one batched heartbeat, cancels handlers whose lease
//! is lost, and ends each attempt (complete, fail, release).
//!
//! | file | job |
//! |---|---|
//! | `runtime.rs` | builder and its checks, start, handle, graceful shutdown |
//! | `shared.rs` | `Shared`: what the loops and runners share (config, handlers, leases, slots) |
//! | `claim.rs` | one claim loop per slot band, long-polling with the band's `min_priority` |
//! | `admit.rs` | a claimed task runs here, or is released unstarted |
//! | `slots.rs` | general and reserved slots per priority band |
//! | `heartbeat.rs` | the one batched heartbeat per worker: renewals, progress, cancels |
//! | `beat_plan.rs` | the heartbeat's decisions, pure: when, which leases, patience, verdicts |
//! | `lease.rs` | each lease's local deadline, pending progress and cancellation token |
//! | `deadline.rs` | the local deadline's rules, pure: granted, renewed, passed, too late |
//! | `runner.rs` | one task: the handler in its own tokio task, its deadline watched |
//! | `end.rs` | the call that ends an attempt (complete/fail/release), retried |
//! | `end_plan.rs` | which call ends an attempt and how it is retried, pure |
//! | `context.rs` | `TaskContext`, what a handler sees |
//! | `handler.rs` | `Handler`, `TaskError` |
//! | `compose.rs` | several handlers in series under one lease |
//! | `stats.rs` | `WorkerStats` |
//! | `limits.rs` | every limit and default |
//!
//! Delivery is at least once: a handler may run again after its lease was lost (counted in
//! `WorkerStats::lease_lost`). The fencing token (`TaskContext::token`) lets downstream
//! stores refuse the stale run's writes.
//!
//! Dependencies point one way: `runtime` → `claim`, `heartbeat` → `runner` → `admit` →
//! `end` → `shared`; the `*_plan` and `deadline` modules hold decisions without I/O and
//! depend on nothing that does I/O.

mod admit;
mod beat_plan;
mod claim;
mod compose;
mod context;
mod deadline;
mod end;
mod end_plan;
mod handler;
mod heartbeat;
mod lease;
pub mod limits;
mod runner;
mod runtime;
mod shared;
mod slots;
mod stats;

pub use compose::compose;
pub use context::TaskContext;
pub use end_plan::PANIC_CODE;
pub use handler::{Handler, HandlerResult, IntoHandler, TaskError};
pub use lease::CancelReason;
pub use runtime::{Worker, WorkerBuilder, WorkerHandle};
pub use stats::WorkerStats;
