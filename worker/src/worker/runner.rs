//! Runs one claimed task: the handler in its own tokio task (so a panic fails the task,
//! not the worker), the local lease deadline watched alongside, then the one call that
//! ends the attempt (`end.rs`). A completion may bring the slot's next task, which runs
//! here in the same slot.

use std::future::Future;
use std::sync::Arc;

use taskswarm_api as api;
use tokio::time::Instant;

use super::admit::admit;
use super::context::TaskContext;
use super::end::{end, Next};
use super::end_plan::Ran;
use super::handler::HandlerResult;
use super::lease::{CancelReason, Lease};
use super::shared::Shared;
use super::stats::bump;

/// Runs the task and ends it; then frees the lease entry and the slot. With
/// `claim_on_complete`, a completion brings the slot's next task (same band, same
/// `min_priority`), which runs here in the same slot; the slot is freed when none comes.
pub(crate) async fn run_task(
    shared: Arc<Shared>,
    band: usize,
    min_priority: Option<i32>,
    task: api::ClaimedTask,
    lease: Arc<Lease>,
) {
    let (mut task, mut lease) = (task, lease);
    loop {
        let ran = match shared
            .handlers
            .get(&task.kind)
            .or(shared.fallback.as_ref())
            .cloned()
        {
            Some(handler) => {
                let ctx = TaskContext::new(&task, &shared.config.worker_id, lease.clone());
                execute(&shared, handler.call(ctx, task.payload.clone()), &lease).await
            }
            None => Ran::NoHandler,
        };
        lease.set_ending();
        let next = end(&shared, &task, &lease, ran, min_priority).await;
        shared.leases.remove(lease.token);
        shared
            .stats
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Some(Next { tasks, sent_at }) = next else {
            break;
        };
        let mut tasks = tasks.into_iter();
        let admitted = tasks.next().map(|first| {
            bump(&shared.stats.claimed);
            (admit(&shared, band, &first, sent_at, true), first)
        });
        for extra in tasks {
            tracing::error!(
                task = extra.id,
                "the cluster sent more tasks than asked for"
            );
            admit(&shared, band, &extra, sent_at, false);
        }
        match admitted {
            Some((Some(next_lease), next_task)) => {
                task = next_task;
                lease = next_lease;
            }
            // Released unstarted: `admit` gave the slot back.
            Some((None, _)) => return,
            None => break,
        }
    }
    shared.slots.give_back(band, 1);
}

async fn execute(
    shared: &Shared,
    handler: impl Future<Output = HandlerResult> + Send + 'static,
    lease: &Lease,
) -> Ran {
    let mut join = tokio::spawn(handler);
    // Set when the token fires: the handler must return by then or be aborted.
    let mut stop_by: Option<Instant> = None;
    let mut aborted = false;
    loop {
        let deadline = lease.deadline();
        tokio::select! {
            joined = &mut join => {
                return match joined {
                    Ok(result) => Ran::Returned(result),
                    Err(e) if e.is_panic() => Ran::Panicked(panic_message(e.into_panic())),
                    Err(_) => Ran::Aborted,
                };
            }
            // The local deadline: no renewing heartbeat arrived in time.
            () = tokio::time::sleep_until(deadline), if !lease.token().is_cancelled() => {
                if lease.expired(Instant::now()) {
                    tracing::warn!(task = lease.task, token = lease.token, "local lease deadline passed: cancelling the handler");
                    lease.cancel(CancelReason::LeaseExpired);
                }
            }
            () = lease.token().cancelled(), if stop_by.is_none() => {
                stop_by = Some(Instant::now() + shared.config.handler_stop_wait);
            }
            () = tokio::time::sleep_until(stop_by.unwrap_or(deadline)), if stop_by.is_some() && !aborted => {
                tracing::warn!(task = lease.task, "handler ignored its cancellation: aborting it");
                join.abort();
                aborted = true;
            }
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => match panic.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "the handler panicked".to_owned(),
        },
    }
}
