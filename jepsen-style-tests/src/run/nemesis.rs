//! Carries out the schedule: starts each planned fault on the real environment, records
//! its start (with whether it verifiably took hold), waits its duration, undoes it and
//! records the stop. Also measures how long the cluster takes to elect a leader after a
//! fault that removes one, and after each heal.
//!
//! A roll step's start is its node stopped gracefully, its stop the node started again
//! (from the upgrade binary in a rolling upgrade); the step then waits for the node to
//! catch up with the leader, so the next step never stops a second node while the first
//! is still behind.
//!
//! A replacement follows the runbook's "replace a dead node with an empty disk": its
//! start is a follower SIGKILLed, removed from the membership (forced) and its data
//! directory deleted; its stop is the node started again empty, added back with
//! add-node and caught up. Both membership requests are retried through leader changes,
//! within a bound.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use taskswarm_api::ErrorCode;

use super::clock::mono_ns;
use super::recorder::{ms_since, Recorder};
use super::rng::Rng;
use super::schedule::{NemesisKind, PlannedFault};
use super::wire::{Reply, Wire};
use super::worker_procs::WorkerProcs;
use crate::env::faults::{bridge_blocked, ring_blocked};
use crate::env::nodes::STOP_GRACE;
use crate::env::{client, net, EnvError, FaultEvent, Nodes, Partitions};
use crate::history::NemesisType;

/// How long to look for a leader before a fault that targets "the leader" picks a node
/// anyway (and says so in its targets).
const LEADER_LOOKUP: Duration = Duration::from_secs(10);
/// Longest wait for a new leader when measuring recovery.
const ELECTION_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Loss rate of the packet-loss fault, percent.
pub const LOSS_PERCENT: u8 = 30;
/// Wall-clock jumps of the clock-skew fault, seconds (forward and back, picked by seed).
pub const SKEW_S: [i64; 4] = [120, -120, 3_600, -3_600];
/// A skew shows in the node's reported wall clock within libfaketime's cache period.
const SKEW_VERIFY: Duration = Duration::from_secs(5);
/// Longest wait for a restarted node to catch up with the leader; past it the roll moves
/// on and the report says the node never caught up.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(30);
/// Longest a replacement retries the forced removal of its dead node (through leader
/// changes); past it the node keeps its disk and the fault did not take effect.
pub const REMOVE_WAIT: Duration = Duration::from_secs(30);
/// Longest a replacement retries add-node; past it the report says the node never
/// became a voter again (and the nodes do not converge, which the checkers see).
pub const ADD_NODE_WAIT: Duration = Duration::from_secs(60);
/// How long one add-node request lets the server wait for the learner to catch up
/// (its `catch_up_ms`). Below [`ADD_NODE_WAIT`], so one slow attempt cannot use up the
/// whole bound and the retry loop still gets to try again (e.g. on the next leader).
pub const ADD_NODE_CATCH_UP_MS: u64 = 20_000;
/// A membership request's timeout beyond what the server itself waits: the joint
/// consensus commit and the answer.
const ADMIN_SLACK: Duration = Duration::from_secs(5);
/// Timeout of one remove request: two commits (joint, then final membership), which a
/// leader with a quorum makes in milliseconds; a longer wait means a leader change, and
/// the retry finds the next leader.
const REMOVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two attempts of a membership request: about one election, so a retry
/// after `no_leader` finds the new leader.
const ADMIN_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// One leader-election measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    pub fault_id: u64,
    pub kind: &'static str,
    /// `after_start`: leader lost at the fault's start; `after_heal`: after its stop.
    pub phase: &'static str,
    /// Time until a leader was seen; `None` when none was within the wait.
    pub leader_ms: Option<u64>,
}

/// One node's restart in a roll, as the harness saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub fault_id: u64,
    pub kind: &'static str,
    pub node: usize,
    /// It led the cluster when it was stopped.
    pub was_leader: bool,
    /// From SIGTERM until the process was reaped.
    pub exit_ms: u64,
    /// It outlived [`STOP_GRACE`] and was SIGKILLed.
    pub killed: bool,
    /// The binary it was started from again.
    pub bin: PathBuf,
    /// The leader's applied index once the node was started again: what it had to reach.
    pub target_index: Option<u64>,
    /// From its start until its applied index reached `target_index`; `None` when it did
    /// not within [`CATCH_UP_WAIT`].
    pub catch_up_ms: Option<u64>,
    /// Harness clock ([`mono_ns`]) at the SIGTERM, and once the node had caught up (or
    /// the wait gave up): the span around which clients' unavailability is measured.
    #[serde(skip)]
    pub from_ns: u64,
    #[serde(skip)]
    pub to_ns: u64,
}

impl Restart {
    /// [`Restart::from_ns`]..[`Restart::to_ns`] as history `time_ms`.
    pub fn span_ms(&self, epoch_ns: u64) -> (u64, u64) {
        (
            ms_since(epoch_ns, self.from_ns),
            ms_since(epoch_ns, self.to_ns),
        )
    }

