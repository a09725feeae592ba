//! Carries out the schedule: starts each planned fault on the real environment, records
//! its start (with whether it verifiably took hold), waits its duration, undoes it and
//! records the stop. Also measures how long the cluster takes to elect a leader after a
//! fault that removes one, and after each heal.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::recorder::Recorder;
use super::rng::Rng;
use super::schedule::{NemesisKind, PlannedFault};
use super::wire::{Reply, Wire};
use super::worker_procs::WorkerProcs;
use crate::env::faults::{bridge_blocked, ring_blocked};
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
}

#[derive(Debug)]
pub struct Nemesis {
    pub nodes: Nodes,
    pub parts: Partitions,
    pub workers: WorkerProcs,
    pub recoveries: Vec<Recovery>,
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
        };
        self.record(ev, planned);
        if let Some(old) = lost_leader {
            self.measure_election(planned, "after_start", old).await;
        }
        self.active = Some((planned.clone(), active));
        Ok(())
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
        };
        self.record(ev, &planned);
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
