//! Pre-vote: the decisions, as pure functions of what a node knows.
//!
//! openraft 0.9 has no Pre-Vote (Raft thesis §9.6): a follower that stops hearing from
//! the leader raises its term and asks for votes. A node cut off by a partition keeps
//! doing that, and when the partition heals its higher term deposes a healthy leader.
//! We switch openraft's own election timer off (`enable_elect = false`) and stand for
//! election ourselves (`elector.rs`), only after a majority of every voter configuration
//! answered a pre-vote with yes. A pre-vote changes nothing on either side: no term is
//! raised and nothing is written, so a node that cannot win never disturbs the others.
//!
//! A voter says yes only when it would also grant the real vote: it has not heard from
//! a leader for a full lease (the same rule openraft applies to real votes, with the same
//! lease), the candidate's log is at least as up to date as its own, and the term the
//! candidate would stand in is above its own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::types::{LogId, NodeId};

/// Asks "would you vote for me if I stood in `term`?". Encoded with the versioned Raft
/// RPC encoding (`wire.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The term the candidate would stand in: its current term + 1.
    pub term: u64,
    pub last_log_id: Option<LogId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    pub granted: bool,
    /// The voter's current term, for the candidate's log line.
    pub term: u64,
}

/// What a node knows about itself when it decides to stand or answers a pre-vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterView {
    pub term: u64,
    /// This node leads (its vote is for itself and committed).
    pub is_leader: bool,
    pub is_voter: bool,
    /// Milliseconds since this node last heard from a leader it follows (its committed
    /// vote was last refreshed); `None` when it follows no leader.
    pub leader_heard_ms_ago: Option<u64>,
    /// Milliseconds since its vote last changed or was refreshed for any reason (a leader
    /// heard, a vote granted, an election started); `None` never since start.
    pub vote_touched_ms_ago: Option<u64>,
    /// For a leader: milliseconds since a quorum last acknowledged it.
    pub quorum_acked_ms_ago: Option<u64>,
    pub last_log_id: Option<LogId>,
}

/// Whether to answer a pre-vote with yes.
pub fn grant(view: &VoterView, req: &PreVoteRequest, lease_ms: u64) -> bool {
    if view.is_leader {
        // A leader that a quorum follows refuses: that is the point. One cut off from its
        // quorum for a lease is no obstacle (the majority side elects without it anyway).
        return matches!(view.quorum_acked_ms_ago, Some(ms) if ms > lease_ms);
    }
    if matches!(view.leader_heard_ms_ago, Some(ms) if ms <= lease_ms) {
        return false;
    }
    // openraft grants a real vote only for a vote greater than its own: a higher term.
    if req.term <= view.term {
        return false;
    }
    req.last_log_id >= view.last_log_id
}

/// Whether a follower's leader was heard from within the lease, so that redirecting a
/// client to it is worth the client's time. A leader is always fresh to itself.
pub fn leader_fresh(view: &VoterView, lease_ms: u64) -> bool {
    view.is_leader || view.leader_heard_ms_ago.is_some_and(|ms| ms <= lease_ms)
}

/// Whether a node should start a pre-vote round now.
///
/// `quiet_ms` is how long nothing has reset its timer: the shortest of the time since its
/// vote was touched (it heard a leader, voted, or stood), since its last round, and since
/// it started.
pub fn should_stand(view: &VoterView, quiet_ms: u64, stand_after_ms: u64) -> bool {
    !view.is_leader && view.is_voter && quiet_ms >= stand_after_ms
}

/// Whether a won pre-vote still holds when the round ends, `round_ms` after `before` was
/// read. A round takes time: meanwhile another candidate may have won (this node's term
/// rose, or it hears a leader) or asked for and got this node's vote (its vote was
/// touched). Standing then would depose a leader elected a moment ago.
pub fn still_stands(before: &VoterView, now: &VoterView, round_ms: u64) -> bool {
    // Hearing a leader, granting a vote and a term change all touch the vote; a follower
    // of a dead leader still holds its old committed vote, untouched.
    now.term == before.term
        && !now.is_leader
        && now.vote_touched_ms_ago.is_none_or(|ms| ms >= round_ms)
}

/// The shortest of the known ages: the most recent event resets the timer.
pub fn quiet_ms(ages_ms: &[Option<u64>]) -> u64 {
    ages_ms.iter().flatten().copied().min().unwrap_or(u64::MAX)
}

