//! Runs one claimed task: the handler in its own tokio task (so a panic fails the task,
//! not the worker), the local lease deadline watched alongside, then the one call that
//! ends the attempt (complete, fail or release), retried through unknown outcomes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use taskswarm_api::{self as api, codes};
use tokio::time::Instant;

use super::claim::{admit, claim_request};
use super::context::TaskContext;
use super::handler::{HandlerResult, TaskError};
use super::lease::{CancelReason, Lease};
use super::limits::{END_BACKOFF_INITIAL, END_BACKOFF_MAX, END_CALL_BUDGET};
use super::runtime::Shared;
use super::stats::bump;
use crate::error::ClientError;

/// Error code of a handler that panicked.
pub const PANIC_CODE: &str = "handler_panic";
/// Delay before a task of a kind this worker has no handler for runs again. (Claims name
/// the registered kinds, so this only guards against a server that ignores the filter.)
pub const UNKNOWN_KIND_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// How the handler's run ended.
enum Ran {
    Returned(HandlerResult),
    Panicked(String),
    /// Aborted after its cancellation token fired and it did not return in time.
    Aborted,
    /// No handler for the kind.
    NoHandler,
}

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

/// Tasks claimed along with a completion, and when that claim was sent (their local
/// leases count from then).
struct Next {
    tasks: Vec<api::ClaimedTask>,
    sent_at: Instant,
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

/// Decides and makes the call that ends the attempt; returns the next tasks a
/// completion claimed, if any.
async fn end(
    shared: &Shared,
    task: &api::ClaimedTask,
    lease: &Lease,
    ran: Ran,
    min_priority: Option<i32>,
) -> Option<Next> {
    let (id, token) = (task.id, lease.token);
    // A handler that returns right at its local deadline is treated as past it.
    if lease.reason().is_none() && lease.expired(Instant::now()) {
        lease.cancel(CancelReason::LeaseExpired);
    }
    let reason = lease.reason();
    if reason.is_some_and(CancelReason::lease_gone) {
        // Completing now could race a second attempt the cluster may already have started;
        // the fencing token would refuse it anyway once the cluster's deadline passes.
        bump(&shared.stats.lease_lost);
        tracing::warn!(
            task = id,
            token,
            ?reason,
            "lease lost: result dropped, the task may run again"
        );
        return None;
    }
    if let Some(delay) = lease.release_requested() {
        release(shared, id, token, delay).await;
        return None;
    }
    match (reason, ran) {
        // Releasing with a cancel pending ends the task `cancelled`, whatever the handler
        // returned.
        (Some(CancelReason::CancelRequested), _) => {
            release(shared, id, token, Duration::ZERO).await
        }
        (_, Ran::Returned(Ok(result))) => {
            return complete(shared, id, token, result, min_priority).await;
        }
        // After the shutdown grace, an error is most likely the cancellation itself: give
        // the task back without using an attempt.
        (Some(CancelReason::Shutdown), _) | (_, Ran::Aborted) => {
            release(shared, id, token, Duration::ZERO).await
        }
        (_, Ran::Returned(Err(error))) => fail(shared, id, token, &error).await,
        (_, Ran::Panicked(message)) => {
            bump(&shared.stats.panicked);
            tracing::error!(task = id, %message, "handler panicked");
            // Retryable: a panic is as often an unwrap on a passing failure as a bug, and
            // the task's max_attempts already bounds the cost of retrying a bug.
            fail(
                shared,
                id,
                token,
                &TaskError::retryable(format!("panic: {message}")).with_code(PANIC_CODE),
            )
            .await;
        }
        (_, Ran::NoHandler) => {
            tracing::error!(task = id, kind = %task.kind, "no handler for this kind: releasing");
            release(shared, id, token, UNKNOWN_KIND_RELEASE_DELAY).await;
        }
    }
    None
}

/// How an ending call finished after its retries.
enum Ended {
    Done(api::StateResponse),
    /// `lease_lost` / `task_finished`. `after_unknown`: an earlier try's outcome was
    /// unknown, so it may be that try which ended the lease.
    LeaseGone {
        after_unknown: bool,
        error: ClientError,
    },
    Refused(ClientError),
    GaveUp(ClientError),
}

/// Retries `call` through unknown outcomes and unavailability, up to `END_CALL_BUDGET`.
async fn end_call<F, Fut>(mut call: F) -> Ended
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<api::StateResponse, ClientError>>,
{
    let started = Instant::now();
    let mut backoff = END_BACKOFF_INITIAL;
    let mut after_unknown = false;
    loop {
        match call().await {
            Ok(resp) => return Ended::Done(resp),
            Err(e) if e.is_lease_lost() || e.code() == Some(codes::TASK_FINISHED) => {
                return Ended::LeaseGone {
                    after_unknown,
                    error: e,
                }
            }
            Err(e @ ClientError::Rejected { .. }) | Err(e @ ClientError::InvalidArgument(_)) => {
                return Ended::Refused(e)
            }
            Err(e) => {
                after_unknown |=
                    matches!(e, ClientError::Indeterminate(_) | ClientError::Protocol(_));
                if started.elapsed() + backoff > END_CALL_BUDGET {
                    return Ended::GaveUp(e);
                }
                tracing::debug!(error = %e, "ending call: retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(END_BACKOFF_MAX);
            }
        }
    }
}

/// Completing with the same token twice is acknowledged twice (`duplicate`), so a
/// complete is simply retried until it has an answer.
///
/// With `claim_on_complete`, the first try also claims the slot's next task (the claim
/// holds only if the completion does). Retries are plain completes: a fused try whose
/// outcome is unknown may have leased a task, which then comes back when its lease
/// expires, and must not lease another. A refused fused try (an older server, a claim it
/// will not take) changed nothing, so a plain complete follows before anything is failed.
async fn complete(
    shared: &Shared,
    id: u64,
    token: u64,
    result: Value,
    min_priority: Option<i32>,
) -> Option<Next> {
    let fused = shared.config.claim_on_complete && !shared.stop_claiming.is_cancelled();
    let next_req = fused.then(|| claim_request(shared, 1, 0, min_priority));
    let mut first = next_req.as_ref();
    let mut sent_at = Instant::now();
    let mut ended = end_call(|| {
        sent_at = Instant::now();
        let next = first.take();
        let result = result.clone();
        async move {
            match next {
                Some(next) => {
                    shared
                        .client
                        .complete_and_claim(id, token, result, next)
                        .await
                }
                None => shared.client.complete(id, token, result).await,
            }
        }
    })
    .await;
    if let (Ended::Refused(error), Some(_)) = (&ended, &next_req) {
        tracing::debug!(task = id, %error, "complete with a claim refused: completing alone");
        ended = end_call(|| shared.client.complete(id, token, result.clone())).await;
    }
    match ended {
        Ended::Done(resp) => {
            bump(&shared.stats.completed);
            if resp.duplicate {
                tracing::debug!(
                    task = id,
                    "complete acknowledged as a repeat of an earlier try"
                );
            }
            resp.next
                .filter(|tasks| !tasks.is_empty())
                .map(|tasks| Next { tasks, sent_at })
        }
        Ended::LeaseGone { error, .. } => {
            // Another attempt may have run or be running: a duplicate execution, which
            // at-least-once delivery allows; the fencing token kept it from counting twice.
            bump(&shared.stats.lease_lost);
            tracing::warn!(task = id, token, %error, "complete refused: the lease was lost");
            None
        }
        Ended::Refused(error) => {
            // The result itself was refused (too large): the attempt fails for good.
            tracing::error!(task = id, %error, "complete refused: failing the task");
            let e = TaskError::permanent(format!("the result was refused: {error}"))
                .with_code("result_refused");
            fail(shared, id, token, &e).await;
            None
        }
        Ended::GaveUp(error) => {
            abandon(shared, id, "complete", &error);
            None
        }
    }
}

async fn fail(shared: &Shared, id: u64, token: u64, error: &TaskError) {
    let mut req = api::FailRequest {
        token,
        error: error.message.clone(),
        code: error.code.clone(),
        retryable: error.retryable,
        retry_after_ms: error.retry_after_ms,
    };
    let mut ended = end_call(|| shared.client.fail(id, &req)).await;
    if let (Ended::Refused(e), Some(code)) = (&ended, req.code.take()) {
        // Most likely a code the server does not accept as a name: keep it in the message.
        tracing::warn!(task = id, error = %e, "fail refused: retrying without the error code");
        req.error = format!("{code}: {}", req.error);
        ended = end_call(|| shared.client.fail(id, &req)).await;
    }
    settle(shared, id, "fail", ended, &shared.stats.failed);
}

async fn release(shared: &Shared, id: u64, token: u64, delay: Duration) {
    let delay_ms = delay.as_millis().min(u128::from(u64::MAX)) as u64;
    let ended = end_call(|| shared.client.release(id, token, delay_ms)).await;
    settle(shared, id, "release", ended, &shared.stats.released);
}

/// Counts the end of a fail or release. Neither may be blindly repeated: after an unknown
/// outcome, a `lease_lost` most likely means the first try landed.
fn settle(
    shared: &Shared,
    id: u64,
    what: &str,
    ended: Ended,
    counter: &std::sync::atomic::AtomicU64,
) {
    match ended {
        Ended::Done(resp) if resp.state == api::TaskState::Cancelled => {
            bump(&shared.stats.cancelled)
        }
        Ended::Done(_)
        | Ended::LeaseGone {
            after_unknown: true,
            ..
        } => bump(counter),
        Ended::LeaseGone { error, .. } => {
            bump(&shared.stats.lease_lost);
            tracing::warn!(task = id, %error, "{what} refused: the lease was lost");
        }
        Ended::Refused(error) | Ended::GaveUp(error) => abandon(shared, id, what, &error),
    }
}

fn abandon(shared: &Shared, id: u64, what: &str, error: &ClientError) {
    bump(&shared.stats.abandoned);
    tracing::error!(task = id, %error, "{what} did not go through: the lease will expire");
}
