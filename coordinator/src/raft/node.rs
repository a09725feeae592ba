//! A running Raft node as the rest of the coordinator sees it: propose a command, read
//! the state, know the leader. Nothing outside `raft` and `storage` touches openraft.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ServerState};
use taskswarm_state_machine::{Command, CommandResult, StateMachine, TaskEvent};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::append_stream::AppendsReceived;
use super::behaviour::{self, BehaviourReports};
use super::catch_up;
use super::clock::{wall_ms, ClusterClock};
use super::cluster_id::{self, ClusterIdentity};
use super::elector::{ElectionTiming, Elector};
use super::formation;
use super::group_commit::{BatchStats, Batcher, Proposal, PROPOSAL_QUEUE_MAX};
use super::network::Network;
use super::{snapshot_cadence, ticker, ProposeError};
use crate::storage::disk_space::DiskSpace;
use crate::storage::{self, ApplyHooks, LogStore, SharedMachine};
use crate::types::{NodeId, Raft};

/// Purge the log behind a snapshot in steps of this many entries (openraft's default 256
/// would keep a small cluster's log around for long after each snapshot).
pub const PURGE_BATCH_ENTRIES: u64 = 64;

/// Entries per AppendEntries RPC at most (each up to `ENTRY_BYTES_MAX`).
pub const MAX_PAYLOAD_ENTRIES: u64 = 16;

/// Lifecycle events buffered per subscriber before a slow one starts missing some.
pub const EVENT_CHANNEL_CAPACITY: usize = 4_096;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The URL other nodes and clients reach this node at.
    pub advertise: String,
    pub data_dir: PathBuf,
    /// The initial voters. The lowest id initializes the cluster on first start.
    pub peers: BTreeMap<NodeId, String>,
    pub cluster_secret: String,
    pub heartbeat_interval_ms: u64,
    /// The leader lease (see `elector::ElectionTiming`) and the least silence before a
    /// follower stands for election.
    pub election_timeout_min_ms: u64,
    /// The most silence before a follower stands (the timeout is drawn in between).
    pub election_timeout_max_ms: u64,
    pub write_timeout_ms: u64,
    pub group_commit: bool,
    /// AppendEntries travel on one stream per follower (`append_stream.rs`), and this
    /// node serves it; without, POSTs only.
    pub append_stream: bool,
    /// Build a snapshot (and purge the log behind it) after at least this many entries,
    /// once the log since the last one reaches `snapshot_log_percent` of its size
    /// (`snapshot_cadence.rs`).
    pub snapshot_every_entries: u64,
    /// Percent of the last snapshot's size the log must reach first; 0: entries only.
    pub snapshot_log_percent: u64,
    /// Log entries kept behind the last snapshot, so a briefly lagging follower catches
    /// up from the log instead of a full snapshot.
    pub snapshot_keep_logs: u64,
    /// Settings the leader writes into the log (`Configure`) when the replicated ones
    /// differ. Nodes never apply their own flags directly: all replicas must agree.
    pub state: taskswarm_state_machine::Config,
    /// The highest behaviour version this node accepts: its build's, or lower to hold a
    /// rolling upgrade's rollback window open (`behaviour.rs`).
    pub behaviour_version_max: u32,
    /// Client writes are refused while the data disk has less free (`disk_space.rs`).
    pub disk_free_min_mb: u64,
    /// Never form a new cluster, even as the lowest id with an empty log: wait to be
    /// added (a node replacing a dead one with an empty disk).
    pub join: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::OpenError),
    #[error("raft config: {0}")]
    Config(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("data dir {data_dir}: {why}")]
    BehaviourUnsupported {
        data_dir: PathBuf,
        why: storage::behaviour_guard::Unsupported,
    },
}

/// Cluster time and wall time read at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ClockRef {
    pub cluster_ms: u64,
    pub wall_ms: u64,
}

impl ClockRef {
    /// The wall-clock estimate of a cluster-time instant.
    pub fn to_wall_ms(&self, cluster_ms: u64) -> u64 {
        if cluster_ms >= self.cluster_ms {
            self.wall_ms.saturating_add(cluster_ms - self.cluster_ms)
        } else {
            self.wall_ms.saturating_sub(self.cluster_ms - cluster_ms)
        }
    }
}

/// Who leads, as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    Leader,
    Follower { leader: Option<(NodeId, String)> },
}

