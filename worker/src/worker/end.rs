//! The calls that end an attempt (complete, fail, release), each retried through unknown
//! outcomes as `end_plan::EndRetry` decides, and how their results are counted.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use taskswarm_api as api;
use tokio::time::Instant;

use super::end_plan::{self, EndPlan, EndRetry, EndStep, Ran};
use super::handler::TaskError;
use super::lease::{CancelReason, Lease};
use super::shared::Shared;
use super::stats::bump;
use crate::error::ClientError;

/// Tasks claimed along with a completion, and when that claim was sent (their local
/// leases count from then).
pub(crate) struct Next {
    pub tasks: Vec<api::ClaimedTask>,
    pub sent_at: Instant,
}

/// Makes the call that ends the attempt (`end_plan::decide_end`); returns the next tasks
/// a completion claimed, if any.
pub(crate) async fn end(
    shared: &Shared,
    task: &api::ClaimedTask,
    lease: &Lease,
    ran: Ran,
    min_priority: Option<i32>,
) -> Option<Next> {
    let (id, token) = (task.id, lease.token);
    if end_plan::expired_at_return(lease.reason(), Instant::now(), lease.deadline()) {
        lease.cancel(CancelReason::LeaseExpired);
    }
    let reason = lease.reason();
    match end_plan::decide_end(reason, lease.release_requested(), ran) {
        EndPlan::DropResult => {
            bump(&shared.stats.lease_lost);
            tracing::warn!(
                task = id,
                token,
                ?reason,
                "lease lost: result dropped, the task may run again"
            );
        }
        EndPlan::Release { delay } => release(shared, id, token, delay).await,
        EndPlan::Complete(result) => {
            return complete(shared, id, token, result, min_priority).await;
        }
        EndPlan::Fail(error) => fail(shared, id, token, &error).await,
        EndPlan::FailPanicked { message, error } => {
            bump(&shared.stats.panicked);
            tracing::error!(task = id, %message, "handler panicked");
            fail(shared, id, token, &error).await;
        }
        EndPlan::ReleaseUnknownKind { delay } => {
            tracing::error!(task = id, kind = %task.kind, "no handler for this kind: releasing");
            release(shared, id, token, delay).await;
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

/// Retries `call` as `EndRetry` decides, through unknown outcomes and unavailability.
async fn end_call<F, Fut>(mut call: F) -> Ended
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<api::StateResponse, ClientError>>,
{
    let mut retry = EndRetry::new(Instant::now());
    loop {
        let error = match call().await {
            Ok(resp) => return Ended::Done(resp),
            Err(e) => e,
        };
        match retry.on_error(Instant::now(), &error) {
            EndStep::LeaseGone { after_unknown } => {
                return Ended::LeaseGone {
                    after_unknown,
                    error,
                }
            }
            EndStep::Refused => return Ended::Refused(error),
            EndStep::GiveUp => return Ended::GaveUp(error),
            EndStep::Sleep(backoff) => {
                tracing::debug!(%error, ?backoff, "ending call: retrying");
                tokio::time::sleep(backoff).await;
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
    let next_req = fused.then(|| shared.claim_request(1, 0, min_priority));
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

pub(crate) async fn release(shared: &Shared, id: u64, token: u64, delay: Duration) {
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
