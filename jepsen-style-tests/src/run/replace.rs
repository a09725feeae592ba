//! Node replacement, following the runbook's "replace a dead node with an empty disk":
//! its start is a follower SIGKILLed, removed from the membership (forced) and its data
//! directory deleted; its stop is the node started again empty, added back with
//! add-node and caught up. Both membership requests are retried through leader changes,
//! within a bound. The steps themselves are carried out by
//! [`Nemesis`](super::nemesis::Nemesis), which holds the nodes and the wire; this is what
//! they record and decide.

use std::time::Duration;

use serde::Serialize;
use taskswarm_api::ErrorCode;

use super::rejoin::{cell, gap_cell, Rejoin};
use super::wire::Reply;
use crate::env::net;

/// Longest a replacement retries the forced removal of its dead node (through leader
/// changes); past it the node keeps its disk and the fault did not take effect.
pub const REMOVE_WAIT: Duration = Duration::from_secs(30);
/// Longest a replacement retries add-node; past it the report says the node never
/// became a voter again (and the nodes do not converge, which the checkers see).
pub const ADD_NODE_WAIT: Duration = Duration::from_secs(60);

/// One node replacement, as the harness saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Replacement {
    pub fault_id: u64,
    pub node: usize,
    /// The SIGKILLed process was reaped.
    pub killed: bool,
    /// From the first remove request until the leader's membership no longer listed the
    /// node; `None` when that did not happen within [`REMOVE_WAIT`].
    pub remove_ms: Option<u64>,
    /// Remove requests sent, and the error codes of those that failed, in order.
    pub remove_attempts: u32,
    pub remove_errors: Vec<String>,
    /// Its data directory was deleted (only ever after the removal took).
    pub wiped: bool,
    /// From the first add-node request until the node was a voter again; `None` when it
    /// was not within [`ADD_NODE_WAIT`].
    pub add_node_ms: Option<u64>,
    /// Add-node requests sent, and the error codes of those that failed, in order: a
    /// leader change shows as `not_leader`, `no_leader`, `connect`...
    pub add_node_attempts: u32,
    pub add_node_errors: Vec<String>,
    /// How it came back: the leader's applied index once the node was a voter again
    /// (what it had to reach), the time from then until it got there (`None` when it
    /// did not within [`CATCH_UP_WAIT`](super::rejoin::CATCH_UP_WAIT), or never became a voter), and the span from the
    /// SIGKILL until then (or until a wait gave up).
    #[serde(flatten)]
    pub rejoin: Rejoin,
}

impl Replacement {
    /// The runbook's first half done: dead, out of the membership, disk gone.
    pub fn took_effect(&self) -> bool {
        self.killed && self.remove_ms.is_some() && self.wiped
    }

    /// Healed: a voter again, caught up with the leader.
    pub fn healed(&self) -> bool {
        self.add_node_ms.is_some() && self.rejoin.catch_up_ms.is_some()
    }

    pub(super) fn stopped_note(&self) -> String {
        let removed = match self.remove_ms {
            Some(ms) => format!(
                "removed in {ms} ms{}",
                attempts_note(self.remove_attempts, &self.remove_errors)
            ),
            None => format!(
                "NOT removed within {REMOVE_WAIT:?}{}",
                attempts_note(self.remove_attempts, &self.remove_errors)
            ),
        };
        format!(
            "{} SIGKILLed{}, {removed}, data directory {}",
            net::ns_name(self.node),
            if self.killed { "" } else { " (not reaped)" },
            if self.wiped { "deleted" } else { "kept" }
        )
    }

    pub(super) fn started_note(&self) -> String {
        let added = match self.add_node_ms {
            Some(ms) => format!(
                "a voter again after add-node in {ms} ms{}",
                attempts_note(self.add_node_attempts, &self.add_node_errors)
            ),
            None => format!(
                "NOT a voter again within {ADD_NODE_WAIT:?}{}",
                attempts_note(self.add_node_attempts, &self.add_node_errors)
            ),
        };
        // Nothing to say about a catch-up that was never waited for.
        let caught = if self.rejoin.target_index.is_some() || self.add_node_ms.is_some() {
            format!(", {}", self.rejoin.caught_note())
        } else {
            String::new()
        };
        format!(
            "{} started {}, {added}{caught}",
            net::ns_name(self.node),
            if self.wiped {
                "empty"
            } else {
                "on its old disk"
            }
        )
    }
}