/// A snapshot of the node's Raft view, for `/v1/cluster` and metrics.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: NodeId,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Last log index covered by this node's snapshot, and the last one purged.
    pub snapshot_index: u64,
    pub purged_index: u64,
    /// (id, advertised address, is a voter)
    pub members: Vec<(NodeId, String, bool)>,
    pub entries_proposed: u64,
    pub commands_proposed: u64,
    /// The applied behaviour version, and the highest this node accepts.
    pub behaviour_version: u32,
    pub behaviour_version_max: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, String)> },
    #[error("{0}")]
    Refused(String),
}

/// How long a leader that removed itself keeps its Raft running so the committed change
/// reaches the other members (a few heartbeats).
pub const REMOVED_LEADER_STOP_DELAY: Duration = Duration::from_millis(300);

pub struct Node {
    id: NodeId,
    raft: Raft,
    state: Arc<SharedMachine>,
    proposals: mpsc::Sender<Proposal>,
    events: broadcast::Sender<Arc<TaskEvent>>,
    applied: watch::Receiver<u64>,
    ready: watch::Receiver<u64>,
    clock: Arc<ClusterClock>,
    stats: Arc<BatchStats>,
    /// The applied cluster time, published by the apply hook: the clock reads it without
    /// the state lock.
    applied_ms: Arc<AtomicU64>,
    /// The settings this node's flags ask for; the leader replicates them.
    desired: taskswarm_state_machine::Config,
    /// A leader without a quorum acknowledgement for longer than this refuses work.
    quorum_stale_ms: u64,
    /// Stands for election after a pre-vote majority; answers peers' pre-votes.
    elector: Arc<Elector>,
    /// Which cluster this node belongs to (`cluster_id.rs`).
    identity: Arc<ClusterIdentity>,
    snapshot_stats: Arc<storage::SnapshotStats>,
    /// Set when the node begins to stop: long-polls answer what they have and event
    /// streams end, so the HTTP server's graceful stop does not wait on them.
    stopping: watch::Sender<bool>,
    /// This node removed itself from the membership as leader: it no longer serves as a
    /// member (see `remove_member`).
    removed: std::sync::atomic::AtomicBool,
    /// Held for the length of a membership change (`membership_turn`).
    membership: tokio::sync::Mutex<()>,
    /// The highest behaviour version this node accepts, and what the members it sent
    /// RPCs to said they accept (`behaviour.rs`).
    behaviour_max: u32,
    behaviour_reports: Arc<BehaviourReports>,
    /// The data disk's free space; writes are refused while it is short.
    disk: Arc<DiskSpace>,
    /// The Raft log's store, for its memory figures.
    log_store: LogStore,
    /// AppendEntries this node answered, by how they came (`append_stream.rs`).
    appends_received: Arc<AppendsReceived>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Node {
    pub async fn start(cfg: NodeConfig) -> Result<Arc<Node>, StartError> {
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let (applied_tx, applied) = watch::channel(0);
        let (ready_tx, ready) = watch::channel(0);
        let applied_ms = Arc::new(AtomicU64::new(0));
        let hooks = ApplyHooks {
            events: events.clone(),
            applied: applied_tx,
            ready: ready_tx,
            cluster_ms: applied_ms.clone(),
            behaviour_max: cfg.behaviour_version_max,
        };
        // Every replica starts from the same default; `cfg.state` arrives through the log.
        let (log_store, sm_store) = storage::open(
            &cfg.data_dir,
            taskswarm_state_machine::Config::default(),
            hooks,
        )?;
        let state = sm_store.shared();
        let behaviour = state.read().behaviour_version();
        storage::behaviour_guard::check(behaviour, cfg.behaviour_version_max).map_err(|why| {
            StartError::BehaviourUnsupported {
                data_dir: cfg.data_dir.clone(),
                why,
            }
        })?;
        let snapshot_stats = sm_store.snapshot_stats();
        let timing = ElectionTiming {
            lease_ms: cfg.election_timeout_min_ms,
            stand_min_ms: cfg.election_timeout_min_ms,
            stand_max_ms: cfg.election_timeout_max_ms,
        };

        let raft_config = openraft::Config {
            cluster_name: "taskswarm".into(),
            heartbeat_interval: cfg.heartbeat_interval_ms,
            // openraft's own election timer is off: `elector.rs` stands only after a
            // pre-vote majority. openraft still uses `election_timeout_max` as the leader
            // lease under which a voter refuses a real vote: the same lease as the
            // pre-vote's. Its `election_timeout_min` only has to pass validation.
            enable_elect: false,
            election_timeout_min: cfg.heartbeat_interval_ms
                + (timing.lease_ms.saturating_sub(cfg.heartbeat_interval_ms)) / 2,
            election_timeout_max: timing.lease_ms,
            // Entries carry up to ENTRY_BYTES_MAX each: few per RPC, and the network
            // halves the count when a batch does not fit in a heartbeat interval.
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            // Our own rule triggers builds (`snapshot_cadence.rs`).
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: cfg.snapshot_keep_logs,
            purge_batch_size: PURGE_BATCH_ENTRIES,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;

        let disk = log_store.disk_space();
        disk.set_min_free_mb(cfg.disk_free_min_mb);
        disk.sample();
        let identity =
            Arc::new(ClusterIdentity::load(log_store.clone()).map_err(StartError::Raft)?);
        let behaviour_reports = Arc::new(BehaviourReports::default());
        log_store.run_as(cfg.id).map_err(StartError::Raft)?;
        let network = Network::new(
            cfg.append_stream,
            cfg.cluster_secret.clone(),
            identity.clone(),
            behaviour_reports.clone(),
            log_store.durable(),
        );
        let raft = Raft::new(
            cfg.id,
            Arc::new(raft_config),
            network.clone(),
            log_store.clone(),
            sm_store,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        // The lowest id forms the cluster on its very first start (`formation.rs`). A
        // restart finds its log and vote on disk, and initialize refuses, so it never
        // re-forms.
        let lowest = cfg.peers.keys().next().copied();
        if lowest == Some(cfg.id)
            && !raft
                .is_initialized()
                .await
                .map_err(|e| StartError::Raft(e.to_string()))?
        {
            let ready = if cfg.join {
                Vec::new()
            } else {
                formation::ready_peers(cfg.id, &cfg.peers).await
            };
            match formation::decide(cfg.join, ready) {
                Ok(()) => {
                    let members: BTreeMap<NodeId, BasicNode> = cfg
                        .peers
                        .iter()
                        .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
                        .collect();
                    // The id is on disk before the cluster exists: the members learn it
                    // from this node's first RPC.
                    let id = identity.create().map_err(StartError::Raft)?;
                    tracing::info!(cluster_id = %cluster_id::format(id), "new cluster id");
                    match raft.initialize(members).await {
                        Ok(()) => {
                            tracing::info!(voters = ?cfg.peers.keys().collect::<Vec<_>>(), "initialized a new cluster")
                        }
                        Err(e) => tracing::info!(error = %e, "cluster already initialized"),
                    }
                }
                Err(why) => tracing::warn!(
                    ?why,
                    node = cfg.id,
                    "not forming a new cluster: waiting to be added (taskswarm cluster add-node --id {} --addr {})",
                    cfg.id,
                    cfg.advertise
                ),
            }
        }

        let (proposals, rx) = mpsc::channel(PROPOSAL_QUEUE_MAX);
        let clock = Arc::new(ClusterClock::default());
        let stats = Arc::new(BatchStats::default());
        let batcher = Batcher {
            raft: raft.clone(),
            clock: clock.clone(),
            applied_ms: applied_ms.clone(),
            write_timeout: Duration::from_millis(cfg.write_timeout_ms),
            group_commit: cfg.group_commit,
            stats: stats.clone(),
        };
        tokio::spawn(batcher.run(rx));
        let log_store_for_metrics = log_store.clone();
        let elector = Arc::new(Elector::new(
            cfg.id,
            raft.clone(),
            log_store,
            network,
            timing,
        ));
        tokio::spawn(elector.clone().run());
        let node = Arc::new(Node {
            id: cfg.id,
            raft,
            state,
            proposals,
            events,
            applied,
            ready,
            clock,
            stats,
            applied_ms,
            desired: cfg.state,
            quorum_stale_ms: timing.lease_ms,
            elector,
            identity,
            snapshot_stats,
            stopping: watch::Sender::new(false),
            removed: std::sync::atomic::AtomicBool::new(false),
            membership: tokio::sync::Mutex::new(()),
            behaviour_max: cfg.behaviour_version_max,
            behaviour_reports,
            disk,
            log_store: log_store_for_metrics,
            appends_received: Arc::default(),
        });
        tokio::spawn(sample_disk_space(Arc::downgrade(&node)));
        tokio::spawn(exit_if_raft_dies(Arc::downgrade(&node)));
        tokio::spawn(ticker::run(Arc::downgrade(&node)));
        tokio::spawn(snapshot_cadence::run(
            Arc::downgrade(&node),
            snapshot_cadence::Rule {
                entries_min: cfg.snapshot_every_entries,
                log_percent: cfg.snapshot_log_percent,
            },
        ));
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The highest behaviour version this node accepts.
    pub fn behaviour_max(&self) -> u32 {
        self.behaviour_max
    }

    /// Log bytes appended since this process started (`snapshot_cadence.rs`).
    pub(crate) fn log_appended_bytes(&self) -> u64 {
        self.log_store.appended_bytes()
    }

    /// Asks openraft for a snapshot build now (ignored while one is being built).
    pub(crate) async fn trigger_snapshot(&self) {
        if let Err(e) = self.raft.trigger().snapshot().await {
            tracing::warn!(error = %e, "snapshot trigger refused");
        }
    }

    /// AppendEntries this node answered, on a stream and as POSTs.
    pub fn appends_received(&self) -> Arc<AppendsReceived> {
        self.appends_received.clone()
    }

    /// For the Raft RPC server only.
    pub(crate) fn raft_handle(&self) -> Raft {
        self.raft.clone()
    }

    /// For the Raft RPC server only: checks the sender's cluster.
    pub(crate) fn cluster_identity(&self) -> Arc<ClusterIdentity> {
        self.identity.clone()
    }

    /// For the Raft RPC server only: answers pre-votes.
    pub(crate) fn elector(&self) -> Arc<Elector> {
        self.elector.clone()
    }

    /// Proposes one command (batched with others) and waits for its result. `NotLeader`
    /// means nothing was proposed; `Indeterminate` means it may or may not commit.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, ProposeError> {
        if let Leadership::Follower { leader } = self.leadership() {
            return Err(ProposeError::NotLeader { leader });
        }
        self.check_quorum()?;
        if self.disk.is_full() {
            return Err(ProposeError::StorageFull {
                free_bytes: self.disk.free_bytes().unwrap_or(0),
                min_free_bytes: self.disk.min_free_bytes(),
            });
        }
        let (reply, rx) = oneshot::channel();
        self.proposals
            .try_send(Proposal { command, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => ProposeError::Stopped,
            })?;
        rx.await
            .unwrap_or_else(|_| Err(ProposeError::Indeterminate("the batcher stopped".into())))
    }

    /// Waits until this node has applied everything committed before the call, having
    /// confirmed it is still the leader (ReadIndex). Reads after this are linearizable.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        if let Leadership::Follower { leader } = self.leadership() {
            return Err(ProposeError::NotLeader { leader });
        }
        self.check_quorum()?;
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(ProposeError::NotLeader {
                    leader: f
                        .leader_id
                        .zip(f.leader_node.as_ref().map(|n| n.addr.clone())),
                }),
                None => Err(ProposeError::Unavailable(e.to_string())),
            },
        }
    }

    /// Refuses at once when this leader has not heard from a quorum for an election
    /// timeout. Why: openraft 0.9 has no check-quorum step-down, so a leader cut off from
    /// the majority keeps leading in its own eyes, and every write sent to it would wait
    /// out the write timeout as `indeterminate`. A quick, definite refusal sends clients
    /// on to the side that can commit. The majority has elected (or is electing) a new
    /// leader by then: followers stand for election after the same timeout.
    pub fn check_quorum(&self) -> Result<(), ProposeError> {
        let since_ms = self.raft.metrics().borrow().millis_since_quorum_ack;
        match since_ms {
            Some(since_ms) if since_ms > self.quorum_stale_ms => {
                Err(ProposeError::NoQuorum { since_ms })
            }
            _ => Ok(()),
        }
    }

    /// The current Raft term, without copying the rest of the metrics.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    pub fn leadership(&self) -> Leadership {
        if self.removed.load(std::sync::atomic::Ordering::Relaxed) {
            return Leadership::Follower { leader: None };
        }
        // Borrowed, not cloned: this runs on every proposal and claim.
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader && m.current_leader == Some(self.id) {
            return Leadership::Leader;
        }
        // A leader not heard from for a lease is probably paused or cut off: answering
        // `no_leader` sends the client on, a redirect would cost it a timeout.
        let leader = m
            .current_leader
            .filter(|_| self.elector.leader_fresh())
            .and_then(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| (id, n.addr.clone()))
            });
        Leadership::Follower { leader }
    }

    /// The applied state. Hold the guard briefly: applies wait for it.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, StateMachine> {
        self.state.read()
    }

    /// A new subscription to lifecycle events applied from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.events.subscribe()
    }

    /// Changes whenever an entry is applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Changes when an apply may have made a task claimable.
    pub fn ready(&self) -> watch::Receiver<u64> {
        self.ready.clone()
    }

    /// The clocks now, for converting cluster times into wall-clock estimates. Reads the
    /// applied cluster time the apply hook publishes, never the state lock: a caller may
    /// already hold that lock.
    pub fn clock_ref(&self) -> ClockRef {
        let term = self.term();
        let applied_ms = self.applied_ms.load(std::sync::atomic::Ordering::Acquire);
        let cluster_ms = if self.leadership() == Leadership::Leader {
            self.clock.now(term, applied_ms)
        } else {
            applied_ms
        };
        ClockRef {
            cluster_ms,
            wall_ms: wall_ms(),
        }
    }

    /// Cluster time now, as the leader would stamp it (for the ticker).
    pub(crate) fn cluster_now(&self) -> u64 {
        let term = self.term();
        self.clock.now(
            term,
            self.applied_ms.load(std::sync::atomic::Ordering::Acquire),
        )
    }

    /// Marks the node as stopping (see the `stopping` field).
    pub fn begin_stopping(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once the node begins to stop.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        // An error means the sender is gone with the node: stopped too.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// What this node's snapshot builds and its restore at start cost.
    pub fn snapshot_report(&self) -> storage::SnapshotReport {
        self.snapshot_stats.report()
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone(), voters.contains(id)))
            .collect();
        // A node that removed itself reports no leader: its last metrics are frozen.
        let removed = self.removed.load(std::sync::atomic::Ordering::Relaxed);
        NodeStatus {
            id: self.id,
            leader: m.current_leader.filter(|_| !removed),
            is_leader: m.state == ServerState::Leader && !removed,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            members,
            entries_proposed: self
                .stats
                .entries
                .load(std::sync::atomic::Ordering::Relaxed),
            commands_proposed: self
                .stats
                .commands
                .load(std::sync::atomic::Ordering::Relaxed),
            behaviour_version: self.state().behaviour_version(),
            behaviour_version_max: self.behaviour_max,
        }
    }

    /// Adds a non-voting member that starts catching up (by log or snapshot).
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), AdminError> {
        self.admin_leader()?;
        let _turn = self.membership_turn()?;
        self.raft
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(admin_error)
    }

    /// Makes `voters` the voting members (joint consensus); others stay learners.
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>) -> Result<(), AdminError> {
        self.admin_leader()?;
        let _turn = self.membership_turn()?;
        self.raft
            .change_membership(voters, false)
            .await
            .map(|_| ())
            .map_err(admin_error)
    }

    /// Adds `id` as a learner, waits up to `catch_up` for its log to reach the leader's,
    /// then makes it a voter. On a timeout it stays a learner (still catching up).
    pub async fn add_voter(
        &self,
        id: NodeId,
        addr: String,
        catch_up: Duration,
    ) -> Result<(), AdminError> {
        self.admin_leader()?;
        let _turn = self.membership_turn()?;
        self.raft
            .add_learner(id, BasicNode::new(addr), false)
            .await
            .map_err(admin_error)?;
        // Caught up: replicated everything the leader had once the node was added.
        let target = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let waited = self
            .raft
            .wait(Some(catch_up))
            .metrics(
                |m| catch_up::caught_up(m.replication.as_ref(), id, target),
                "learner caught up",
            )
            .await;
        if waited.is_err() {
            return Err(AdminError::Refused(format!(
                "node {id} did not catch up to log index {target} within {} ms; it stays a learner and keeps catching up: run add-node again later",
                catch_up.as_millis()
            )));
        }
        self.admin_leader()?;
        self.raft
            .change_membership(
                openraft::ChangeMembers::AddVoterIds(BTreeSet::from([id])),
                true,
            )
            .await
            .map(|_| ())
            .map_err(admin_error)
    }

    /// Removes a voter (through joint consensus) or a learner from the membership.
    ///
    /// A leader that removes itself stops its Raft once the change is committed:
    /// openraft 0.9 would keep it leading the others (its heartbeats hold their election
    /// timers back) although it is no longer a member, and has no leadership transfer.
    /// The others elect a new leader one lease later; meanwhile this node answers
    /// `no_leader`, so clients move on.
    pub async fn remove_member(&self, id: NodeId, is_voter: bool) -> Result<(), AdminError> {
        self.admin_leader()?;
        let _turn = self.membership_turn()?;
        let change = if is_voter {
            openraft::ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            openraft::ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(admin_error)?;
        if id == self.id {
            self.removed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let raft = self.raft.clone();
            tokio::spawn(async move {
                // Let the committed change reach the others first.
                tokio::time::sleep(REMOVED_LEADER_STOP_DELAY).await;
                if let Err(e) = raft.shutdown().await {
                    tracing::warn!(error = %e, "raft shutdown after removing this node");
                }
                tracing::info!("this node was removed from the cluster; its Raft has stopped");
            });
        }
        Ok(())
    }

    /// One membership change at a time on this node. Each returns once its entries are
    /// applied, which on a leader means on its disk (`storage/log_durable.rs`, rule 4):
    /// openraft 0.9 lets a change start once the previous one is committed, and counts the
    /// leader's unsynced copy toward that. A second change while one runs is refused.
    fn membership_turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, AdminError> {
        self.membership.try_lock().map_err(|_| {
            AdminError::Refused(
                "another membership change is in progress on the leader; try again when it has finished".into(),
            )
        })
    }

    fn admin_leader(&self) -> Result<(), AdminError> {
        match self.leadership() {
            Leadership::Leader => Ok(()),
            Leadership::Follower { leader } => Err(AdminError::NotLeader { leader }),
        }
    }

    /// The data disk's free space, for metrics.
    pub fn disk_space(&self) -> &DiskSpace {
        &self.disk
    }

    /// Bytes of the Raft log's RocksDB memtables, for metrics.
    pub fn log_memtable_bytes(&self) -> u64 {
        self.log_store.memtable_bytes()
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Reads the data disk's free space every `FREE_SAMPLE_MS` while the node lives.
async fn sample_disk_space(node: std::sync::Weak<Node>) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(storage::disk_space::FREE_SAMPLE_MS));
    loop {
        interval.tick().await;
        let Some(node) = node.upgrade() else { return };
        node.disk.sample();
    }
}

