//! One batched heartbeat per worker (`POST /v1/heartbeat`) renews every lease it holds,
//! carries each handler's latest progress, and brings back cancels and lost leases.
//!
//! The decisions (when, which leases, how long to wait, what each result means) are
//! `beat_plan.rs`'s; this loop carries them out. A lease's local deadline moves to
//! `sent_at + lease_ms` on a successful answer (`deadline::renewed`), with `sent_at` taken
//! before the request left: the cluster renewed the lease at some later moment, so the
//! local deadline still passes first. The runner watches that deadline; this loop never
//! cancels a handler for a missed beat by itself.

use std::sync::Arc;
use std::time::Duration;

use taskswarm_api as api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::beat_plan::{self, Verdict};
use super::lease::{CancelReason, Lease};
use super::shared::Shared;
use super::stats::bump;

/// Beats every `interval` until `stop` fires (`beat_plan::next_due`).
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared.config.heartbeat_interval;
    let mut next = beat_plan::next_due(Instant::now(), interval);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = stop.cancelled() => return,
        }
        next = beat_plan::next_due(Instant::now(), interval);
        let leases = shared.leases.live();
        for chunk in beat_plan::batches(&leases) {
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
    let earliest = leases.iter().map(|l| l.deadline()).min();
    let patience = beat_plan::patience(sent_at, earliest, interval);
    let answer = tokio::time::timeout(patience, shared.client.heartbeat_batch(&req)).await;
    let results = match answer {
        Ok(Ok(results)) if beat_plan::answer_fits(leases.len(), results.len()) => results,
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
    for (lease, item) in leases.iter().zip(&results) {
        match beat_plan::judge(item, lease.is_ending()) {
            Verdict::Renewed {
                lease_ms,
                cancel_requested,
            } => {
                lease.renew(sent_at, lease_ms);
                if cancel_requested {
                    lease.cancel(CancelReason::CancelRequested);
                }
            }
            Verdict::EndingRefused { code } => {
                tracing::debug!(
                    task = lease.task,
                    code,
                    "heartbeat refused for a lease being ended"
                );
            }
            Verdict::Lost { code } => {
                tracing::warn!(
                    task = lease.task,
                    token = lease.token,
                    code,
                    "lease lost: cancelling the handler"
                );
                lease.cancel(CancelReason::LeaseLost);
            }
            Verdict::NotRenewed { code, message } => {
                tracing::warn!(task = lease.task, code, %message, "heartbeat refused for one lease");
            }
        }
    }
}
