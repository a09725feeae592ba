//! taskswarm's Rust client and worker runtime.
//!
//! - [`Client`]: every API call. Configured with one or more node URLs, it follows `307`
//!   redirects to the leader itself, remembers the leader, rotates through nodes on
//!   connection errors and `503 no_leader`, and gives every enqueue an idempotency key so
//!   a retry after a timeout never creates a second task. Errors tell a refusal
//!   ([`ClientError::Rejected`]) from an unknown outcome ([`ClientError::Indeterminate`]).
//! - [`Worker`]: register handlers by kind; it claims, heartbeats all its leases in one
//!   request, cancels handlers whose lease is lost, and completes or fails tasks.
//!
//! This crate depends on the wire types (`taskswarm-api`) only: never on the state
//! machine or openraft.

mod client;
mod enqueue_batcher;
mod error;
mod sse;
mod transport;
mod worker;

pub use worker::{
    compose, limits as worker_limits, CancelReason, Handler, HandlerResult, IntoHandler,
    TaskContext, TaskError, Worker, WorkerBuilder, WorkerHandle, WorkerStats, PANIC_CODE,
};

pub use client::{
    Client, ClientConfig, GroupHandle, TaskHandle, TaskOutcome, DEFAULT_SERVERS, SERVERS_ENV,
};
pub use enqueue_batcher::{EnqueueBatcher, BATCH_TASKS_MAX, LINGER_MAX};
pub use error::ClientError;
pub use taskswarm_api as api;
pub use transport::{REDIRECT_HOPS_MAX, REDIRECT_UNREACHABLE_MAX, REDIRECT_UNREACHABLE_MIN};
