//! The decisions of one call, without I/O: which node to send to next, whether to follow
//! a redirect, when to back off and for how long, when to give up and with which error.
//! The async `Transport::call` only carries out the `Action`s this returns (send, sleep,
//! return) and reports each send's `Outcome`; time comes in as `now`.
//!
//! Retry rules follow from what each outcome proves:
//! - not connected: the node never saw the request → try the next node;
//! - `307`: a follower refused to act → go where `Location` points (at most
//!   `REDIRECT_HOPS_MAX` hops per attempt) and remember that leader; when that address's
//!   name cannot be resolved `REDIRECT_UNREACHABLE_MAX` times in a row and for longer than
//!   an election takes (`REDIRECT_UNREACHABLE_MIN`: the leader advertises a name this
//!   client cannot resolve, e.g. one inside a Docker network), give up with an error
//!   naming it rather than after the whole budget. A refused connection is not that: a
//!   leader that just died is refused until the followers elect another;
//! - `503 no_leader` / `no_quorum` / `storage_full` / `unavailable`: nothing was
//!   written → back off, try again (on the next node);
//! - `503 indeterminate`, a timeout, a dropped connection after sending: the write may
//!   have happened → retry only requests that are idempotent, otherwise report
//!   `Indeterminate`;
//! - any other answer ends the call (`Answer::decode`: a success, or `Rejected`).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use taskswarm_api::codes;

use super::answer::{error_code, leader_addr, Answer};
use super::route::Route;
use crate::error::ClientError;

/// Redirects followed within one attempt before giving up on it.
pub const REDIRECT_HOPS_MAX: u32 = 5;
/// Attempts in a row whose redirect led to a name that could not be resolved, and the
/// least time spent, before the call fails as unavailable: longer than an election, so a
/// leader briefly missing from DNS while it restarts (Kubernetes) is waited out.
pub const REDIRECT_UNREACHABLE_MAX: u32 = 3;
pub const REDIRECT_UNREACHABLE_MIN: Duration = Duration::from_secs(2);

/// Whether a request may be sent again when its first outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sending it twice has the effect of sending it once (reads, enqueue with a key,
    /// complete with its token, heartbeat).
    Idempotent,
    /// A second send could act twice (claim, fail, release, cancel): report
    /// `Indeterminate` instead of retrying after an unknown outcome.
    AtMostOnce,
}

/// How long one call may keep retrying, and the back-off between its attempts (doubling
/// from `initial` up to `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub retry_budget: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// What happened to one send, as the I/O layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No connection was made: the node never saw the request. `name_not_resolved`: the
    /// host name did not resolve.
    NotConnected {
        cause: String,
        name_not_resolved: bool,
    },
    /// Sent, then no answer (a timeout, a dropped connection): it may have been applied.
    Lost { cause: String },
    /// An answer, with its `Location` header.
    Answered {
        status: StatusCode,
        location: Option<String>,
        body: Vec<u8>,
    },
    /// The status arrived but its body could not be read.
    BodyLost {
        status: StatusCode,
        location: Option<String>,
        cause: String,
    },
}

/// What the caller does next.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Send the request to this URL, then report the outcome (`on_outcome`).
    Send { url: String },
    /// Wait this long, then start the next attempt (`attempt`).
    Sleep(Duration),
    /// The call is over.
    Return(Result<Answer, ClientError>),
}

/// How one attempt (a send and the redirects it led to) ended.
#[derive(Debug)]
enum AttemptEnd {
    Done(Answer),
    /// Nothing was written; try again (possibly elsewhere).
    RetrySafe(String),
    /// Maybe written.
    Unknown(String),
    /// A follower redirected to `leader`, whose name could not be resolved: nothing was
    /// written.
    LeaderUnreachable {
        leader: String,
        cause: String,
    },
}

/// One call's retry state: attempts, redirect hops, back-off, and what it may have done.
#[derive(Debug)]
pub(crate) struct CallPlan {
    retry: Retry,
    budget: Budget,
    path_and_query: String,
    started: Instant,
    /// The next sleep between attempts.
    backoff: Duration,
    /// Where the send in flight went.
    url: String,
    /// Redirects followed in the current attempt.
    hops: u32,
    /// A send in flight: an outcome is expected, not an `attempt`.
    in_flight: bool,
    /// Some earlier outcome may have applied the request.
    maybe_written: bool,
    /// Attempts in a row that ended at an unresolvable leader name.
    unreachable_in_row: u32,
    last_problem: String,
    returned: bool,
}

impl CallPlan {
    pub fn new(retry: Retry, budget: Budget, path_and_query: &str, now: Instant) -> CallPlan {
        CallPlan {
            retry,
            budget,
            path_and_query: path_and_query.to_owned(),
            started: now,
            backoff: budget.backoff_initial,
            url: String::new(),
            hops: 0,
            in_flight: false,
            maybe_written: false,
            unreachable_in_row: 0,
            last_problem: String::new(),
            returned: false,
        }
    }

    /// Starts an attempt at the node the route picks (first, and after each `Sleep`).
    pub fn attempt(&mut self, route: &mut Route) -> Action {
        assert!(!self.in_flight && !self.returned, "attempt out of turn");
        self.hops = 0;
        let url = format!("{}{}", route.pick(), self.path_and_query);
        self.send(url)
    }