/// `" (3 attempts; failed: not_leader, no_leader)"` after failures, nothing after a
/// first try that succeeded.
fn attempts_note(attempts: u32, errors: &[String]) -> String {
    if errors.is_empty() && attempts <= 1 {
        String::new()
    } else {
        format!(" ({attempts} attempts; failed: {})", errors.join(", "))
    }
}

/// How a retried membership request ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminOutcome {
    /// From the first attempt until done; `None` when it gave up.
    pub done_ms: Option<u64>,
    pub attempts: u32,
    /// Error codes of the attempts that failed, in order.
    pub errors: Vec<String>,
}

/// The node a replacement takes: among the followers, the one `draw` (seeded) picks.
/// Never the leader: the runbook's case is a machine that died, and by the time an
/// operator removes it the survivors have elected a leader among themselves, so the dead
/// node is a follower in their eyes. Killing the leader here would put an election
/// (which kill-minority already tests) in front of the removal and blur what the
/// replacement costs. Which nodes follow is the run's timing; the seed picks among them.
/// With no leader seen, every node is a candidate. `None` only when `all` is empty.
pub fn replace_victim(all: &[usize], leader: Option<usize>, draw: u64) -> Option<usize> {
    let followers: Vec<usize> = all.iter().copied().filter(|n| Some(*n) != leader).collect();
    let candidates = if followers.is_empty() {
        all
    } else {
        &followers
    };
    let i = usize::try_from(draw % candidates.len().max(1) as u64).ok()?;
    candidates.get(i).copied()
}

/// The node's place in a membership: `None` not a member, `Some(voter)` otherwise.
pub fn role_of(members: &[taskswarm_api::Member], node: usize) -> Option<bool> {
    members
        .iter()
        .find(|m| m.id == node as u64)
        .map(|m| m.voter)
}

/// What a membership request's retry loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminStep {
    Done,
    Retry,
    GiveUp,
}

/// After one attempt: `reply` its answer, `goal_seen` whether the leader's membership
/// already shows the change, `time_left` whether the loop's bound allows another try.
/// A success is done. So is a failure whose change shows anyway: a reply lost to a
/// timeout or a leader change after the commit, or add-node's `refused` "already a
/// voter" for a retry of a request that went through. A failure the server will answer
/// the same way every time (a malformed request, an endpoint this build lacks) gives up
/// at once; everything else (`not_leader`, `no_leader`, `connect`, `timeout`, `refused`
/// "did not catch up in time"...) is retried while time is left.
pub fn admin_step(reply: &Reply, goal_seen: bool, time_left: bool) -> AdminStep {
    let permanent = |code: &str| {
        matches!(
            ErrorCode::parse(code),
            Some(
                ErrorCode::InvalidRequest
                    | ErrorCode::NotFound
                    | ErrorCode::MethodNotAllowed
                    | ErrorCode::Unauthorized
                    | ErrorCode::Forbidden
            )
        )
    };
    match reply {
        Reply::Ok(_) => AdminStep::Done,
        _ if goal_seen => AdminStep::Done,
        Reply::Fail(code) if permanent(code) => AdminStep::GiveUp,
        _ if time_left => AdminStep::Retry,
        _ => AdminStep::GiveUp,
    }
}