/// openraft stops its core for good on a storage error (or a bug). A node left like that
/// still answered HTTP, redirecting writes to itself; it exits instead, so that its
/// supervisor restarts it and the log says why. A stop asked for (shutdown, this node
/// removed from the cluster) is not a death.
async fn exit_if_raft_dies(node: std::sync::Weak<Node>) {
    let Some(mut metrics) = node.upgrade().map(|n| n.raft.metrics()) else {
        return;
    };
    while metrics.changed().await.is_ok() {}
    let Some(node) = node.upgrade() else { return };
    if node.is_stopping() || node.removed.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    tracing::error!("the Raft core stopped on its own (see the error above); exiting");
    eprintln!("taskswarm: the Raft core stopped on its own (see the error above); exiting");
    std::process::exit(1);
}

fn admin_error<E: std::fmt::Display>(e: openraft::error::RaftError<NodeId, E>) -> AdminError {
    AdminError::Refused(e.to_string())
}

impl ticker::Tickable for Node {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn term(&self) -> u64 {
        Node::term(self)
    }

    fn role(&self) -> ticker::Role {
        match self.leadership() {
            Leadership::Leader => ticker::Role::Leader,
            Leadership::Follower {
                leader: Some((id, _)),
            } => ticker::Role::Following(id),
            Leadership::Follower { leader: None } => ticker::Role::NoLeader,
        }
    }

    fn look(&self) -> ticker::Look {
        let sm = self.state();
        ticker::Look {
            config: sm.config(),
            due: sm.next_due(),
            applied_wall_ms: sm.wall_ms(),
            behaviour: sm.behaviour_version(),
        }
    }

    fn behaviour_supported(&self, cluster: u32) -> Option<u32> {
        if self.behaviour_max <= cluster {
            return None;
        }
        let members: Vec<NodeId> = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect()
        };
        behaviour::supported_by_all(
            self.id,
            self.behaviour_max,
            members,
            &self.behaviour_reports.get(),
            std::time::Instant::now(),
        )
    }

    fn desired_config(&self) -> taskswarm_state_machine::Config {
        self.desired
    }

    fn cluster_now(&self) -> u64 {
        Node::cluster_now(self)
    }

    async fn propose_command(&self, command: Command) -> Result<(), String> {
        match self.propose(command).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}
