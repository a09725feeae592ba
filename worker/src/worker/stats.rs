//! Counters of what a worker did, readable while it runs and returned by its shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a worker's counters. Every claimed task ends in exactly one of
/// `completed`, `failed`, `released`, `cancelled`, `lease_lost` or `abandoned`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Tasks the cluster leased to this worker.
    pub claimed: u64,
    /// Completes the cluster accepted (a retry answered `duplicate` counts once).
    pub completed: u64,
    /// Attempts reported failed (handler errors and panics).
    pub failed: u64,
    /// Tasks given back without using an attempt (`ctx.release`, shutdown, a claim answer
    /// that arrived past its local deadline).
    pub released: u64,
    /// Tasks ended `cancelled` after a cancel reached their handler.
    pub cancelled: u64,
    /// Attempts whose lease was lost or ran out locally: their results were dropped (or a
    /// complete was refused with `lease_lost`). Each may mean the task runs twice.
    pub lease_lost: u64,
    /// Attempts whose end (complete, fail, release) stayed unknown past the retry budget;
    /// the cluster will expire their leases.
    pub abandoned: u64,
    /// Handlers that panicked (also counted in `failed`).
    pub panicked: u64,
    /// Batched heartbeat requests answered, and those that failed.
    pub heartbeats: u64,
    pub heartbeat_errors: u64,
    /// Claim requests that failed (the claim loop backs off and tries again).
    pub claim_errors: u64,
    /// Tasks running right now.
    pub running: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub claimed: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub released: AtomicU64,
    pub cancelled: AtomicU64,
    pub lease_lost: AtomicU64,
    pub abandoned: AtomicU64,
    pub panicked: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeat_errors: AtomicU64,
    pub claim_errors: AtomicU64,
    pub running: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            claimed: get(&self.claimed),
            completed: get(&self.completed),
            failed: get(&self.failed),
            released: get(&self.released),
            cancelled: get(&self.cancelled),
            lease_lost: get(&self.lease_lost),
            abandoned: get(&self.abandoned),
            panicked: get(&self.panicked),
            heartbeats: get(&self.heartbeats),
            heartbeat_errors: get(&self.heartbeat_errors),
            claim_errors: get(&self.claim_errors),
            running: get(&self.running),
        }
    }
}
