//! The nemesis schedule: which faults happen when, derived from the seed alone.
//!
//! Faults run one after another with a quiet gap between them, so every fault window has a
//! clear start and end, and recovery after each one can be measured. Targets (which node
//! is the leader) are decided when the fault starts, not here.

use std::fmt;
use std::str::FromStr;

use super::rng::Rng;
use crate::history::Fault;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    /// The leader cut off from every other node.
    IsolateLeader,
    /// Two sides; the current leader on the majority side.
    HalvesLeaderMajority,
    /// Two sides; the current leader alone or on the minority side.
    HalvesLeaderMinority,
    /// Two halves joined through one node that sees both.
    Bridge,
    /// 5 nodes: each sees only its two ring neighbours, so every node has its own
    /// majority and no two agree.
    MajoritiesRing,
    /// Random loss of packets between nodes (nftables `numgen`).
    PacketLoss,
    /// SIGKILL of a minority including the leader, then restart.
    KillMinority,
    /// SIGKILL of every node, then restart.
    KillAll,
    /// SIGSTOP of the leader for longer than the election timeout, then SIGCONT.
    PauseLeader,
    /// SIGSTOP of a worker process for longer than its lease, then SIGCONT.
    PauseWorker,
    /// The leader's wall clock jumps (libfaketime), then comes back.
    ClockSkew,
    /// A node removed from the voters under load, then added back.
    Membership,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 12] = [
        NemesisKind::IsolateLeader,
        NemesisKind::HalvesLeaderMajority,
        NemesisKind::HalvesLeaderMinority,
        NemesisKind::Bridge,
        NemesisKind::MajoritiesRing,
        NemesisKind::PacketLoss,
        NemesisKind::KillMinority,
        NemesisKind::KillAll,
        NemesisKind::PauseLeader,
        NemesisKind::PauseWorker,
        NemesisKind::ClockSkew,
        NemesisKind::Membership,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::IsolateLeader => "isolate-leader",
            NemesisKind::HalvesLeaderMajority => "halves-leader-majority",
            NemesisKind::HalvesLeaderMinority => "halves-leader-minority",
            NemesisKind::Bridge => "bridge",
            NemesisKind::MajoritiesRing => "majorities-ring",
            NemesisKind::PacketLoss => "packet-loss",
            NemesisKind::KillMinority => "kill-minority",
            NemesisKind::KillAll => "kill-all",
            NemesisKind::PauseLeader => "pause-leader",
            NemesisKind::PauseWorker => "pause-worker",
            NemesisKind::ClockSkew => "clock-skew",
            NemesisKind::Membership => "membership",
        }
    }

    /// Fault duration bounds in ms. Pauses outlast the election timeout or the lease by
    /// construction (see `nemesis.rs`, which checks it against the run's settings).
    pub fn duration_ms(self) -> (u64, u64) {
        match self {
            NemesisKind::PauseLeader => (2_500, 5_000),
            NemesisKind::PauseWorker => (3_000, 6_000),
            NemesisKind::KillAll => (2_000, 5_000),
            NemesisKind::Membership => (3_000, 6_000),
            _ => (4_000, 9_000),
        }
    }

    /// Whether the kind makes sense on a cluster of `nodes`.
    pub fn fits(self, nodes: usize) -> bool {
        match self {
            NemesisKind::MajoritiesRing => nodes >= 5,
            NemesisKind::Bridge | NemesisKind::HalvesLeaderMajority => nodes >= 3,
            _ => nodes >= 2,
        }
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = String;

    /// A kind by name, or a group: `partition` (all partitions), `kill`, `pause`.
    fn from_str(s: &str) -> Result<Self, String> {
        NemesisKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown nemesis {s:?}; known: {}, and the groups partition, kill, pause, all",
                    names.join(", ")
                )
            })
    }
}

