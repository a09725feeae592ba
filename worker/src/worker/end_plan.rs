//! How a runner ends an attempt, decided without I/O: which call ends it (complete, fail,
//! release, or none when the lease is gone), and how that call is retried through unknown
//! outcomes. `end.rs` makes the calls.

use std::time::Duration;

use serde_json::Value;
use taskswarm_api::codes;
use tokio::time::Instant;

use super::deadline;
use super::handler::{HandlerResult, TaskError};
use super::lease::CancelReason;
use super::limits::{END_BACKOFF_INITIAL, END_BACKOFF_MAX, END_CALL_BUDGET};
use crate::error::ClientError;

/// Error code of a handler that panicked.
pub const PANIC_CODE: &str = "handler_panic";
/// Delay before a task of a kind this worker has no handler for runs again. (Claims name
/// the registered kinds, so this only guards against a server that ignores the filter.)
pub const UNKNOWN_KIND_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// How the handler's run ended.
#[derive(Debug)]
pub(crate) enum Ran {
    Returned(HandlerResult),
    Panicked(String),
    /// Aborted after its cancellation token fired and it did not return in time.
    Aborted,
    /// No handler for the kind.
    NoHandler,
}

/// Whether a handler that has just returned is past its local deadline with no other
/// reason to stop recorded: it returned right at the deadline, and is treated as past it.
pub(crate) fn expired_at_return(
    reason: Option<CancelReason>,
    now: Instant,
    deadline: Instant,
) -> bool {
    reason.is_none() && deadline::passed(now, deadline)
}

/// The call that ends an attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EndPlan {
    /// The lease is gone: send nothing. Completing now could race a second attempt the
    /// cluster may already have started (the fencing token would refuse it anyway once
    /// the cluster's deadline passes).
    DropResult,
    /// Give the task back without using an attempt; it runs again after `delay`.
    Release {
        delay: Duration,
    },
    Complete(Value),
    Fail(TaskError),
    /// The handler panicked: fail the attempt, retryable, with `PANIC_CODE`.
    FailPanicked {
        message: String,
        error: TaskError,
    },
    /// No handler for the kind: release it for `UNKNOWN_KIND_RELEASE_DELAY`.
    ReleaseUnknownKind {
        delay: Duration,
    },
}

/// Decides how the attempt ends, from why its token fired (if it did), a release the
/// handler asked for, and how the handler's run ended.
pub(crate) fn decide_end(
    reason: Option<CancelReason>,
    release_requested: Option<Duration>,
    ran: Ran,
) -> EndPlan {
    if reason.is_some_and(CancelReason::lease_gone) {
        return EndPlan::DropResult;
    }
    if let Some(delay) = release_requested {
        return EndPlan::Release { delay };
    }
    match (reason, ran) {
        // Releasing with a cancel pending ends the task `cancelled`, whatever the handler
        // returned.
        (Some(CancelReason::CancelRequested), _) => EndPlan::Release {
            delay: Duration::ZERO,
        },
        (_, Ran::Returned(Ok(result))) => EndPlan::Complete(result),
        // After the shutdown grace, an error is most likely the cancellation itself: give
        // the task back without using an attempt.
        (Some(CancelReason::Shutdown), _) | (_, Ran::Aborted) => EndPlan::Release {
            delay: Duration::ZERO,
        },
        (_, Ran::Returned(Err(error))) => EndPlan::Fail(error),
        // Retryable: a panic is as often an unwrap on a passing failure as a bug, and the
        // task's max_attempts already bounds the cost of retrying a bug.
        (_, Ran::Panicked(message)) => EndPlan::FailPanicked {
            error: TaskError::retryable(format!("panic: {message}")).with_code(PANIC_CODE),
            message,
        },
        (_, Ran::NoHandler) => EndPlan::ReleaseUnknownKind {
            delay: UNKNOWN_KIND_RELEASE_DELAY,
        },
    }
}