    fn stopped_note(&self) -> String {
        format!(
            "{}{} stopped, exit {} ms after SIGTERM{}",
            net::ns_name(self.node),
            if self.was_leader { " (leader)" } else { "" },
            self.exit_ms,
            if self.killed { ", SIGKILLed" } else { "" }
        )
    }

    fn started_note(&self) -> String {
        let caught = match (self.catch_up_ms, self.target_index) {
            (Some(ms), Some(index)) => format!("caught up to index {index} in {ms} ms"),
            (_, Some(index)) => format!("NOT caught up to index {index} within {CATCH_UP_WAIT:?}"),
            _ => format!("NOT caught up: no leader seen within {CATCH_UP_WAIT:?}"),
        };
        format!(
            "{} started from {}, {caught}",
            net::ns_name(self.node),
            self.bin.display()
        )
    }
}

/// The next node of a roll: the first of `remaining` (a seeded order) that does not lead,
/// so the leader goes last. Why leader last rather than the seeded order alone: a
/// follower's restart costs clients nothing while the rest keep a quorum, the leader's
/// costs an election; last, it is restarted once, and leadership cannot move onto a node
/// that is still to be restarted, which would cost a second election. The seeded order
/// decides among the followers, so seeds vary which node goes first. Asked afresh at each
/// step, since leadership may move during the roll.
pub fn next_to_restart(remaining: &[usize], leader: Option<usize>) -> Option<usize> {
    remaining
        .iter()
        .copied()
        .find(|n| Some(*n) != leader)
        .or_else(|| remaining.first().copied())
}

/// The binary a rolled node starts from: its own for a restart (after an upgrade, the
/// upgraded one), the upgrade binary for an upgrade; `None` when that is missing.
pub fn roll_bin(kind: NemesisKind, current: &Path, upgrade: Option<&Path>) -> Option<PathBuf> {
    match kind {
        NemesisKind::RollingUpgrade => upgrade.map(Path::to_path_buf),
        _ => Some(current.to_path_buf()),
    }
}

/// Caught up: the node answers and has applied at least `target_index`.
pub fn caught_up(applied_index: Option<u64>, target_index: u64) -> bool {
    applied_index.is_some_and(|a| a >= target_index)
}

/// The restarts of a run, one row each, with the longest time no client saw a write
/// acknowledged around each (`gaps_ms[i]` for `restarts[i]`, from
/// [`crate::availability::longest_ok_write_gaps_ms`] over [`Restart::span_ms`]).
pub fn render_restarts(restarts: &[Restart], gaps_ms: &[Option<u64>]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if restarts.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nrestarts (write gap: longest time without an acknowledged write, from the last ack before the SIGTERM to the first after the catch-up)"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>5} {:<5} {:<6} {:>8} {:<7} {:<24} {:>11} {:>9} {:>12}",
        "kind",
        "fault",
        "node",
        "leader",
        "exit ms",
        "sigkill",
        "binary",
        "catch-up ms",
        "to index",
        "write gap ms"
    );
    let dash = || "-".to_owned();
    for (i, r) in restarts.iter().enumerate() {
        let bin = r.bin.file_name().map_or_else(
            || r.bin.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let _ = writeln!(
            s,
            "{:<16} {:>5} {:<5} {:<6} {:>8} {:<7} {:<24} {:>11} {:>9} {:>12}",
            r.kind,
            r.fault_id,
            net::ns_name(r.node),
            if r.was_leader { "yes" } else { "no" },
            r.exit_ms,
            if r.killed { "yes" } else { "no" },
            bin,
            r.catch_up_ms.map_or_else(dash, |v| v.to_string()),
            r.target_index.map_or_else(dash, |v| v.to_string()),
            gaps_ms
                .get(i)
                .copied()
                .flatten()
                .map_or_else(dash, |v| v.to_string()),
        );
    }
    s
}

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
    /// The leader's applied index once the node was a voter again: what it had to reach.
    pub target_index: Option<u64>,
    /// From then until its applied index reached `target_index`; `None` when it did not
    /// within [`CATCH_UP_WAIT`] (or never became a voter).
    pub catch_up_ms: Option<u64>,
    /// Harness clock ([`mono_ns`]) at the SIGKILL, and once the node had caught up (or a
    /// wait gave up): the span around which clients' unavailability is measured.
    #[serde(skip)]
    pub from_ns: u64,
    #[serde(skip)]
    pub to_ns: u64,
}

impl Replacement {
    /// [`Replacement::from_ns`]..[`Replacement::to_ns`] as history `time_ms`.
    pub fn span_ms(&self, epoch_ns: u64) -> (u64, u64) {
        (
            ms_since(epoch_ns, self.from_ns),
            ms_since(epoch_ns, self.to_ns),
        )
    }