/// Expands a comma-separated list of kinds and groups into kinds that fit `nodes`.
pub fn parse_kinds(list: &str, nodes: usize) -> Result<Vec<NemesisKind>, String> {
    use NemesisKind::*;
    let mut out: Vec<NemesisKind> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let group: Vec<NemesisKind> = match item {
            "partition" => vec![
                IsolateLeader,
                HalvesLeaderMajority,
                HalvesLeaderMinority,
                Bridge,
                MajoritiesRing,
            ],
            "kill" => vec![KillMinority, KillAll],
            "pause" => vec![PauseLeader, PauseWorker],
            "all" => NemesisKind::ALL.to_vec(),
            name => {
                let kind: NemesisKind = name.parse()?;
                if !kind.fits(nodes) {
                    return Err(format!("nemesis {kind} needs more than {nodes} nodes"));
                }
                vec![kind]
            }
        };
        for kind in group.into_iter().filter(|k| k.fits(nodes)) {
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
    }
    if out.is_empty() {
        return Err("no nemesis selected".to_owned());
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFault {
    pub id: u64,
    pub kind: NemesisKind,
    /// From the start of the workload.
    pub start_ms: u64,
    pub duration_ms: u64,
}

impl PlannedFault {
    pub fn to_fault(&self) -> Fault {
        Fault {
            id: self.id,
            kind: self.kind.name().to_owned(),
            targets: Vec::new(),
        }
    }
}

/// Load runs undisturbed this long before the first fault, so every run has a baseline.
pub const WARMUP_MS: u64 = 3_000;
/// Quiet time between two faults: the cluster recovers and the report can see it.
pub const GAP_MS: (u64, u64) = (2_000, 4_000);
/// A fault counts only if it fits in the fault phase whole.
pub const FAULTS_MAX: usize = 1_000;

/// Plans faults over `fault_phase_ms`, cycling through `kinds` in a seeded order that is
/// reshuffled every round, so every kind appears once before any appears twice.
pub fn plan(seed: u64, kinds: &[NemesisKind], fault_phase_ms: u64) -> Vec<PlannedFault> {
    assert!(!kinds.is_empty(), "plan needs at least one kind");
    let mut rng = Rng::new(seed).fork(0x5E_ED0F_FA17);
    let mut out = Vec::new();
    let mut at = WARMUP_MS;
    let mut round: Vec<NemesisKind> = Vec::new();
    while out.len() < FAULTS_MAX {
        if round.is_empty() {
            round = kinds.to_vec();
            rng.shuffle(&mut round);
        }
        let kind = round.remove(0);
        let (lo, hi) = kind.duration_ms();
        let duration_ms = rng.range(lo, hi);
        if at + duration_ms > fault_phase_ms {
            break;
        }
        out.push(PlannedFault {
            id: out.len() as u64 + 1,
            kind,
            start_ms: at,
            duration_ms,
        });
        at += duration_ms + rng.range(GAP_MS.0, GAP_MS.1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_a_function_of_the_seed_and_covers_every_kind() {
        let kinds = parse_kinds("all", 5).expect("kinds");
        let a = plan(42, &kinds, 600_000);
        assert_eq!(a, plan(42, &kinds, 600_000));
        assert_ne!(a, plan(43, &kinds, 600_000));
        for k in &kinds {
            assert!(a.iter().any(|f| f.kind == *k), "{k} never planned");
        }
        for w in a.windows(2) {
            assert!(w[0].start_ms + w[0].duration_ms + GAP_MS.0 <= w[1].start_ms);
        }
        assert!(a
            .last()
            .is_some_and(|f| f.start_ms + f.duration_ms <= 600_000));
    }

    #[test]
    fn groups_expand_and_misfits_are_refused() {
        let kinds = parse_kinds("partition,kill", 3).expect("kinds");
        assert!(!kinds.contains(&NemesisKind::MajoritiesRing));
        assert!(kinds.contains(&NemesisKind::KillAll));
        assert!(parse_kinds("majorities-ring", 3).is_err());
        assert!(parse_kinds("nope", 3).is_err());
        assert!(parse_kinds("", 3).is_err());
    }

    #[test]
    fn a_short_phase_plans_nothing_it_cannot_finish() {
        assert!(plan(1, &[NemesisKind::KillAll], 4_000).is_empty());
    }
}
