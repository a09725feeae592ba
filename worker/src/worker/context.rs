//! `TaskContext`: what a handler knows about its attempt and can do besides returning.

use std::sync::Arc;
use std::time::Duration;

use taskswarm_api as api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handler::TaskError;
use super::lease::{CancelReason, Lease};
use super::limits::PROGRESS_BYTES_MAX;

/// One attempt of one task, as seen by its handler. Cheap to clone; every clone (and every
/// `compose` step) sees the same lease.
#[derive(Debug, Clone)]
pub struct TaskContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    queue: String,
    kind: String,
    priority: i32,
    attempt: u32,
    max_attempts: u32,
    group: Option<String>,
    worker: String,
    lease: Arc<Lease>,
}

impl TaskContext {
    pub(crate) fn new(task: &api::ClaimedTask, worker: &str, lease: Arc<Lease>) -> TaskContext {
        TaskContext {
            inner: Arc::new(Inner {
                id: task.id,
                queue: task.queue.clone(),
                kind: task.kind.clone(),
                priority: task.priority,
                attempt: task.attempt,
                max_attempts: task.max_attempts,
                group: task.group.clone(),
                worker: worker.to_owned(),
                lease,
            }),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    pub fn kind(&self) -> &str {
        &self.inner.kind
    }

    pub fn priority(&self) -> i32 {
        self.inner.priority
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    pub fn group(&self) -> Option<&str> {
        self.inner.group.as_deref()
    }

    pub fn worker_id(&self) -> &str {
        &self.inner.worker
    }

    /// The fencing token of this attempt's lease. Pass it to any downstream store that
    /// should reject a stale writer: a later attempt always holds a larger token.
    pub fn token(&self) -> u64 {
        self.inner.lease.token
    }

    /// When the worker will give up on the lease if no heartbeat renews it (local clock).
    pub fn lease_deadline(&self) -> Instant {
        self.inner.lease.deadline()
    }

    /// Records progress; it is sent on the next heartbeat (a later call before then
    /// replaces it). Refused if larger than the server accepts, because the server would
    /// refuse the whole heartbeat of this lease.
    pub fn progress(&self, value: serde_json::Value) -> Result<(), TaskError> {
        let bytes = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
        if bytes > PROGRESS_BYTES_MAX {
            return Err(TaskError::permanent(format!(
                "progress of {bytes} bytes exceeds {PROGRESS_BYTES_MAX}"
            ))
            .with_code("progress_too_large"));
        }
        self.inner.lease.set_progress(value);
        Ok(())
    }

    /// Fires when the task is cancelled, its lease is lost or its local deadline passes,
    /// or the worker's shutdown grace ends. A handler should then stop and return.
    pub fn cancellation(&self) -> CancellationToken {
        self.inner.lease.token().clone()
    }

    /// Completes when the cancellation token fires.
    pub async fn cancelled(&self) {
        self.inner.lease.token().cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.lease.token().is_cancelled()
    }

    /// Why the token fired, once it has.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.inner.lease.reason()
    }

    /// Gives the task back without using an attempt, to run again after `delay` (here or
    /// on another worker): taskdist's "worker rejects a task". Whatever the handler then
    /// returns, the worker releases the task; return the error this gives, for clarity:
    /// `return Err(ctx.release(Duration::from_secs(5)))`.
    pub fn release(&self, delay: Duration) -> TaskError {
        self.inner.lease.request_release(delay);
        TaskError::retryable("released by the handler").with_code("released")
    }
}