    /// The runbook's first half done: dead, out of the membership, disk gone.
    pub fn took_effect(&self) -> bool {
        self.killed && self.remove_ms.is_some() && self.wiped
    }

    /// Healed: a voter again, caught up with the leader.
    pub fn healed(&self) -> bool {
        self.add_node_ms.is_some() && self.catch_up_ms.is_some()
    }

    fn stopped_note(&self) -> String {
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

    fn started_note(&self) -> String {
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
        let caught = match (self.catch_up_ms, self.target_index) {
            (Some(ms), Some(index)) => format!(", caught up to index {index} in {ms} ms"),
            (_, Some(index)) => {
                format!(", NOT caught up to index {index} within {CATCH_UP_WAIT:?}")
            }
            _ if self.add_node_ms.is_some() => {
                format!(", NOT caught up: no leader seen within {CATCH_UP_WAIT:?}")
            }
            _ => String::new(),
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
/// [`crate::availability::longest_ok_write_gaps_ms`] over [`Replacement::span_ms`]).
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
    let dash = || "-".to_owned();
    for (i, r) in replacements.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>5} {:<5} {:>9} {:<6} {:>11} {:>8} {:>11} {:>9} {:>12}",
            r.fault_id,
            net::ns_name(r.node),
            r.remove_ms.map_or_else(dash, |v| v.to_string()),
            if r.wiped { "yes" } else { "no" },
            r.add_node_ms.map_or_else(dash, |v| v.to_string()),
            r.add_node_attempts,
            r.catch_up_ms.map_or_else(dash, |v| v.to_string()),
            r.target_index.map_or_else(dash, |v| v.to_string()),
            gaps_ms
                .get(i)
                .copied()
                .flatten()
                .map_or_else(dash, |v| v.to_string()),
        );
    }
    s
}

/// What a started fault needs to be undone.
#[derive(Debug)]
enum Active {
    Network,
    Killed(Vec<usize>),
    Paused(usize),
    PausedWorker(usize),
    Skewed(usize),
    Removed(usize),
    /// A roll step's node, stopped; the restart is complete once it is back.
    Restarting(Restart),
    /// A replaced node, dead (and, if the removal took, out of the membership and
    /// without its disk); healed once it is a caught-up voter again.
    Replacing(Replacement),
}

#[derive(Debug)]
pub struct Nemesis {
    pub nodes: Nodes,
    pub parts: Partitions,
    pub workers: WorkerProcs,
    pub recoveries: Vec<Recovery>,
    /// Every roll step done, in order.
    pub restarts: Vec<Restart>,
    /// Every replacement done, in order.
    pub replacements: Vec<Replacement>,
    /// What a rolling upgrade starts the nodes from (`--upgrade-bin`).
    pub upgrade_bin: Option<PathBuf>,
    /// The nodes the current roll has still to restart, in its seeded order.
    roll: Vec<usize>,
    http: reqwest::Client,
    wire: std::sync::Arc<Wire>,
    rec: Recorder,
    rng: Rng,
    active: Option<(PlannedFault, Active)>,
}

