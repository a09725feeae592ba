//! The worker's view of each lease it holds: the local deadline, pending progress, and the
//! cancellation token its handler watches. Shared by the claim loop (creates), the
//! heartbeat loop (renews, cancels) and the task runner (watches the deadline, ends it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::deadline;

/// Why a handler's cancellation token fired. The first reason wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Someone cancelled the task; the heartbeat answer said so. The worker releases the
    /// task when the handler returns, which ends it `cancelled`.
    CancelRequested,
    /// The cluster refused a heartbeat for this lease (`lease_lost`, `task_finished`):
    /// another attempt may run. The handler's result is dropped.
    LeaseLost,
    /// Heartbeats failed until the local deadline (counted from when the claim or the last
    /// renewing heartbeat was sent). The cluster's deadline is later, but not by much: the
    /// result is dropped.
    LeaseExpired,
    /// The worker's shutdown grace period ended. The task is released (or completed, if
    /// the handler still returns a result).
    Shutdown,
}

impl CancelReason {
    /// The lease is gone or about to be: nothing may be sent for it but a heartbeat.
    pub fn lease_gone(self) -> bool {
        matches!(self, CancelReason::LeaseLost | CancelReason::LeaseExpired)
    }
}

#[derive(Debug)]
pub(crate) struct Lease {
    pub task: u64,
    pub token: u64,
    cancel: CancellationToken,
    state: Mutex<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    deadline: Instant,
    progress: Option<Value>,
    reason: Option<CancelReason>,
    release: Option<Duration>,
    /// The handler is done and the attempt is being ended: heartbeats still renew the
    /// lease (the ending call may take a while), but a refusal is expected news.
    ending: bool,
}

impl Lease {
    pub fn new(task: u64, token: u64, deadline: Instant) -> Arc<Lease> {
        Arc::new(Lease {
            task,
            token,
            cancel: CancellationToken::new(),
            state: Mutex::new(LeaseState {
                deadline,
                progress: None,
                reason: None,
                release: None,
                ending: false,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().expect("lease state lock")
    }

    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn deadline(&self) -> Instant {
        self.state().deadline
    }

    /// A successful heartbeat sent at `sent_at` moves the deadline to `sent_at + lease_ms`
    /// (`deadline::renewed`: never backwards).
    pub fn renew(&self, sent_at: Instant, lease_ms: u64) {
        let mut s = self.state();
        s.deadline = deadline::renewed(s.deadline, sent_at, lease_ms);
    }

    pub fn expired(&self, now: Instant) -> bool {
        deadline::passed(now, self.deadline())
    }

    /// Fires the token; the first reason is kept.
    pub fn cancel(&self, reason: CancelReason) {
        self.state().reason.get_or_insert(reason);
        self.cancel.cancel();
    }

    pub fn reason(&self) -> Option<CancelReason> {
        self.state().reason
    }

    pub fn set_progress(&self, value: Value) {
        self.state().progress = Some(value);
    }

    pub fn take_progress(&self) -> Option<Value> {
        self.state().progress.take()
    }

    /// Puts back progress a failed heartbeat did not deliver, unless newer progress came.
    pub fn restore_progress(&self, value: Value) {
        self.state().progress.get_or_insert(value);
    }

    pub fn request_release(&self, delay: Duration) {
        self.state().release = Some(delay);
    }

    pub fn release_requested(&self) -> Option<Duration> {
        self.state().release
    }

    pub fn set_ending(&self) {
        self.state().ending = true;
    }

    pub fn is_ending(&self) -> bool {
        self.state().ending
    }
}

/// Every lease the worker holds, by fencing token (unique per claim, so an old attempt
/// still winding down never collides with a new attempt of the same task).
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    leases: Mutex<BTreeMap<u64, Arc<Lease>>>,
}

impl LeaseTable {
    pub fn insert(&self, lease: Arc<Lease>) {
        self.leases
            .lock()
            .expect("lease table lock")
            .insert(lease.token, lease);
    }

    pub fn remove(&self, token: u64) {
        self.leases.lock().expect("lease table lock").remove(&token);
    }

    /// The leases worth renewing: not known to be lost.
    pub fn live(&self) -> Vec<Arc<Lease>> {
        let leases = self.leases.lock().expect("lease table lock");
        leases
            .values()
            .filter(|l| !l.reason().is_some_and(CancelReason::lease_gone))
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<Lease>> {
        self.leases
            .lock()
            .expect("lease table lock")
            .values()
            .cloned()
            .collect()
    }
}
