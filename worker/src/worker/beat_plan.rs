//! The heartbeat's decisions as plain functions of time and answers: when the next beat
//! is due, which leases go in one request, how long to wait for its answer, and what each
//! lease's result means. `heartbeat.rs` carries them out.

use std::time::Duration;

use taskswarm_api::{self as api, codes};
use tokio::time::Instant;

use super::limits::HEARTBEAT_BATCH_MAX;

/// When the beat after one that starts at `now` is due. A beat still waiting for its
/// answer delays the next: a slow answer still renews, a second request would not help.
pub(crate) fn next_due(now: Instant, interval: Duration) -> Instant {
    now + interval
}

/// The requests one beat sends: every live lease, at most `HEARTBEAT_BATCH_MAX` each
/// (the server's limit; with `SLOTS_MAX` equal to it, one request in practice).
pub(crate) fn batches<T>(live: &[T]) -> std::slice::Chunks<'_, T> {
    live.chunks(HEARTBEAT_BATCH_MAX)
}

/// How long to wait for a beat's answer: while it can still save a lease, i.e. until the
/// earliest local deadline among its leases, and at least one interval, so an answer is
/// given a chance.
pub(crate) fn patience(
    sent_at: Instant,
    earliest_deadline: Option<Instant>,
    interval: Duration,
) -> Duration {
    let earliest = earliest_deadline.unwrap_or(sent_at);
    earliest.saturating_duration_since(sent_at).max(interval)
}

/// Whether an answer can be matched to the request lease by lease (one result each, in
/// order). One that cannot is a failed beat: nothing renewed, progress sent again.
pub(crate) fn answer_fits(sent: usize, answered: usize) -> bool {
    sent == answered
}

/// What one lease's result in a heartbeat answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict<'a> {
    /// Renewed for `lease_ms`, counted from the beat's send (`deadline::renewed`);
    /// `cancel_requested`: someone cancelled the task, stop the handler.
    Renewed {
        lease_ms: u64,
        cancel_requested: bool,
    },
    /// Refused for a lease whose attempt is being ended: the complete (or fail, release)
    /// landed before this beat. Expected news.
    EndingRefused { code: &'a str },
    /// The cluster no longer holds this lease for us: cancel the handler.
    Lost { code: &'a str },
    /// Refused for another reason: not renewed; the local deadline tells if it matters.
    NotRenewed { code: &'a str, message: &'a str },
}

/// Reads one lease's result; `ending`: its handler is done and the attempt being ended.
pub(crate) fn judge(item: &api::HeartbeatItem, ending: bool) -> Verdict<'_> {
    match item {
        api::HeartbeatItem::Ok(ack) => Verdict::Renewed {
            lease_ms: ack.lease_ms,
            cancel_requested: ack.cancel_requested,
        },
        api::HeartbeatItem::Err(body) => {
            let code = body.error.code.as_str();
            if ending {
                Verdict::EndingRefused { code }
            } else if matches!(
                code,
                codes::LEASE_LOST | codes::TASK_FINISHED | codes::NOT_FOUND
            ) {
                Verdict::Lost { code }
            } else {
                Verdict::NotRenewed {
                    code,
                    message: &body.error.message,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_next_beat_is_one_interval_after_this_one_starts() {
        let t = Instant::now();
        assert_eq!(next_due(t, ms(100)), t + ms(100));
    }

    #[test]
    fn leases_go_in_requests_of_at_most_the_batch_limit() {
        // (live leases, request sizes)
        let max = HEARTBEAT_BATCH_MAX;
        let cases: [(usize, Vec<usize>); 5] = [
            (0, vec![]),
            (1, vec![1]),
            (max, vec![max]),
            (max + 1, vec![max, 1]),
            (2 * max + 3, vec![max, max, 3]),
        ];
        for (live, sizes) in cases {
            let leases = vec![0u8; live];
            let got: Vec<usize> = batches(&leases).map(<[u8]>::len).collect();
            assert_eq!(got, sizes, "{live}");
        }
    }

    #[test]
    fn patience_lasts_until_the_earliest_deadline_and_at_least_an_interval() {
        let t = Instant::now();
        // (earliest deadline after the send, interval, patience)
        let cases = [
            (Some(ms(900)), ms(100), ms(900)),
            (Some(ms(50)), ms(100), ms(100)),
            (Some(ms(100)), ms(100), ms(100)),
            (None, ms(100), ms(100)),
        ];
        for (earliest, interval, expected) in cases {
            let earliest = earliest.map(|d| t + d);
            assert_eq!(patience(t, earliest, interval), expected, "{earliest:?}");
        }
        // A deadline already passed: still one interval.
        let sent_at = t + ms(500);
        assert_eq!(patience(sent_at, Some(t), ms(100)), ms(100));
    }

    #[test]
    fn an_answer_fits_only_with_one_result_per_lease() {
        for (sent, answered, fits) in [(3, 3, true), (3, 2, false), (1, 4, false), (0, 0, true)] {
            assert_eq!(answer_fits(sent, answered), fits, "{sent} {answered}");
        }
    }

    #[test]
    fn what_each_result_means() {
        let ok = |cancel_requested| {
            api::HeartbeatItem::Ok(api::HeartbeatResponse {
                task: 1,
                lease_ms: 3_000,
                expires_at_ms: 10_000,
                cancel_requested,
            })
        };
        let err = |code: &str| api::HeartbeatItem::Err(api::ErrorBody::new(code, "why"));
        let renewed = |cancel_requested| Verdict::Renewed {
            lease_ms: 3_000,
            cancel_requested,
        };
        let not_renewed = |code| Verdict::NotRenewed {
            code,
            message: "why",
        };
        // (result, ending, verdict)
        let cases = [
            (ok(false), false, renewed(false)),
            (ok(true), false, renewed(true)),
            // A lease being ended still renews: the ending call may take a while.
            (ok(false), true, renewed(false)),
            (
                err(codes::LEASE_LOST),
                false,
                Verdict::Lost {
                    code: codes::LEASE_LOST,
                },
            ),
            (
                err(codes::TASK_FINISHED),
                false,
                Verdict::Lost {
                    code: codes::TASK_FINISHED,
                },
            ),
            (
                err(codes::NOT_FOUND),
                false,
                Verdict::Lost {
                    code: codes::NOT_FOUND,
                },
            ),
            (
                err(codes::LEASE_LOST),
                true,
                Verdict::EndingRefused {
                    code: codes::LEASE_LOST,
                },
            ),
            (
                err(codes::INVALID_REQUEST),
                true,
                Verdict::EndingRefused {
                    code: codes::INVALID_REQUEST,
                },
            ),
            (
                err(codes::INVALID_REQUEST),
                false,
                not_renewed(codes::INVALID_REQUEST),
            ),
            (
                err(codes::PAYLOAD_TOO_LARGE),
                false,
                not_renewed(codes::PAYLOAD_TOO_LARGE),
            ),
        ];
        for (item, ending, expected) in cases {
            assert_eq!(judge(&item, ending), expected, "{item:?} ending={ending}");
        }
    }
}