impl Nemesis {
    pub fn new(
        nodes: Nodes,
        workers: WorkerProcs,
        wire: std::sync::Arc<Wire>,
        rec: Recorder,
        rng: Rng,
    ) -> Result<Nemesis, reqwest::Error> {
        let parts = Partitions::new(nodes.count(), nodes.epoch());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Nemesis {
            nodes,
            parts,
            workers,
            recoveries: Vec::new(),
            restarts: Vec::new(),
            replacements: Vec::new(),
            upgrade_bin: None,
            roll: Vec::new(),
            http,
            wire,
            rec,
            rng,
            active: None,
        })
    }

    fn all(&self) -> Vec<usize> {
        (1..=self.nodes.count()).collect()
    }

    /// The leader that a majority of `among` names and that says so itself.
    async fn leader_among(&self, among: &[usize]) -> Option<usize> {
        let mut named = Vec::new();
        for &n in among {
            if let Some(s) = client::status(&self.http, &self.nodes.url(n)).await {
                named.push((n, s.leader_id));
            }
        }
        let majority = self.nodes.count() / 2 + 1;
        for &(_, leader) in &named {
            let Some(l) = leader.and_then(|l| usize::try_from(l).ok()) else {
                continue;
            };
            let votes = named.iter().filter(|(_, x)| *x == leader).count();
            let self_says = named.iter().any(|(m, x)| *m == l && *x == leader);
            if votes >= majority.min(among.len()) && self_says && among.contains(&l) {
                return Some(l);
            }
        }
        None
    }

    pub async fn wait_leader(&self, among: &[usize], timeout: Duration) -> Option<(usize, u64)> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(l) = self.leader_among(among).await {
                return Some((l, u64::try_from(start.elapsed().as_millis()).unwrap_or(0)));
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// The current leader, or node 1 when none is seen in time (a fault must still
    /// happen; its targets name the node it hit).
    async fn leader_or_any(&self) -> usize {
        self.wait_leader(&self.all(), LEADER_LOOKUP)
            .await
            .map_or(1, |(l, _)| l)
    }

    fn record(&self, mut ev: FaultEvent, planned: &PlannedFault) {
        ev.kind = planned.kind.name().to_owned();
        self.rec.nemesis(&ev, planned.id);
    }

    /// Starts `planned`; the start record is written before this returns.
    pub async fn start(&mut self, planned: &PlannedFault) -> Result<(), EnvError> {
        assert!(self.active.is_none(), "faults do not overlap");
        let all = self.all();
        let n = all.len();
        let (ev, active, lost_leader): (FaultEvent, Active, Option<usize>) = match planned.kind {
            NemesisKind::IsolateLeader => {
                let leader = self.leader_or_any().await;
                (self.parts.isolate(leader)?, Active::Network, Some(leader))
            }
            NemesisKind::HalvesLeaderMajority | NemesisKind::HalvesLeaderMinority => {
                let leader = self.leader_or_any().await;
                let mut others: Vec<usize> = all.iter().copied().filter(|x| *x != leader).collect();
                self.rng.shuffle(&mut others);
                let small = n / 2; // 1 of 3, 2 of 5
                let (mut minority, mut majority): (Vec<usize>, Vec<usize>) =
                    if planned.kind == NemesisKind::HalvesLeaderMinority {
                        let mut m = vec![leader];
                        m.extend(others.iter().take(small - 1));
                        (m, others[small - 1..].to_vec())
                    } else {
                        let mut m = vec![leader];
                        m.extend(others.iter().skip(small));
                        (others[..small].to_vec(), m)
                    };
                minority.sort_unstable();
                majority.sort_unstable();
                let lost = (planned.kind == NemesisKind::HalvesLeaderMinority).then_some(leader);
                (
                    self.parts.partition(&[minority, majority])?,
                    Active::Network,
                    lost,
                )
            }
            NemesisKind::Bridge => {
                let mut order = all.clone();
                self.rng.shuffle(&mut order);
                let half = (n - 1) / 2;
                let bridge = order[half];
                let blocked = bridge_blocked(&order[..half], bridge, &order[half + 1..]);
                (self.parts.cut("bridge", &blocked)?, Active::Network, None)
            }
            NemesisKind::MajoritiesRing => {
                let mut order = all.clone();
                self.rng.shuffle(&mut order);
                let blocked = ring_blocked(&order);
                (
                    self.parts.cut("majorities-ring", &blocked)?,
                    Active::Network,
                    None,
                )
            }
            NemesisKind::PacketLoss => {
                (self.parts.packet_loss(LOSS_PERCENT)?, Active::Network, None)
            }
            NemesisKind::KillMinority => {
                let leader = self.leader_or_any().await;
                let mut others: Vec<usize> = all.iter().copied().filter(|x| *x != leader).collect();
                self.rng.shuffle(&mut others);
                // The largest minority: 1 of 3, 2 of 5; the leader always among them.
                let mut victims = vec![leader];
                victims.extend(others.iter().take((n - 1) / 2 - 1));
                let ev = self.kill(&victims)?;
                (ev, Active::Killed(victims), Some(leader))
            }
            NemesisKind::KillAll => {
                let ev = self.kill(&all)?;
                (ev, Active::Killed(all.clone()), None)
            }
            NemesisKind::PauseLeader => {
                let leader = self.leader_or_any().await;
                (
                    self.nodes.pause(leader)?,
                    Active::Paused(leader),
                    Some(leader),
                )
            }
            NemesisKind::PauseWorker => {
                let i = usize::try_from(self.rng.below(self.workers.count() as u64)).unwrap_or(0);
                let effective = self.workers.pause(i)?;
                let ev = FaultEvent::new(
                    NemesisType::Start,
                    "pause-worker",
                    vec![format!("worker-proc-{i}")],
                    self.nodes.epoch(),
                    effective,
                );
                (ev, Active::PausedWorker(i), None)
            }
            NemesisKind::ClockSkew => {
                let leader = self.leader_or_any().await;
                let skew_s = *self.rng.pick(&SKEW_S);
                self.nodes.set_clock_offset(leader, skew_s)?;
                let effective = self.clock_offset_seen(leader, skew_s).await;
                let ev = FaultEvent::new(
                    NemesisType::Start,
                    "clock-skew",
                    vec![format!("{}{skew_s:+}s", net::ns_name(leader))],
                    self.nodes.epoch(),
                    effective,
                );
                (ev, Active::Skewed(leader), None)
            }
            NemesisKind::Membership => {
                let victim = *self.rng.pick(&all);
                let voters: Vec<usize> = all.iter().copied().filter(|x| *x != victim).collect();
                let reply = self
                    .wire
                    .post(
                        "/v1/cluster/membership",
                        &json!({ "voters": voters }),
                        Duration::from_secs(15),
                    )
                    .await;
                let effective = matches!(reply, Reply::Ok(_)) && self.voters_are(&voters).await;
                let ev = FaultEvent::new(
                    NemesisType::Start,
                    "membership",
                    vec![format!("remove {}", net::ns_name(victim))],
                    self.nodes.epoch(),
                    effective,
                );
                (ev, Active::Removed(victim), None)
            }
            // No election measurement after the start: the node is down for less than
            // an election takes; the report measures what clients saw around each step.
            NemesisKind::RollingRestart | NemesisKind::RollingUpgrade => {
                let (ev, restart) = self.roll_stop(planned).await?;
                (ev, Active::Restarting(restart), None)
            }
            // No election measurement: the victim is a follower (see `replace_victim`).
            NemesisKind::ReplaceNode => {
                let (ev, replacement) = self.replace_kill(planned).await?;
                (ev, Active::Replacing(replacement), None)
            }
        };
        self.record(ev, planned);
        if let Some(old) = lost_leader {
            self.measure_election(planned, "after_start", old).await;
        }
        self.active = Some((planned.clone(), active));
        Ok(())
    }

    /// A roll step's first half: picks its node (see [`next_to_restart`]) and stops it
    /// gracefully. The first step of a roll draws the roll's seeded order.
    async fn roll_stop(
        &mut self,
        planned: &PlannedFault,
    ) -> Result<(FaultEvent, Restart), EnvError> {
        if planned.step.is_none_or(|s| s.index == 0) || self.roll.is_empty() {
            let mut order = self.all();
            self.rng.shuffle(&mut order);
            self.roll = order;
        }
        let leader = self
            .wait_leader(&self.all(), LEADER_LOOKUP)
            .await
            .map(|(l, _)| l);
        let node = next_to_restart(&self.roll, leader)
            .ok_or(EnvError::NoSuchNode(0, self.nodes.count()))?;
        self.roll.retain(|n| *n != node);
        let from_ns = mono_ns();
        let stopped = self.nodes.stop_gracefully(node, STOP_GRACE)?;
        let ev = FaultEvent::new(
            NemesisType::Start,
            planned.kind.name(),
            vec![net::ns_name(node)],
            self.nodes.epoch(),
            stopped.effective,
        );
        let restart = Restart {
            fault_id: planned.id,
            kind: planned.kind.name(),
            node,
            was_leader: leader == Some(node),
            exit_ms: stopped.exit_ms,
            killed: stopped.killed,
            bin: self.nodes.bin(node)?.to_path_buf(),
            target_index: None,
            catch_up_ms: None,
            from_ns,
            to_ns: from_ns,
        };
        Ok((ev, restart))
    }

    /// A replacement's first half, the runbook's remove-node: picks a follower (see
    /// [`replace_victim`]), SIGKILLs it (the machine died), removes it from the
    /// membership with force (3 voters would leave 2), and once it is out deletes its
    /// data directory. A removal that did not take leaves the disk alone: a voter that
    /// loses its log and vote can break Raft's promises, which would be the harness's
    /// doing, not the system's.
    async fn replace_kill(
        &mut self,
        planned: &PlannedFault,
    ) -> Result<(FaultEvent, Replacement), EnvError> {
        let all = self.all();
        let leader = self.wait_leader(&all, LEADER_LOOKUP).await.map(|(l, _)| l);
        let draw = self.rng.next_u64();
        let node = replace_victim(&all, leader, draw)
            .ok_or(EnvError::NoSuchNode(0, self.nodes.count()))?;
        let from_ns = mono_ns();
        let killed = self.nodes.kill(node)?.effective;
        let removed = self.remove_node(node).await;
        let wiped = removed.done_ms.is_some() && self.nodes.wipe_data(node)?;
        let replacement = Replacement {
            fault_id: planned.id,
            node,
            killed,
            remove_ms: removed.done_ms,
            remove_attempts: removed.attempts,
            remove_errors: removed.errors,
            wiped,
            add_node_ms: None,
            add_node_attempts: 0,
            add_node_errors: Vec::new(),
            target_index: None,
            catch_up_ms: None,
            from_ns,
            to_ns: from_ns,
        };
        let ev = FaultEvent::new(
            NemesisType::Start,
            planned.kind.name(),
            vec![net::ns_name(node)],
            self.nodes.epoch(),
            replacement.took_effect(),
        );
        Ok((ev, replacement))
    }

    /// `DELETE /v1/cluster/nodes/{id}?force=true`, retried through leader changes within
    /// [`REMOVE_WAIT`], done once the leader's membership no longer lists the node.
    async fn remove_node(&self, node: usize) -> AdminOutcome {
        let path = format!("/v1/cluster/nodes/{node}?force=true");
        self.admin_retry(REMOVE_WAIT, Some(None), node, || {
            self.wire.delete(&path, REMOVE_REQUEST_TIMEOUT)
        })
        .await
    }

    /// `POST /v1/cluster/nodes` (learner, catch-up, voter in one request), retried
    /// through leader changes within [`ADD_NODE_WAIT`], done once the leader's membership
    /// has the node as a voter.
    async fn add_node(&self, node: usize) -> AdminOutcome {
        let body = json!({
            "id": node,
            "addr": net::node_url(node),
            "catch_up_ms": ADD_NODE_CATCH_UP_MS,
        });
        let timeout = Duration::from_millis(ADD_NODE_CATCH_UP_MS) + ADMIN_SLACK;
        self.admin_retry(ADD_NODE_WAIT, Some(Some(true)), node, || {
            self.wire.post("/v1/cluster/nodes", &body, timeout)
        })
        .await
    }

    /// Sends `request` until [`admin_step`] says it is done or gives up, or `wait` has
    /// passed; `goal` is the node's [`role_of`] in the leader's membership once the
    /// change is made.
    async fn admin_retry<F, Fut>(
        &self,
        wait: Duration,
        goal: Option<Option<bool>>,
        node: usize,
        request: F,
    ) -> AdminOutcome
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Reply>,
    {
        let start = Instant::now();
        let mut out = AdminOutcome::default();
        loop {
            let reply = request().await;
            out.attempts += 1;
            let goal_seen = match &reply {
                Reply::Ok(_) => true,
                _ => self.role_in_leader_view(node).await == goal,
            };
            if let Some(code) = reply.code() {
                out.errors.push(code.to_owned());
            }
            match admin_step(&reply, goal_seen, start.elapsed() < wait) {
                AdminStep::Done => {
                    out.done_ms =
                        Some(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
                    return out;
                }
                AdminStep::GiveUp => return out,
                AdminStep::Retry => tokio::time::sleep(ADMIN_RETRY_PAUSE).await,
            }
        }
    }

    /// `node`'s [`role_of`] in the membership the leader reports; `None` when no leader
    /// answers within [`LEADER_LOOKUP`] (which never equals a goal).
    async fn role_in_leader_view(&self, node: usize) -> Option<Option<bool>> {
        let (leader, _) = self.wait_leader(&self.all(), LEADER_LOOKUP).await?;
        let status = client::status(&self.http, &self.nodes.url(leader)).await?;
        Some(role_of(&status.members, node))
    }

    /// A replacement's second half, the runbook's add-node: the node started again with
    /// the same id, address and flags (empty, if its disk was deleted), added back as a
    /// voter, then caught up with the leader.
    async fn replace_add(&mut self, mut r: Replacement) -> Result<Replacement, EnvError> {
        self.nodes.start(r.node)?;
        let added = self.add_node(r.node).await;
        r.add_node_ms = added.done_ms;
        r.add_node_attempts = added.attempts;
        r.add_node_errors = added.errors;
        if r.add_node_ms.is_some() {
            let (target_index, catch_up_ms) = self.wait_caught_up(r.node).await;
            r.target_index = target_index;
            r.catch_up_ms = catch_up_ms;
        }
        r.to_ns = mono_ns();
        Ok(r)
    }

    /// Polls until `node` has applied what the leader had applied when first asked,
    /// bounded by [`CATCH_UP_WAIT`]: (that index, the time it took). The leader is looked
    /// up until one is seen (after the leader's own restart the rest elect one first).
    async fn wait_caught_up(&self, node: usize) -> (Option<u64>, Option<u64>) {
        let start = Instant::now();
        let mut target = None;
        while start.elapsed() < CATCH_UP_WAIT {
            if target.is_none() {
                if let Some(leader) = self.leader_among(&self.all()).await {
                    target = client::status(&self.http, &self.nodes.url(leader))
                        .await
                        .map(|s| s.applied_index);
                }
            }
            if let Some(t) = target {
                let applied = client::status(&self.http, &self.nodes.url(node))
                    .await
                    .map(|s| s.applied_index);
                if caught_up(applied, t) {
                    let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return (Some(t), Some(ms));
                }
            }
            tokio::time::sleep(POLL).await;
        }
        (target, None)
    }

    /// A line for the run's log about fault `fault_id`'s restart or replacement, if it is
    /// one: its node stopped (while the fault is active) or back (once it is done). Empty
    /// otherwise.
    pub fn restart_note(&self, fault_id: u64) -> String {
        match &self.active {
            Some((p, Active::Restarting(r))) if p.id == fault_id => {
                return format!(": {}", r.stopped_note());
            }
            Some((p, Active::Replacing(r))) if p.id == fault_id => {
                return format!(": {}", r.stopped_note());
            }
            _ => {}
        }
        if let Some(r) = self
            .replacements
            .iter()
            .rev()
            .find(|r| r.fault_id == fault_id)
        {
            return format!(": {}", r.started_note());
        }
        self.restarts
            .iter()
            .rev()
            .find(|r| r.fault_id == fault_id)
            .map_or_else(String::new, |r| format!(": {}", r.started_note()))
    }

    fn kill(&mut self, victims: &[usize]) -> Result<FaultEvent, EnvError> {
        let mut effective = true;
        for &v in victims {
            effective &= self.nodes.kill(v)?.effective;
        }
        Ok(FaultEvent::new(
            NemesisType::Start,
            "kill",
            victims.iter().map(|v| net::ns_name(*v)).collect(),
            self.nodes.epoch(),
            effective,
        ))
    }

    /// After the leader was removed: time until the rest elect another one. Bounded by
    /// the fault's own duration, so a slow election never stretches the schedule.
    async fn measure_election(&mut self, planned: &PlannedFault, phase: &'static str, old: usize) {
        let others: Vec<usize> = self.all().into_iter().filter(|x| *x != old).collect();
        let wait = Duration::from_millis(planned.duration_ms);
        let leader_ms = self.wait_leader(&others, wait).await.map(|(_, ms)| ms);
        self.recoveries.push(Recovery {
            fault_id: planned.id,
            kind: planned.kind.name(),
            phase,
            leader_ms,
        });
    }

    /// Undoes the active fault (if any) and records the stop; then measures the time
    /// until the whole cluster agrees on a leader again. Also the way out after an error.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        let Some((planned, active)) = self.active.take() else {
            return Ok(());
        };
        let epoch = self.nodes.epoch();
        let kind = planned.kind.name();
        let mut restarted: Option<Restart> = None;
        let ev = match active {
            Active::Network => self.parts.heal()?,
            Active::Killed(victims) => {
                for &v in &victims {
                    self.nodes.restart(v)?;
                }
                FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    victims.iter().map(|v| net::ns_name(*v)).collect(),
                    epoch,
                    true,
                )
            }
            Active::Paused(node) => self.nodes.resume(node)?,
            Active::PausedWorker(i) => {
                let effective = self.workers.resume(i)?;
                FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    vec![format!("worker-proc-{i}")],
                    epoch,
                    effective,
                )
            }
            Active::Skewed(node) => {
                self.nodes.set_clock_offset(node, 0)?;
                let effective = self.clock_offset_seen(node, 0).await;
                FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    vec![net::ns_name(node)],
                    epoch,
                    effective,
                )
            }
            Active::Removed(victim) => {
                let effective = self.add_back(victim).await;
                FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    vec![format!("add {}", net::ns_name(victim))],
                    epoch,
                    effective,
                )
            }
            Active::Restarting(restart) => {
                let node = restart.node;
                let bin = roll_bin(
                    planned.kind,
                    self.nodes.bin(node)?,
                    self.upgrade_bin.as_deref(),
                )
                .ok_or(EnvError::NoUpgradeBin)?;
                // Same flags and data directory: only the binary may change.
                self.nodes.set_bin(node, &bin)?;
                self.nodes.start(node)?;
                restarted = Some(Restart { bin, ..restart });
                FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    vec![net::ns_name(node)],
                    epoch,
                    true,
                )
            }
            // Stopped once healed, not once started: the window covers the add-node and
            // the catch-up, which is what clients live through.
            Active::Replacing(replacement) => {
                let r = self.replace_add(replacement).await?;
                let ev = FaultEvent::new(
                    NemesisType::Stop,
                    kind,
                    vec![net::ns_name(r.node)],
                    epoch,
                    r.healed(),
                );
                self.replacements.push(r);
                ev
            }
        };
        self.record(ev, &planned);
        if let Some(mut r) = restarted {
            let (target_index, catch_up_ms) = self.wait_caught_up(r.node).await;
            r.target_index = target_index;
            r.catch_up_ms = catch_up_ms;
            r.to_ns = mono_ns();
            self.restarts.push(r);
        }
        let leader_ms = self
            .wait_leader(&self.all(), ELECTION_WAIT)
            .await
            .map(|(_, ms)| ms);
        self.recoveries.push(Recovery {
            fault_id: planned.id,
            kind: planned.kind.name(),
            phase: "after_heal",
            leader_ms,
        });
        Ok(())
    }

    /// Adds a removed node back: as a learner (it catches up), then as a voter. Retried
    /// until it sticks: a heal that does not heal would leave the drain waiting.
    async fn add_back(&self, victim: usize) -> bool {
        let all: Vec<usize> = self.all();
        let deadline = Instant::now() + ELECTION_WAIT;
        while Instant::now() < deadline {
            let learner = self
                .wire
                .post(
                    "/v1/cluster/learners",
                    &json!({"id": victim, "addr": net::node_url(victim)}),
                    Duration::from_secs(15),
                )
                .await;
            if matches!(learner, Reply::Ok(_)) {
                let voters = self
                    .wire
                    .post(
                        "/v1/cluster/membership",
                        &json!({ "voters": all }),
                        Duration::from_secs(15),
                    )
                    .await;
                if matches!(voters, Reply::Ok(_)) && self.voters_are(&all).await {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }

    /// Whether the leader's membership has exactly `voters` as voters.
    async fn voters_are(&self, voters: &[usize]) -> bool {
        let want: BTreeSet<u64> = voters.iter().map(|v| *v as u64).collect();
        let Some((leader, _)) = self.wait_leader(&self.all(), LEADER_LOOKUP).await else {
            return false;
        };
        client::status(&self.http, &self.nodes.url(leader))
            .await
            .is_some_and(|s| {
                let got: BTreeSet<u64> =
                    s.members.iter().filter(|m| m.voter).map(|m| m.id).collect();
                got == want
            })
    }

    /// Whether the node's wall clock is `offset_s` away from ours (within a few seconds),
    /// polled for [`SKEW_VERIFY`].
    async fn clock_offset_seen(&self, node: usize, offset_s: i64) -> bool {
        let deadline = Instant::now() + SKEW_VERIFY;
        while Instant::now() < deadline {
            if let Some(seen) = self.clock_offset_s(node).await {
                if (seen - offset_s).abs() <= 3 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    /// The node's wall clock minus ours, from the `wall_ms` of its status. Not the HTTP
    /// `Date` header: hyper caches it and, after a backward jump, keeps serving the old
    /// (later) second until real time catches up.
    async fn clock_offset_s(&self, node: usize) -> Option<i64> {
        let theirs = client::status(&self.http, &self.nodes.url(node))
            .await?
            .wall_ms?;
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis();
        let diff_ms = i128::from(theirs) - i128::try_from(ours).ok()?;
        i64::try_from(diff_ms / 1_000).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roll_takes_followers_in_seeded_order_and_the_leader_last() {
        assert_eq!(next_to_restart(&[3, 1, 2], Some(3)), Some(1));
        assert_eq!(next_to_restart(&[3, 1, 2], None), Some(3));
        assert_eq!(next_to_restart(&[2], Some(2)), Some(2));
        assert_eq!(next_to_restart(&[], Some(2)), None);
        // A whole roll under a steady leader: every node once, the leader last.
        let (mut remaining, mut order) = (vec![2, 3, 1], Vec::new());
        while let Some(n) = next_to_restart(&remaining, Some(2)) {
            remaining.retain(|x| *x != n);
            order.push(n);
        }
        assert_eq!(order, vec![3, 1, 2]);
    }

    #[test]
    fn only_an_upgrade_changes_the_binary() {
        let (old, new) = (Path::new("/bin/old"), Path::new("/bin/new"));
        let restart = NemesisKind::RollingRestart;
        let upgrade = NemesisKind::RollingUpgrade;
        assert_eq!(roll_bin(restart, old, Some(new)), Some(old.to_path_buf()));
        assert_eq!(roll_bin(restart, new, None), Some(new.to_path_buf()));
        assert_eq!(roll_bin(upgrade, old, Some(new)), Some(new.to_path_buf()));
        assert_eq!(roll_bin(upgrade, old, None), None);
    }

    #[test]
    fn caught_up_means_answering_at_or_past_the_target() {
        assert!(caught_up(Some(10), 10));
        assert!(caught_up(Some(11), 10));
        assert!(!caught_up(Some(9), 10));
        assert!(!caught_up(None, 0));
    }

    fn restart(fault_id: u64, node: usize, was_leader: bool, catch_up_ms: Option<u64>) -> Restart {
        Restart {
            fault_id,
            kind: "rolling-upgrade",
            node,
            was_leader,
            exit_ms: 40,
            killed: false,
            bin: PathBuf::from("/x/taskswarm-next"),
            target_index: Some(500),
            catch_up_ms,
            from_ns: 2_000_000_000,
            to_ns: 3_500_000_000,
        }
    }

    #[test]
    fn restarts_render_one_row_each_with_their_gap() {
        assert_eq!(render_restarts(&[], &[]), "");
        let rows = [restart(4, 2, false, Some(300)), restart(5, 1, true, None)];
        let text = render_restarts(&rows, &[Some(120), None]);
        // A blank line, the title, the column names, then one row per restart.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[3].starts_with("rolling-upgrade      4 n2    no"),
            "{text}"
        );
        assert!(
            lines[3].contains("taskswarm-next") && lines[3].ends_with(" 120"),
            "{text}"
        );
        assert!(lines[4].contains("n1    yes"), "{text}");
        assert!(lines[4].ends_with(" -"), "{text}");
        assert_eq!(rows[0].span_ms(1_000_000_000), (1_000, 2_500));
        assert!(rows[1]
            .started_note()
            .contains("NOT caught up to index 500"));
        assert_eq!(
            rows[1].stopped_note(),
            "n1 (leader) stopped, exit 40 ms after SIGTERM"
        );
    }

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
            target_index: add_node_ms.map(|_| 800),
            catch_up_ms: add_node_ms.map(|_| 12),
            from_ns: 2_000_000_000,
            to_ns: 9_000_000_000,
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
        assert_eq!(rows[0].span_ms(1_000_000_000), (1_000, 8_000));
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
