//! The election timer that replaces openraft's own (switched off with
//! `enable_elect = false`): a voter that has heard nothing for its timeout asks every
//! voter for a pre-vote and stands for election only when a majority of every
//! configuration says yes. The decisions are in `pre_vote.rs`; this file only gathers
//! what they need and carries out what they return.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, EffectiveMembership, ServerState};
use tokio::time::Instant;

use super::network::Network;
use super::pre_vote::{self, PreVoteRequest, PreVoteResponse, VoterView};
use crate::storage::LogStore;
use crate::types::{NodeId, Raft};

/// How often the elector looks at its node. Far below the lease, so a stand is late by
/// at most this.
pub const ELECTOR_TICK_MS: u64 = 20;

/// How long a pre-vote round waits for answers. A peer that has not answered by then
/// counts as a no.
pub const PRE_VOTE_TIMEOUT_MS: u64 = 250;

/// The timing of elections, all from the node's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTiming {
    /// A voter that heard from a leader this recently refuses to vote (openraft's leader
    /// lease uses the same value), and a leader without a quorum acknowledgement for this
    /// long refuses writes (`no_quorum`).
    pub lease_ms: u64,
    /// A follower stands after a silence drawn from `[stand_min_ms, stand_max_ms]`.
    pub stand_min_ms: u64,
    pub stand_max_ms: u64,
}

impl ElectionTiming {
    /// After a pre-vote round that failed, the next one comes sooner than a full timeout:
    /// a voter that refused may only have heard the dead leader a few milliseconds later
    /// than we did. Drawn from `[lease/5, lease/2]`.
    fn retry_range_ms(&self) -> (u64, u64) {
        (self.lease_ms / 5, self.lease_ms / 2)
    }
}

/// What the elector needs of its node, read in one visit to openraft's core.
struct Snapshot {
    view: VoterView,
    /// The voters of each configuration (two during a joint change) and every member's
    /// address; shared with openraft, not copied on every tick.
    membership: Arc<EffectiveMembership<NodeId, BasicNode>>,
}

pub struct Elector {
    id: NodeId,
    raft: Raft,
    log: LogStore,
    network: Network,
    timing: ElectionTiming,
    /// False while this node follows a leader it has not heard from for a lease: it is
    /// probably gone (paused, cut off), and sending clients to it would cost them a
    /// timeout each. Updated every tick.
    leader_fresh: AtomicBool,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("id", &self.id)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Elector {
    pub(crate) fn new(
        id: NodeId,
        raft: Raft,
        log: LogStore,
        network: Network,
        timing: ElectionTiming,
    ) -> Self {
        assert!(timing.lease_ms > 0 && timing.lease_ms <= timing.stand_min_ms);
        assert!(timing.stand_min_ms <= timing.stand_max_ms);
        Self {
            id,
            raft,
            log,
            network,
            timing,
            leader_fresh: AtomicBool::new(true),
        }
    }

    /// Whether the leader this node follows was heard from within the lease (see
    /// `leader_fresh`); true until the first look.
    pub(crate) fn leader_fresh(&self) -> bool {
        self.leader_fresh.load(Ordering::Relaxed)
    }

    /// `None` once Raft has stopped. `view.last_log_id` is left empty: reading it costs a
    /// storage read, done only when a pre-vote needs it (`with_last_log_id`).
    async fn snapshot(&self) -> Option<Snapshot> {
        let id = self.id;
        let quorum_acked_ms_ago = self.raft.metrics().borrow().millis_since_quorum_ack;
        let (mut view, membership) = self
            .raft
            .with_raft_state(move |st| {
                let now = Instant::now();
                let vote = *st.vote_ref();
                let touched_ms_ago = st
                    .vote_last_modified()
                    .map(|t| now.saturating_duration_since(t).as_millis() as u64);
                let is_leader = st.server_state == ServerState::Leader;
                let membership = st.membership_state.effective();
                let view = VoterView {
                    term: vote.leader_id().term,
                    is_leader,
                    is_voter: membership.voter_ids().any(|v| v == id),
                    leader_heard_ms_ago: if vote.is_committed() && !is_leader {
                        touched_ms_ago
                    } else {
                        None
                    },
                    vote_touched_ms_ago: touched_ms_ago,
                    quorum_acked_ms_ago: None,
                    last_log_id: None,
                };
                (view, Arc::clone(membership))
            })
            .await
            .ok()?;
        view.quorum_acked_ms_ago = quorum_acked_ms_ago;
        Some(Snapshot { view, membership })
    }

    /// Fills in `view.last_log_id`; `None` when the log cannot be read.
    async fn with_last_log_id(&self, mut s: Snapshot) -> Option<Snapshot> {
        match self.log.last_log_id().await {
            Ok(last) => {
                s.view.last_log_id = last;
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "pre-vote: cannot read the last log id");
                None
            }
        }
    }