/// The replacements of a run, one row each, with the longest time no client saw a write
/// acknowledged around each (`gaps_ms[i]` for `replacements[i]`, from
/// [`crate::availability::longest_ok_write_gaps_ms`] over [`Rejoin::span_ms`]).
pub fn render_replacements(replacements: &[Replacement], gaps_ms: &[Option<u64>]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if replacements.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nreplacements (add-node: from the first add-node request until the node was a voter again; write gap: longest time without an acknowledged write, from the last ack before the SIGKILL to the first after the catch-up)"
    );
    let _ = writeln!(
        s,
        "{:>5} {:<5} {:>9} {:<6} {:>11} {:>8} {:>11} {:>9} {:>12}",
        "fault",
        "node",
        "remove ms",
        "wiped",
        "add-node ms",
        "attempts",
        "catch-up ms",
        "to index",
        "write gap ms"
    );
    for (i, r) in replacements.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>5} {:<5} {:>9} {:<6} {:>11} {:>8} {:>11} {:>9} {:>12}",
            r.fault_id,
            net::ns_name(r.node),
            cell(r.remove_ms),
            if r.wiped { "yes" } else { "no" },
            cell(r.add_node_ms),
            r.add_node_attempts,
            r.rejoin.catch_up_cell(),
            r.rejoin.target_cell(),
            gap_cell(gaps_ms, i),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_takes_a_seeded_follower_never_the_leader() {
        let all = [1, 2, 3];
        for draw in 0..20 {
            let v = replace_victim(&all, Some(2), draw);
            assert!(matches!(v, Some(1 | 3)), "{v:?}");
        }
        // The draw decides among the followers.
        assert_eq!(replace_victim(&all, Some(2), 0), Some(1));
        assert_eq!(replace_victim(&all, Some(2), 1), Some(3));
        // No leader seen: any node; a lone node is its own only candidate.
        assert_eq!(replace_victim(&all, None, 2), Some(3));
        assert_eq!(replace_victim(&[1], Some(1), 5), Some(1));
        assert_eq!(replace_victim(&[], None, 5), None);
    }

    #[test]
    fn a_role_is_voter_learner_or_absent() {
        let member = |id, voter| taskswarm_api::Member {
            id,
            addr: format!("http://n{id}"),
            voter,
        };
        let members = [member(1, true), member(2, false)];
        assert_eq!(role_of(&members, 1), Some(true));
        assert_eq!(role_of(&members, 2), Some(false));
        assert_eq!(role_of(&members, 3), None);
    }

    #[test]
    fn membership_requests_retry_through_leader_changes_within_the_bound() {
        let ok = Reply::Ok(serde_json::Value::Null);
        let fail = |c: &str| Reply::Fail(c.to_owned());
        assert_eq!(admin_step(&ok, false, false), AdminStep::Done);
        // A leader change, a lost answer, a learner still catching up: try again.
        for r in [
            fail("not_leader"),
            fail("no_leader"),
            fail("connect"),
            fail("refused"),
            Reply::Info("timeout".to_owned()),
            Reply::Info("http_500".to_owned()),
        ] {
            assert_eq!(admin_step(&r, false, true), AdminStep::Retry, "{r:?}");
            assert_eq!(admin_step(&r, false, false), AdminStep::GiveUp, "{r:?}");
        }
        // The change shows anyway (its answer was lost, or "already a voter"): done.
        assert_eq!(
            admin_step(&Reply::Info("timeout".to_owned()), true, false),
            AdminStep::Done
        );
        assert_eq!(admin_step(&fail("refused"), true, true), AdminStep::Done);
        // Answered the same way every time: no point retrying.
        for code in ["invalid_request", "not_found", "unauthorized"] {
            assert_eq!(admin_step(&fail(code), false, true), AdminStep::GiveUp);
        }
    }

    fn replacement(fault_id: u64, node: usize, add_node_ms: Option<u64>) -> Replacement {
        Replacement {
            fault_id,
            node,
            killed: true,
            remove_ms: Some(35),
            remove_attempts: 1,
            remove_errors: Vec::new(),
            wiped: true,
            add_node_ms,
            add_node_attempts: 2,
            add_node_errors: vec!["not_leader".to_owned()],
            rejoin: Rejoin {
                target_index: add_node_ms.map(|_| 800),
                catch_up_ms: add_node_ms.map(|_| 12),
                from_ns: 2_000_000_000,
                to_ns: 9_000_000_000,
            },
        }
    }

    #[test]
    fn replacements_render_one_row_each_with_their_gap() {
        assert_eq!(render_replacements(&[], &[]), "");
        let rows = [replacement(2, 3, Some(640)), replacement(3, 1, None)];
        let text = render_replacements(&rows, &[Some(90), None]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[3].starts_with("    2 n3           35 yes"), "{text}");
        assert!(lines[3].contains(" 640 "), "{text}");
        assert!(lines[3].ends_with(" 90"), "{text}");
        assert!(lines[4].ends_with(" -"), "{text}");
        assert_eq!(rows[0].rejoin.span_ms(1_000_000_000), (1_000, 8_000));
        assert!(rows[0].took_effect() && rows[0].healed());
        assert!(!rows[1].healed());
        assert_eq!(
            rows[0].stopped_note(),
            "n3 SIGKILLed, removed in 35 ms, data directory deleted"
        );
        assert_eq!(
            rows[0].started_note(),
            "n3 started empty, a voter again after add-node in 640 ms (2 attempts; failed: not_leader), caught up to index 800 in 12 ms"
        );
        assert!(rows[1].started_note().contains("NOT a voter again"));
        let kept = Replacement {
            remove_ms: None,
            wiped: false,
            ..replacement(4, 2, None)
        };
        assert!(!kept.took_effect());
        assert!(
            kept.stopped_note().contains("NOT removed"),
            "{}",
            kept.stopped_note()
        );
        assert!(kept.stopped_note().ends_with("data directory kept"));
    }
}