    /// Decides what follows the outcome of the send in flight.
    pub fn on_outcome(&mut self, now: Instant, outcome: Outcome, route: &mut Route) -> Action {
        assert!(
            self.in_flight && !self.returned,
            "an outcome without a send"
        );
        self.in_flight = false;
        let url = &self.url;
        let end = match outcome {
            Outcome::NotConnected {
                cause,
                name_not_resolved,
            } => {
                route.forget_leader();
                // Only a name a redirect gave: the configured nodes' names are the user's.
                if self.hops > 0 && name_not_resolved {
                    let leader = url.strip_suffix(self.path_and_query.as_str());
                    AttemptEnd::LeaderUnreachable {
                        leader: leader.unwrap_or(url).to_owned(),
                        cause,
                    }
                } else {
                    AttemptEnd::RetrySafe(format!("{url}: {cause}"))
                }
            }
            Outcome::Lost { cause } => {
                route.forget_leader();
                AttemptEnd::Unknown(format!("{url}: {cause}"))
            }
            // A redirect's body only names the leader: without it, the redirect still holds.
            Outcome::BodyLost {
                status: StatusCode::TEMPORARY_REDIRECT,
                location,
                ..
            } => return self.on_redirect(now, location, &[], route),
            Outcome::BodyLost { cause, .. } => {
                AttemptEnd::Unknown(format!("{url}: reading the answer: {cause}"))
            }
            Outcome::Answered {
                status: StatusCode::TEMPORARY_REDIRECT,
                location,
                body,
            } => return self.on_redirect(now, location, &body, route),
            Outcome::Answered {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body,
                ..
            } => {
                route.forget_leader();
                let code = error_code(&body);
                if code == codes::INDETERMINATE {
                    AttemptEnd::Unknown(format!("{url}: the write's outcome is unknown"))
                } else {
                    AttemptEnd::RetrySafe(format!("{url}: {code}"))
                }
            }
            Outcome::Answered { status, body, .. } => AttemptEnd::Done(Answer { status, body }),
        };
        self.end_attempt(now, end)
    }

    /// Why the call is still retrying, for logs.
    pub fn last_problem(&self) -> &str {
        &self.last_problem
    }

    fn send(&mut self, url: String) -> Action {
        self.in_flight = true;
        self.url = url.clone();
        Action::Send { url }
    }

    fn on_redirect(
        &mut self,
        now: Instant,
        location: Option<String>,
        body: &[u8],
        route: &mut Route,
    ) -> Action {
        let Some(location) = location else {
            let why = format!("{}: redirect without a Location", self.url);
            return self.end_attempt(now, AttemptEnd::RetrySafe(why));
        };
        if let Some(addr) = leader_addr(body) {
            route.remember_leader(&addr);
        }
        if self.hops == REDIRECT_HOPS_MAX {
            let why = format!("more than {REDIRECT_HOPS_MAX} redirects");
            return self.end_attempt(now, AttemptEnd::RetrySafe(why));
        }
        self.hops += 1;
        self.send(location)
    }

    fn end_attempt(&mut self, now: Instant, end: AttemptEnd) -> Action {
        let elapsed = now.saturating_duration_since(self.started);
        if matches!(end, AttemptEnd::LeaderUnreachable { .. }) {
            self.unreachable_in_row += 1;
        } else {
            self.unreachable_in_row = 0;
        }
        match end {
            AttemptEnd::Done(answer) => return self.finish(Ok(answer)),
            AttemptEnd::RetrySafe(why) => self.last_problem = why,
            AttemptEnd::LeaderUnreachable { leader, cause } => {
                self.last_problem = format!(
                    "the leader's address {leader}, given in a redirect by a follower, cannot be \
                     reached from here ({cause}); reach the cluster at addresses it advertises, \
                     or run the nodes with --forward-to-leader"
                );
                if self.unreachable_in_row >= REDIRECT_UNREACHABLE_MAX
                    && elapsed >= REDIRECT_UNREACHABLE_MIN
                    && !self.maybe_written
                {
                    let message = std::mem::take(&mut self.last_problem);
                    return self.finish(Err(ClientError::Unavailable { elapsed, message }));
                }
            }
            AttemptEnd::Unknown(why) => {
                if self.retry == Retry::AtMostOnce {
                    return self.finish(Err(ClientError::Indeterminate(why)));
                }
                self.maybe_written = true;
                self.last_problem = why;
            }
        }
        if elapsed + self.backoff > self.budget.retry_budget {
            let message = std::mem::take(&mut self.last_problem);
            return self.finish(Err(if self.maybe_written {
                ClientError::Indeterminate(format!("gave up after {elapsed:?}: {message}"))
            } else {
                ClientError::Unavailable { elapsed, message }
            }));
        }
        let sleep = self.backoff;
        self.backoff = (self.backoff * 2).min(self.budget.backoff_max);
        Action::Sleep(sleep)
    }

    fn finish(&mut self, result: Result<Answer, ClientError>) -> Action {
        // "Nothing was written" must be true when said.
        assert!(
            !(self.maybe_written && matches!(result, Err(ClientError::Unavailable { .. }))),
            "unavailable after an outcome that may have written"
        );
        self.returned = true;
        Action::Return(result)
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
