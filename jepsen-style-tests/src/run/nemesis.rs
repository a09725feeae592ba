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
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::clock::mono_ns;
use super::recorder::Recorder;
use super::rejoin::{caught_up, Rejoin, CATCH_UP_WAIT};
use super::replace::{
    admin_step, replace_victim, role_of, AdminOutcome, AdminStep, Replacement, ADD_NODE_WAIT,
    REMOVE_WAIT,
};
use super::rng::Rng;
use super::roll::{next_to_restart, roll_bin, Restart};
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
            rejoin: Rejoin::starting(from_ns),
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
            rejoin: Rejoin::starting(from_ns),
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
            r.rejoin.target_index = target_index;
            r.rejoin.catch_up_ms = catch_up_ms;
        }
        r.rejoin.to_ns = mono_ns();
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
            r.rejoin.target_index = target_index;
            r.rejoin.catch_up_ms = catch_up_ms;
            r.rejoin.to_ns = mono_ns();
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