/// What an ending call does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndStep {
    /// `lease_lost` / `task_finished`. `after_unknown`: an earlier try's outcome was
    /// unknown, so it may be that try which ended the lease.
    LeaseGone { after_unknown: bool },
    /// A refusal: nothing changed, retrying would be refused again.
    Refused,
    /// `END_CALL_BUDGET` is spent: let the lease expire.
    GiveUp,
    /// Unknown or unavailable: try again after this long.
    Sleep(Duration),
}

/// The retries of one ending call (complete, fail, release): through unknown outcomes
/// and unavailability, with doubling back-off, up to `END_CALL_BUDGET`.
#[derive(Debug)]
pub(crate) struct EndRetry {
    started: Instant,
    backoff: Duration,
    after_unknown: bool,
}

impl EndRetry {
    pub fn new(now: Instant) -> EndRetry {
        EndRetry {
            started: now,
            backoff: END_BACKOFF_INITIAL,
            after_unknown: false,
        }
    }

    pub fn on_error(&mut self, now: Instant, error: &ClientError) -> EndStep {
        if error.is_lease_lost() || error.code() == Some(codes::TASK_FINISHED) {
            return EndStep::LeaseGone {
                after_unknown: self.after_unknown,
            };
        }
        if matches!(
            error,
            ClientError::Rejected { .. } | ClientError::InvalidArgument(_)
        ) {
            return EndStep::Refused;
        }
        self.after_unknown |= matches!(
            error,
            ClientError::Indeterminate(_) | ClientError::Protocol(_)
        );
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed + self.backoff > END_CALL_BUDGET {
            return EndStep::GiveUp;
        }
        let sleep = self.backoff;
        self.backoff = (self.backoff * 2).min(END_BACKOFF_MAX);
        EndStep::Sleep(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn how_an_attempt_ends() {
        use CancelReason::*;
        let zero = Duration::ZERO;
        let ok = || Ran::Returned(Ok(json!(1)));
        let err = || Ran::Returned(Err(TaskError::permanent("bad")));
        let release = |delay| EndPlan::Release { delay };
        // (why the token fired, release asked for, run, plan)
        let cases: Vec<(Option<CancelReason>, Option<Duration>, Ran, EndPlan)> = vec![
            (None, None, ok(), EndPlan::Complete(json!(1))),
            (
                None,
                None,
                err(),
                EndPlan::Fail(TaskError::permanent("bad")),
            ),
            (None, Some(ms(500)), ok(), release(ms(500))),
            (None, None, Ran::Aborted, release(zero)),
            (
                None,
                None,
                Ran::NoHandler,
                EndPlan::ReleaseUnknownKind {
                    delay: UNKNOWN_KIND_RELEASE_DELAY,
                },
            ),
            (
                None,
                None,
                Ran::Panicked("boom".into()),
                EndPlan::FailPanicked {
                    message: "boom".into(),
                    error: TaskError::retryable("panic: boom").with_code(PANIC_CODE),
                },
            ),
            // A lost or expired lease drops whatever the handler did or asked for.
            (Some(LeaseLost), None, ok(), EndPlan::DropResult),
            (Some(LeaseExpired), Some(ms(5)), ok(), EndPlan::DropResult),
            (
                Some(LeaseExpired),
                None,
                Ran::Panicked("x".into()),
                EndPlan::DropResult,
            ),
            // A cancel request ends it `cancelled`, whatever the handler returned.
            (Some(CancelRequested), None, ok(), release(zero)),
            (Some(CancelRequested), None, err(), release(zero)),
            (Some(CancelRequested), Some(ms(7)), ok(), release(ms(7))),
            // After the shutdown grace: a result still completes, anything else releases.
            (Some(Shutdown), None, ok(), EndPlan::Complete(json!(1))),
            (Some(Shutdown), None, err(), release(zero)),
            (Some(Shutdown), None, Ran::NoHandler, release(zero)),
        ];
        for (reason, release_requested, ran, expected) in cases {
            let what = format!("{reason:?} {release_requested:?} {ran:?}");
            assert_eq!(
                decide_end(reason, release_requested, ran),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn a_handler_returning_at_its_deadline_is_past_it() {
        let t = Instant::now();
        // (reason already recorded, returned at, deadline, counts as expired)
        let cases = [
            (None, t, t + ms(1), false),
            (None, t + ms(1), t + ms(1), true),
            (None, t + ms(9), t + ms(1), true),
            (
                Some(CancelReason::CancelRequested),
                t + ms(9),
                t + ms(1),
                false,
            ),
            (Some(CancelReason::Shutdown), t + ms(9), t + ms(1), false),
        ];
        for (reason, now, deadline, expected) in cases {
            assert_eq!(
                expired_at_return(reason, now, deadline),
                expected,
                "{reason:?}"
            );
        }
    }

    fn rejected(code: &str) -> ClientError {
        ClientError::Rejected {
            status: 409,
            code: code.into(),
            message: String::new(),
        }
    }

    fn unavailable() -> ClientError {
        ClientError::Unavailable {
            elapsed: Duration::ZERO,
            message: String::new(),
        }
    }

    #[test]
    fn what_an_ending_call_does_after_an_error() {
        let t = Instant::now();
        // (errors in order, the step after the last)
        let cases: Vec<(Vec<ClientError>, EndStep)> = vec![
            (
                vec![rejected(codes::LEASE_LOST)],
                EndStep::LeaseGone {
                    after_unknown: false,
                },
            ),
            (
                vec![rejected(codes::TASK_FINISHED)],
                EndStep::LeaseGone {
                    after_unknown: false,
                },
            ),
            (
                vec![
                    ClientError::Indeterminate("?".into()),
                    rejected(codes::LEASE_LOST),
                ],
                EndStep::LeaseGone {
                    after_unknown: true,
                },
            ),
            (
                vec![
                    ClientError::Protocol("?".into()),
                    rejected(codes::TASK_FINISHED),
                ],
                EndStep::LeaseGone {
                    after_unknown: true,
                },
            ),
            // Unavailable proves nothing was written.
            (
                vec![unavailable(), rejected(codes::LEASE_LOST)],
                EndStep::LeaseGone {
                    after_unknown: false,
                },
            ),
            (vec![rejected(codes::PAYLOAD_TOO_LARGE)], EndStep::Refused),
            (
                vec![ClientError::InvalidArgument("x".into())],
                EndStep::Refused,
            ),
            (vec![unavailable()], EndStep::Sleep(END_BACKOFF_INITIAL)),
            (
                vec![ClientError::Indeterminate("?".into())],
                EndStep::Sleep(END_BACKOFF_INITIAL),
            ),
            (
                vec![unavailable(), unavailable()],
                EndStep::Sleep(END_BACKOFF_INITIAL * 2),
            ),
        ];
        for (errors, expected) in cases {
            let mut retry = EndRetry::new(t);
            let last = errors.iter().map(|e| retry.on_error(t, e)).last();
            assert_eq!(last, Some(expected), "{errors:?}");
        }
    }

    #[test]
    fn an_ending_call_backs_off_to_its_cap_and_gives_up_at_its_budget() {
        let t = Instant::now();
        let mut retry = EndRetry::new(t);
        let mut now = t;
        let mut sleeps = Vec::new();
        loop {
            match retry.on_error(now, &unavailable()) {
                EndStep::Sleep(d) => {
                    assert!(d >= END_BACKOFF_INITIAL && d <= END_BACKOFF_MAX, "{d:?}");
                    assert!(now + d - t <= END_CALL_BUDGET, "slept past the budget");
                    sleeps.push(d);
                    now += d;
                }
                EndStep::GiveUp => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(sleeps.windows(2).all(|w| w[0] <= w[1]), "back-off shrank");
        assert_eq!(sleeps.last(), Some(&END_BACKOFF_MAX));
        assert!(
            now - t + END_BACKOFF_MAX > END_CALL_BUDGET,
            "gave up early at {:?}",
            now - t
        );
    }
}
