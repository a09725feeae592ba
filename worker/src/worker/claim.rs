//! One claim loop per slot band: hold the band's free slots, long-poll a claim for that
//! many tasks (with the band's `min_priority`), start a runner per task.
//!
//! A claim is never dropped once sent: the cluster may have leased tasks to it, and an
//! answer nobody reads would leave them running nowhere until their leases expire (using
//! an attempt each). So a shutdown waits for claims in flight and releases what they bring.

use std::sync::Arc;

use tokio::time::Instant;

use super::admit::admit;
use super::limits::{CLAIM_BACKOFF_INITIAL, CLAIM_BACKOFF_MAX};
use super::runner::run_task;
use super::shared::Shared;
use super::stats::bump;

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
        let req = shared.claim_request(held as u32, wait_ms, min_priority);
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
