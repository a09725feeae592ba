//! The worker runtime: register handlers by kind, and a `Worker` claims tasks into its
//! slots, keeps every lease alive with one batched heartbeat, cancels handlers whose lease
//! is lost, and ends each attempt (complete, fail, release).
//!
//! | file | job |
//! |---|---|
//! | `runtime.rs` | builder and its checks, start, handle, graceful shutdown |
//! | `claim.rs` | one claim loop per slot band, long-polling with the band's `min_priority` |
//! | `slots.rs` | general and reserved slots per priority band |
//! | `heartbeat.rs` | the one batched heartbeat per worker: renewals, progress, cancels |
//! | `lease.rs` | each lease's local deadline, pending progress and cancellation token |
//! | `runner.rs` | one task: the handler in its own tokio task, then complete/fail/release |
//! | `context.rs` | `TaskContext`, what a handler sees |
//! | `handler.rs` | `Handler`, `TaskError` |
//! | `compose.rs` | several handlers in series under one lease |
//! | `stats.rs` | `WorkerStats` |
//! | `limits.rs` | every limit and default |
//!
//! Delivery is at least once: a handler may run again after its lease was lost (counted in
//! `WorkerStats::lease_lost`). The fencing token (`TaskContext::token`) lets downstream
//! stores refuse the stale run's writes.

mod claim;
mod compose;
mod context;
mod handler;
mod heartbeat;
mod lease;
pub mod limits;
mod runner;
mod runtime;
mod slots;
mod stats;

pub use compose::compose;
pub use context::TaskContext;
pub use handler::{Handler, HandlerResult, IntoHandler, TaskError};
pub use lease::CancelReason;
pub use runner::PANIC_CODE;
pub use runtime::{Worker, WorkerBuilder, WorkerHandle};
pub use stats::WorkerStats;