    /// Answers a peer's pre-vote. Changes nothing here.
    pub(crate) async fn answer(&self, req: &PreVoteRequest) -> PreVoteResponse {
        let snapshot = match self.snapshot().await {
            Some(s) => self.with_last_log_id(s).await,
            None => None,
        };
        let Some(s) = snapshot else {
            return PreVoteResponse {
                granted: false,
                term: 0,
            };
        };
        let granted = pre_vote::grant(&s.view, req, self.timing.lease_ms);
        tracing::debug!(
            candidate = req.candidate,
            term = req.term,
            granted,
            "pre-vote asked"
        );
        PreVoteResponse {
            granted,
            term: s.view.term,
        }
    }

    /// Runs until Raft stops.
    pub(crate) async fn run(self: Arc<Self>) {
        let started = Instant::now();
        let mut last_round: Option<Instant> = None;
        let mut stand_after_ms = self.draw(self.timing.stand_min_ms, self.timing.stand_max_ms);
        loop {
            tokio::time::sleep(Duration::from_millis(ELECTOR_TICK_MS)).await;
            let Some(s) = self.snapshot().await else {
                return;
            };
            self.leader_fresh.store(
                pre_vote::leader_fresh(&s.view, self.timing.lease_ms),
                Ordering::Relaxed,
            );
            let quiet_ms = pre_vote::quiet_ms(&[
                s.view.vote_touched_ms_ago,
                last_round.map(|t| t.elapsed().as_millis() as u64),
                Some(started.elapsed().as_millis() as u64),
            ]);
            if !pre_vote::should_stand(&s.view, quiet_ms, stand_after_ms) {
                continue;
            }
            last_round = Some(Instant::now());
            let Some(s) = self.with_last_log_id(s).await else {
                continue;
            };
            let req = PreVoteRequest {
                candidate: self.id,
                term: s.view.term + 1,
                last_log_id: s.view.last_log_id,
            };
            let round_started = Instant::now();
            let granted = self.round(&req, &s).await;
            let won = pre_vote::is_quorum(s.membership.get_joint_config(), &granted);
            let Some(now) = self.snapshot().await else {
                return;
            };
            let round_ms = round_started.elapsed().as_millis() as u64;
            if won && !pre_vote::still_stands(&s.view, &now.view, round_ms) {
                tracing::debug!(
                    term = req.term,
                    "pre-vote won but overtaken by another election: not standing"
                );
                stand_after_ms = self.draw(self.timing.stand_min_ms, self.timing.stand_max_ms);
                last_round = Some(Instant::now());
                continue;
            }
            if won {
                tracing::info!(term = req.term, quiet_ms, granted = ?granted, "pre-vote won: standing for election");
                if self.raft.trigger().elect().await.is_err() {
                    return;
                }
                stand_after_ms = self.draw(self.timing.stand_min_ms, self.timing.stand_max_ms);
            } else {
                tracing::debug!(term = req.term, quiet_ms, granted = ?granted, "pre-vote lost: not standing");
                let (min, max) = self.timing.retry_range_ms();
                stand_after_ms = self.draw(min, max);
            }
        }
    }

    /// Asks every other voter at once; returns who said yes, this node included.
    async fn round(&self, req: &PreVoteRequest, s: &Snapshot) -> BTreeSet<NodeId> {
        // The RPC's own deadline covers connecting and answering.
        let timeout = Duration::from_millis(PRE_VOTE_TIMEOUT_MS);
        let asks = s
            .membership
            .voter_ids()
            .filter(|v| *v != self.id)
            .filter_map(|v| s.membership.get_node(&v).map(|node| (v, &node.addr)))
            .map(|(v, addr)| {
                let conn = self.network.connect(v, addr);
                async move {
                    match conn.pre_vote(req, timeout).await {
                        Ok(resp) => resp.granted.then_some(v),
                        Err(e) => {
                            tracing::debug!(peer = v, error = %e, "pre-vote not answered");
                            None
                        }
                    }
                }
            });
        let mut granted: BTreeSet<NodeId> = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        // `should_stand` holds only after a lease of silence, so we would grant ourselves.
        granted.insert(self.id);
        granted
    }

    fn draw(&self, min_ms: u64, max_ms: u64) -> u64 {
        pre_vote::stand_after_ms(min_ms, max_ms, fastrand::f64())
    }
}
