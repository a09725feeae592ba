//! One batched heartbeat per worker (`POST /v1/heartbeat`) renews every lease it holds,
//! carries each handler's latest progress, and brings back cancels and lost leases.
//!
//! A lease's local deadline moves to `sent_at + lease_ms` on a successful answer, with
//! `sent_at` taken before the request left: the cluster renewed the lease at some later
//! moment, so the local deadline still passes first. The runner watches that deadline;
//! this loop never cancels a handler for a missed beat by itself.

use std::sync::Arc;
use std::time::Duration;

use taskswarm_api::{self as api, codes};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{CancelReason, Lease};
use super::limits::HEARTBEAT_BATCH_MAX;
use super::runtime::Shared;
use super::stats::bump;

/// Beats every `interval` until `stop` fires. A beat that is still waiting for its answer
/// when the next is due delays it: a slow answer still renews, a second request would not
/// help.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared.config.heartbeat_interval;
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = stop.cancelled() => return,
        }
        next = Instant::now() + interval;
        let leases = shared.leases.live();
        for chunk in leases.chunks(HEARTBEAT_BATCH_MAX) {
            tokio::select! {
                () = beat(&shared, chunk, interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

async fn beat(shared: &Shared, leases: &[Arc<Lease>], interval: Duration) {
    let beats: Vec<api::LeaseBeat> = leases
        .iter()
        .map(|l| api::LeaseBeat {
            task: l.task,
            token: l.token,
            progress: l.take_progress(),
            lease_ms: None,
        })
        .collect();
    let req = api::BatchHeartbeatRequest {
        worker: shared.config.worker_id.clone(),
        leases: beats,
    };
    let sent_at = Instant::now();
    // Keep waiting for an answer while it can still save a lease: until the earliest
    // local deadline (and at least one interval, so an answer is given a chance).
    let earliest = leases.iter().map(|l| l.deadline()).min().unwrap_or(sent_at);
    let patience = earliest.saturating_duration_since(sent_at).max(interval);
    let answer = tokio::time::timeout(patience, shared.client.heartbeat_batch(&req)).await;
    let results = match answer {
        Ok(Ok(results)) if results.len() == leases.len() => results,
        failed => {
            bump(&shared.stats.heartbeat_errors);
            match failed {
                Ok(Ok(results)) => tracing::warn!(
                    sent = leases.len(),
                    answered = results.len(),
                    "heartbeat answer does not match the request"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, leases = leases.len(), "heartbeat failed"),
                Err(_) => tracing::warn!(?patience, leases = leases.len(), "heartbeat timed out"),
            }
            // The progress did not arrive: send it next time.
            for (lease, beat) in leases.iter().zip(req.leases) {
                if let Some(p) = beat.progress {
                    lease.restore_progress(p);
                }
            }
            return;
        }
    };
    bump(&shared.stats.heartbeats);
    for (lease, item) in leases.iter().zip(results) {
        match item {
            api::HeartbeatItem::Ok(ack) => {
                lease.renew(sent_at, Duration::from_millis(ack.lease_ms));
                if ack.cancel_requested {
                    lease.cancel(CancelReason::CancelRequested);
                }
            }
            api::HeartbeatItem::Err(body) => {
                let code = body.error.code.as_str();
                if lease.is_ending() {
                    // The complete (or fail, release) landed before this beat: expected.
                    tracing::debug!(
                        task = lease.task,
                        code,
                        "heartbeat refused for a lease being ended"
                    );
                } else if matches!(
                    code,
                    codes::LEASE_LOST | codes::TASK_FINISHED | codes::NOT_FOUND
                ) {
                    tracing::warn!(
                        task = lease.task,
                        token = lease.token,
                        code,
                        "lease lost: cancelling the handler"
                    );
                    lease.cancel(CancelReason::LeaseLost);
                } else {
                    // Not renewed; the local deadline will tell if it matters.
                    tracing::warn!(task = lease.task, code, message = %body.error.message, "heartbeat refused for one lease");
                }
            }
        }
    }
}
