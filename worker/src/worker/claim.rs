//! One claim loop per slot band: hold the band's free slots, long-poll a claim for that
//! many tasks (with the band's `min_priority`), start a runner per task.
//!
//! A claim is never dropped once sent: the cluster may have leased tasks to it, and an
//! answer nobody reads would leave them running nowhere until their leases expire (using
//! an attempt each). So a shutdown waits for claims in flight and releases what they bring.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use taskswarm_api as api;
use tokio::time::Instant;

use super::lease::Lease;
use super::limits::{CLAIM_BACKOFF_INITIAL, CLAIM_BACKOFF_MAX};
use super::runner::{release_unstarted, run_task};
use super::runtime::Shared;
use super::stats::bump;

/// A claimed task whose local lease has less than `lease / STALE_CLAIM_DIVISOR` left when
/// the answer arrives (a claim slowed by retries) is released unstarted: its handler
/// would likely be cancelled before the first heartbeat renews it.
pub const STALE_CLAIM_DIVISOR: u32 = 6;

pub(crate) async fn claim_loop(shared: Arc<Shared>, band: usize, min_priority: Option<i32>) {
    let mut backoff = CLAIM_BACKOFF_INITIAL;
    let stop = shared.stop_claiming.clone();
    loop {
        let held = tokio::select! {
            held = shared.slots.acquire_free(band) => held,
            () = stop.cancelled() => return,
        };
        if stop.is_cancelled() {
            shared.slots.give_back(band, held);
            return;
        }
        let wait_ms = shared.config.claim_wait.as_millis() as u64;
        let req = claim_request(&shared, held as u32, wait_ms, min_priority);
        // The lease is counted from here, before the request leaves: the cluster starts it
        // later, so the local deadline always passes first.
        let sent_at = Instant::now();
        match shared.client.claim(&req).await {
            Ok(tasks) => {
                backoff = CLAIM_BACKOFF_INITIAL;
                let got = tasks.len().min(held);
                shared.slots.give_back(band, held - got);
                if tasks.len() > held {
                    tracing::error!(
                        asked = held,
                        got = tasks.len(),
                        "the cluster sent more tasks than asked for"
                    );
                }
                for (i, task) in tasks.into_iter().enumerate() {
                    bump(&shared.stats.claimed);
                    if let Some(lease) = admit(&shared, band, &task, sent_at, i < held) {
                        tokio::spawn(run_task(shared.clone(), band, min_priority, task, lease));
                    }
                }
            }
            Err(e) => {
                shared.slots.give_back(band, held);
                bump(&shared.stats.claim_errors);
                // An unknown outcome may have leased tasks to nobody; they come back when
                // their leases expire.
                tracing::warn!(error = %e, ?backoff, "claim failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(CLAIM_BACKOFF_MAX);
            }
        }
    }
}

/// What a claim of this worker asks for: its queues, its kinds (any with a fallback), its
/// lease.
pub(crate) fn claim_request(
    shared: &Shared,
    max: u32,
    wait_ms: u64,
    min_priority: Option<i32>,
) -> api::ClaimRequest {
    api::ClaimRequest {
        worker: shared.config.worker_id.clone(),
        queues: shared.config.queues.clone(),
        kinds: if shared.fallback.is_some() {
            None
        } else {
            Some(shared.handlers.keys().cloned().collect())
        },
        max,
        lease_ms: Some(shared.config.lease_ms),
        wait_ms,
        min_priority,
    }
}

/// Takes a claimed task into a slot it holds (`has_slot`) and returns its lease, or
/// releases it (and gives the slot back) when it should not run here. The caller runs it.
pub(crate) fn admit(
    shared: &Arc<Shared>,
    band: usize,
    task: &api::ClaimedTask,
    sent_at: Instant,
    has_slot: bool,
) -> Option<Arc<Lease>> {
    let lease_ms = Duration::from_millis(task.lease.lease_ms);
    let deadline = sent_at + lease_ms;
    let left = deadline.saturating_duration_since(Instant::now());
    if !has_slot || shared.stop_claiming.is_cancelled() || left < lease_ms / STALE_CLAIM_DIVISOR {
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
