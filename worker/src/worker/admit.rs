//! What happens to a task a claim brought: it runs here (a lease entry, a running count)
//! or it is released unstarted (no slot for it, a shutdown started, or too little of its
//! lease left: `deadline::too_late_to_start`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use taskswarm_api as api;
use tokio::time::Instant;

use super::deadline;
use super::end::release;
use super::lease::Lease;
use super::shared::Shared;

/// Takes a claimed task into a slot it holds (`has_slot`) and returns its lease, or
/// releases it (and gives the slot back) when it should not run here. The caller runs it.
pub(crate) fn admit(
    shared: &Arc<Shared>,
    band: usize,
    task: &api::ClaimedTask,
    sent_at: Instant,
    has_slot: bool,
) -> Option<Arc<Lease>> {
    let deadline = deadline::granted(sent_at, task.lease.lease_ms);
    let now = Instant::now();
    let too_late = deadline::too_late_to_start(now, deadline, task.lease.lease_ms);
    if !has_slot || shared.stop_claiming.is_cancelled() || too_late {
        let left = deadline.saturating_duration_since(now);
        tracing::info!(
            task = task.id,
            ?left,
            stopping = shared.stop_claiming.is_cancelled(),
            "releasing a task unstarted"
        );
        let slot = has_slot.then_some(band);
        tokio::spawn(release_unstarted(shared.clone(), slot, task.clone()));
        return None;
    }
    let lease = Lease::new(task.id, task.lease.token, deadline);
    shared.leases.insert(lease.clone());
    shared.stats.running.fetch_add(1, Ordering::Relaxed);
    Some(lease)
}

/// Gives back a task that will not run here (claimed during shutdown, or too late to be
/// useful), then frees its slot (`None`: one the cluster sent beyond the claim's `max`).
pub(crate) async fn release_unstarted(
    shared: Arc<Shared>,
    slot: Option<usize>,
    task: api::ClaimedTask,
) {
    release(&shared, task.id, task.lease.token, Duration::ZERO).await;
    if let Some(band) = slot {
        shared.slots.give_back(band, 1);
    }
}