/// Whether `granted` holds a majority of every configuration (two during a joint
/// membership change).
pub fn is_quorum(configs: &[Vec<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    !configs.is_empty()
        && configs.iter().all(|voters| {
            let yes = voters.iter().filter(|v| granted.contains(v)).count();
            yes * 2 > voters.len()
        })
}

/// A timeout drawn uniformly from `[min_ms, max_ms]`, so that two followers that lost the
/// same leader rarely stand at the same moment. `unit` is a random number in `[0, 1)`.
pub fn stand_after_ms(min_ms: u64, max_ms: u64, unit: f64) -> u64 {
    assert!(min_ms <= max_ms, "stand timeout range {min_ms}..{max_ms}");
    assert!((0.0..1.0).contains(&unit), "unit {unit} out of [0, 1)");
    let span = (max_ms - min_ms) as f64;
    min_ms + ((span + 1.0) * unit) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    const LEASE_MS: u64 = 500;

    fn log_id(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    fn follower(term: u64, heard_ms_ago: Option<u64>, last: Option<LogId>) -> VoterView {
        VoterView {
            term,
            is_leader: false,
            is_voter: true,
            leader_heard_ms_ago: heard_ms_ago,
            vote_touched_ms_ago: heard_ms_ago,
            quorum_acked_ms_ago: None,
            last_log_id: last,
        }
    }

    fn ask(term: u64, last: Option<LogId>) -> PreVoteRequest {
        PreVoteRequest {
            candidate: 2,
            term,
            last_log_id: last,
        }
    }

    #[test]
    fn a_follower_that_hears_its_leader_refuses() {
        let v = follower(3, Some(LEASE_MS), log_id(3, 10));
        assert!(!grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
        let v = follower(3, Some(LEASE_MS + 1), log_id(3, 10));
        assert!(grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
    }

    #[test]
    fn a_follower_with_no_leader_grants_an_up_to_date_candidate() {
        let v = follower(3, None, log_id(3, 10));
        assert!(grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
        assert!(grant(&v, &ask(4, log_id(3, 11)), LEASE_MS));
        assert!(
            grant(&v, &ask(4, log_id(4, 2)), LEASE_MS),
            "a later term wins"
        );
    }

    #[test]
    fn a_shorter_or_older_log_is_refused() {
        let v = follower(3, None, log_id(3, 10));
        assert!(!grant(&v, &ask(4, log_id(3, 9)), LEASE_MS));
        assert!(!grant(&v, &ask(4, log_id(2, 50)), LEASE_MS));
        assert!(!grant(&v, &ask(4, None), LEASE_MS));
        let empty = follower(0, None, None);
        assert!(grant(&empty, &ask(1, None), LEASE_MS));
    }

    #[test]
    fn a_term_not_above_the_voters_is_refused() {
        let v = follower(5, None, log_id(3, 10));
        assert!(!grant(&v, &ask(5, log_id(3, 10)), LEASE_MS));
        assert!(!grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
        assert!(grant(&v, &ask(6, log_id(3, 10)), LEASE_MS));
    }

    #[test]
    fn a_leader_refuses_while_its_quorum_answers() {
        let mut v = follower(3, None, log_id(3, 10));
        v.is_leader = true;
        v.quorum_acked_ms_ago = Some(40);
        assert!(!grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
        v.quorum_acked_ms_ago = None;
        assert!(!grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
        v.quorum_acked_ms_ago = Some(LEASE_MS + 1);
        assert!(grant(&v, &ask(4, log_id(3, 10)), LEASE_MS));
    }

    #[test]
    fn only_a_quiet_voter_that_does_not_lead_stands() {
        let v = follower(3, Some(900), log_id(3, 10));
        assert!(should_stand(&v, 900, 800));
        assert!(!should_stand(&v, 799, 800));
        let mut learner = v.clone();
        learner.is_voter = false;
        assert!(!should_stand(&learner, 900, 800));
        let mut leader = v;
        leader.is_leader = true;
        assert!(!should_stand(&leader, 900, 800));
    }

    #[test]
    fn a_leader_unheard_for_a_lease_is_not_fresh() {
        assert!(leader_fresh(&follower(3, Some(LEASE_MS), None), LEASE_MS));
        assert!(!leader_fresh(
            &follower(3, Some(LEASE_MS + 1), None),
            LEASE_MS
        ));
        assert!(!leader_fresh(&follower(3, None, None), LEASE_MS));
        let mut leader = follower(3, None, None);
        leader.is_leader = true;
        assert!(leader_fresh(&leader, LEASE_MS));
    }

    #[test]
    fn a_round_overtaken_by_another_election_does_not_stand() {
        let before = follower(6, None, log_id(6, 10));
        let mut now = before.clone();
        now.vote_touched_ms_ago = Some(900);
        assert!(
            still_stands(&before, &now, 200),
            "nothing happened during the round"
        );
        now.vote_touched_ms_ago = None;
        assert!(still_stands(&before, &now, 200));
        let mut voted = before.clone();
        voted.term = 7;
        assert!(
            !still_stands(&before, &voted, 200),
            "voted for another in a new term"
        );
        let mut touched = before.clone();
        touched.vote_touched_ms_ago = Some(50);
        assert!(
            !still_stands(&before, &touched, 200),
            "its vote changed during the round"
        );
        let follows = follower(6, Some(10), log_id(6, 10));
        assert!(!still_stands(&before, &follows, 200), "a leader appeared");
        let dead_leader = follower(6, Some(900), log_id(6, 10));
        assert!(
            still_stands(&dead_leader, &dead_leader, 200),
            "the old leader's committed vote, unrefreshed, is no obstacle"
        );
    }

    #[test]
    fn the_most_recent_event_resets_the_timer() {
        assert_eq!(quiet_ms(&[Some(900), None, Some(30)]), 30);
        assert_eq!(quiet_ms(&[None, None]), u64::MAX);
    }

    #[test]
    fn quorum_needs_a_majority_of_every_configuration() {
        let granted: BTreeSet<NodeId> = [1, 2].into();
        assert!(is_quorum(&[vec![1, 2, 3]], &granted));
        assert!(!is_quorum(&[vec![1, 2, 3, 4]], &granted));
        assert!(!is_quorum(&[vec![1, 2, 3], vec![3, 4, 5]], &granted));
        let granted: BTreeSet<NodeId> = [1, 2, 4, 5].into();
        assert!(is_quorum(&[vec![1, 2, 3], vec![3, 4, 5, 2]], &granted));
        assert!(!is_quorum(&[vec![1, 2, 3], vec![3, 4, 6, 7]], &granted));
        assert!(is_quorum(&[vec![1]], &[1].into()));
        assert!(!is_quorum(&[], &granted));
    }

    #[test]
    fn stand_timeouts_cover_the_range() {
        assert_eq!(stand_after_ms(500, 900, 0.0), 500);
        assert_eq!(stand_after_ms(500, 900, 0.999_999), 900);
        assert_eq!(stand_after_ms(500, 500, 0.5), 500);
        let mid = stand_after_ms(500, 900, 0.5);
        assert!((690..=710).contains(&mid), "{mid}");
    }
}
