//! The nemesis schedule: which faults happen when, derived from the seed alone.
//!
//! Faults run one after another with a quiet gap between them, so every fault window has a
//! clear start and end, and recovery after each one can be measured. Targets (which node
//! is the leader) are decided when the fault starts, not here.
//!
//! A rolling restart or upgrade is planned as one step per node, back to back: each step
//! is a fault of its own (its node stopped, then started again), so coverage checks every
//! node's restart and the report measures each one.
//!
//! A node replacement is one fault: its window runs from the node's SIGKILL until it is
//! a caught-up voter again, so the add-node under load happens inside the window.

use std::fmt;
use std::path::{Path, PathBuf};
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
    /// Every node stopped gracefully (SIGTERM) and started again, one at a time, each
    /// caught up before the next stops. Once per run.
    RollingRestart,
    /// The same, each node started again from `--upgrade-bin`. Once per run.
    RollingUpgrade,
    /// The runbook's "replace a dead node with an empty disk": a follower SIGKILLed,
    /// removed from the membership (forced), its data directory deleted; then started
    /// again empty with the same id, address and flags, and added back (add-node).
    ReplaceNode,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 15] = [
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
        NemesisKind::RollingRestart,
        NemesisKind::RollingUpgrade,
        NemesisKind::ReplaceNode,
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
            NemesisKind::RollingRestart => "rolling-restart",
            NemesisKind::RollingUpgrade => "rolling-upgrade",
            NemesisKind::ReplaceNode => "replace-node",
        }
    }

    /// Whether the kind is a roll: one step per node rather than one fault.
    pub fn is_rolling(self) -> bool {
        matches!(
            self,
            NemesisKind::RollingRestart | NemesisKind::RollingUpgrade
        )
    }

    /// Whether the kind is an operation of the runbook (a roll, a node replacement)
    /// rather than a fault: those are asked for by name and left out of `all`, which also
    /// keeps the seeded schedules of existing `all` runs as they were.
    pub fn by_name_only(self) -> bool {
        self.is_rolling() || self == NemesisKind::ReplaceNode
    }

    /// Fault duration bounds in ms. Pauses outlast the election timeout or the lease by
    /// construction (see `nemesis.rs`, which checks it against the run's settings). For a
    /// roll: how long each node stays down between its exit and its start. For a
    /// replacement: how long the machine stays dead (killed, removed, wiped) before the
    /// new one starts; the add-node and catch-up come on top (see [`plan`]).
    pub fn duration_ms(self) -> (u64, u64) {
        match self {
            NemesisKind::RollingRestart | NemesisKind::RollingUpgrade => RESTART_DOWN_MS,
            NemesisKind::ReplaceNode => REPLACE_DEAD_MS,
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
            // The removal commits on a majority of the old voters, which the survivors
            // must still be: with 2 nodes, one dead leaves no quorum to remove it.
            NemesisKind::ReplaceNode => nodes >= 3,
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

    /// A kind by name (groups are expanded by [`parse_kinds`]).
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
            // Every fault, and only faults: rolls are operations that happen once per run
            // (and an upgrade needs a binary), a replacement is an operation too, so they
            // are asked for by name (see `by_name_only`).
            "all" => NemesisKind::ALL
                .into_iter()
                .filter(|k| !k.by_name_only())
                .collect(),
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

/// `--upgrade-bin`, checked against the kinds: required (and executable) exactly when a
/// rolling upgrade is planned, so a typo fails before the cluster starts, and a binary
/// given to a run that would never use it is not silently ignored.
pub fn upgrade_bin(kinds: &[NemesisKind], given: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let wanted = kinds.contains(&NemesisKind::RollingUpgrade);
    match (wanted, given) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(
            "--upgrade-bin is only used by --nemesis rolling-upgrade, which is not selected"
                .to_owned(),
        ),
        (true, None) => Err(
            "--nemesis rolling-upgrade needs --upgrade-bin PATH (the taskswarm binary each node is restarted from)"
                .to_owned(),
        ),
        (true, Some(path)) => {
            crate::env::nodes::check_executable(path).map_err(|why| format!("--upgrade-bin: {why}"))?;
            Ok(Some(path.to_path_buf()))
        }
    }
}

/// Where a planned fault sits in a roll: step `index` (from 0) of `count`, one per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFault {
    pub id: u64,
    pub kind: NemesisKind,
    /// From the start of the workload.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// For a roll: which step this is. `None` for every other kind.
    pub step: Option<Step>,
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
/// A rolled node stays down this long between its exit and its start again: the pause of
/// a deploy tool between `stop` and `start`, short, since a roll is not an outage.
pub const RESTART_DOWN_MS: (u64, u64) = (200, 1_000);
/// Planned time from one roll step's start of its node to the next step's stop: the
/// node's start-up and catch-up. The nemesis waits for the catch-up itself (bounded), so
/// a slower one delays the rest of the schedule instead of overlapping the next step.
pub const STEP_GAP_MS: (u64, u64) = (2_000, 3_000);
/// A replaced node stays dead this long (killed, removed, its disk deleted) before the
/// new one starts: long enough that writes carry on without it under the two-voter
/// membership, short enough for a few replacements in a short run.
pub const REPLACE_DEAD_MS: (u64, u64) = (3_000, 6_000);
/// Planned time a replacement's add-node and catch-up take after its planned duration.
/// The nemesis waits for them itself (bounded), so a slower add-node delays the rest of
/// the schedule instead of overlapping the next fault; planning it keeps a quiet gap
/// after the heal in the usual case.
pub const REPLACE_HEAL_MS: u64 = 2_000;

/// Plans faults over `fault_phase_ms`, cycling through `kinds` in a seeded order that is
/// reshuffled every round, so every kind appears once before any appears twice. A roll
/// is planned as `nodes` consecutive steps, only whole, and once per run: rolling every
/// node once is the operation under test, and after an upgrade the rest of the phase then
/// runs on the upgraded cluster.
pub fn plan(
    seed: u64,
    kinds: &[NemesisKind],
    nodes: usize,
    fault_phase_ms: u64,
) -> Vec<PlannedFault> {
    assert!(!kinds.is_empty(), "plan needs at least one kind");
    let mut rng = Rng::new(seed).fork(0x5E_ED0F_FA17);
    let mut out: Vec<PlannedFault> = Vec::new();
    let mut at = WARMUP_MS;
    let mut round: Vec<NemesisKind> = Vec::new();
    let mut rolled: Vec<NemesisKind> = Vec::new();
    while out.len() < FAULTS_MAX {
        if round.is_empty() {
            round = kinds
                .iter()
                .copied()
                .filter(|k| !rolled.contains(k))
                .collect();
            if round.is_empty() {
                break; // only rolls were asked for, and each has run
            }
            rng.shuffle(&mut round);
        }
        let kind = round.remove(0);
        if kind.is_rolling() {
            let (steps, end_ms) = plan_roll(&mut rng, kind, nodes, at, out.len() as u64 + 1);
            if end_ms > fault_phase_ms {
                break;
            }
            out.extend(steps);
            rolled.push(kind);
            at = end_ms + rng.range(GAP_MS.0, GAP_MS.1);
            continue;
        }
        let (lo, hi) = kind.duration_ms();
        let duration_ms = rng.range(lo, hi);
        let heal_ms = heal_ms(kind);
        if at + duration_ms + heal_ms > fault_phase_ms {
            break;
        }
        out.push(PlannedFault {
            id: out.len() as u64 + 1,
            kind,
            start_ms: at,
            duration_ms,
            step: None,
        });
        at += duration_ms + heal_ms + rng.range(GAP_MS.0, GAP_MS.1);
    }
    out
}

/// Time planned after a fault's duration for its heal to finish: only a replacement's
/// add-node takes long enough to need it. Zero for every other kind, so their plans are
/// as they were.
fn heal_ms(kind: NemesisKind) -> u64 {
    match kind {
        NemesisKind::ReplaceNode => REPLACE_HEAL_MS,
        _ => 0,
    }
}

/// One step per node from `at`, ids from `first_id`, [`STEP_GAP_MS`] apart; with the
/// time the last one ends.
fn plan_roll(
    rng: &mut Rng,
    kind: NemesisKind,
    nodes: usize,
    mut at: u64,
    first_id: u64,
) -> (Vec<PlannedFault>, u64) {
    let (lo, hi) = kind.duration_ms();
    let mut steps = Vec::with_capacity(nodes);
    for index in 0..nodes {
        if index > 0 {
            at += rng.range(STEP_GAP_MS.0, STEP_GAP_MS.1);
        }
        let duration_ms = rng.range(lo, hi);
        steps.push(PlannedFault {
            id: first_id + index as u64,
            kind,
            start_ms: at,
            duration_ms,
            step: Some(Step {
                index,
                count: nodes,
            }),
        });
        at += duration_ms;
    }
    (steps, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_a_function_of_the_seed_and_covers_every_kind() {
        let kinds = parse_kinds("all", 5).expect("kinds");
        let a = plan(42, &kinds, 5, 600_000);
        assert_eq!(a, plan(42, &kinds, 5, 600_000));
        assert_ne!(a, plan(43, &kinds, 5, 600_000));
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
        assert!(plan(1, &[NemesisKind::KillAll], 3, 4_000).is_empty());
    }

    /// FNV-1a of a plan's ids, kinds, starts and durations.
    fn fingerprint(p: &[PlannedFault]) -> u64 {
        let text = p
            .iter()
            .map(|f| {
                format!(
                    "({}, {:?}, {}, {})",
                    f.id,
                    f.kind.name(),
                    f.start_ms,
                    f.duration_ms
                )
            })
            .collect::<Vec<_>>()
            .join(";");
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn adding_the_rolls_left_existing_schedules_as_they_were() {
        // Fingerprints of plans made before the rolls existed: a seed in the matrix or in
        // a bug report must replay the same schedule.
        let pinned = [
            (42, "all", 5, 600_000, 66, 0x2d6b_1fb0_e200_4054),
            (101, "isolate-leader", 3, 20_000, 2, 0x04b8_ea12_8b73_a987),
            (
                103,
                "kill-minority,kill-all",
                3,
                25_000,
                3,
                0xcc96_54e6_b6b7_9dc9,
            ),
            (
                7,
                "partition,kill,pause",
                3,
                120_000,
                12,
                0x7192_7d23_916d_74d0,
            ),
        ];
        for (seed, list, nodes, phase_ms, count, fnv) in pinned {
            let p = plan(
                seed,
                &parse_kinds(list, nodes).expect("kinds"),
                nodes,
                phase_ms,
            );
            assert_eq!((p.len(), fingerprint(&p)), (count, fnv), "{seed} {list}");
            assert!(p.iter().all(|f| f.step.is_none()));
        }
    }

    #[test]
    fn a_roll_is_one_step_per_node_back_to_back_and_deterministic() {
        let p = plan(108, &[NemesisKind::RollingRestart], 3, 25_000);
        assert_eq!(p, plan(108, &[NemesisKind::RollingRestart], 3, 25_000));
        assert_eq!(p.len(), 3, "{p:?}");
        for (i, f) in p.iter().enumerate() {
            assert_eq!(f.id, i as u64 + 1);
            assert_eq!(f.kind, NemesisKind::RollingRestart);
            assert_eq!(f.step, Some(Step { index: i, count: 3 }));
            assert!((RESTART_DOWN_MS.0..=RESTART_DOWN_MS.1).contains(&f.duration_ms));
        }
        assert_eq!(p[0].start_ms, WARMUP_MS);
        for w in p.windows(2) {
            let gap_ms = w[1].start_ms - (w[0].start_ms + w[0].duration_ms);
            assert!(
                (STEP_GAP_MS.0..=STEP_GAP_MS.1).contains(&gap_ms),
                "{gap_ms}"
            );
        }
        assert!(p[2].start_ms + p[2].duration_ms <= 25_000);
    }

    #[test]
    fn a_roll_happens_once_per_run_while_faults_keep_cycling() {
        let kinds = [NemesisKind::RollingUpgrade, NemesisKind::KillMinority];
        let p = plan(5, &kinds, 5, 300_000);
        let rolled: Vec<&PlannedFault> = p.iter().filter(|f| f.kind.is_rolling()).collect();
        assert_eq!(rolled.len(), 5, "one step per node, once");
        // The steps are consecutive faults: nothing runs inside a roll.
        assert!(rolled.windows(2).all(|w| w[1].id == w[0].id + 1));
        assert!(
            p.iter()
                .filter(|f| f.kind == NemesisKind::KillMinority)
                .count()
                > 5
        );
        let ids: Vec<u64> = p.iter().map(|f| f.id).collect();
        assert_eq!(ids, (1..=p.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_roll_that_does_not_fit_is_not_planned_in_part() {
        // 5 steps need 4 gaps of at least 2 s after the 3 s warm-up.
        assert!(plan(1, &[NemesisKind::RollingRestart], 5, 10_000).is_empty());
    }

    #[test]
    fn rolls_are_asked_for_by_name_not_by_all() {
        let all = parse_kinds("all", 3).expect("kinds");
        assert!(all.iter().all(|k| !k.by_name_only()));
        assert_eq!(
            all.len(),
            NemesisKind::ALL.len() - 4,
            "all but the ring, the rolls and the replacement"
        );
        assert_eq!(
            parse_kinds("rolling-restart,rolling-upgrade", 3),
            Ok(vec![
                NemesisKind::RollingRestart,
                NemesisKind::RollingUpgrade
            ])
        );
    }

    #[test]
    fn replacements_leave_time_for_the_add_node_and_are_asked_for_by_name() {
        let p = plan(110, &[NemesisKind::ReplaceNode], 3, 25_000);
        assert_eq!(p, plan(110, &[NemesisKind::ReplaceNode], 3, 25_000));
        assert!(!p.is_empty(), "{p:?}");
        for f in &p {
            assert_eq!(f.kind, NemesisKind::ReplaceNode);
            assert_eq!(f.step, None);
            assert!((REPLACE_DEAD_MS.0..=REPLACE_DEAD_MS.1).contains(&f.duration_ms));
        }
        for w in p.windows(2) {
            let end_ms = w[0].start_ms + w[0].duration_ms;
            assert!(
                end_ms + REPLACE_HEAL_MS + GAP_MS.0 <= w[1].start_ms,
                "{p:?}"
            );
        }
        assert!(p
            .last()
            .is_some_and(|f| f.start_ms + f.duration_ms + REPLACE_HEAL_MS <= 25_000));
        assert!(!parse_kinds("all", 5)
            .expect("kinds")
            .contains(&NemesisKind::ReplaceNode));
        assert_eq!(
            parse_kinds("replace-node", 3),
            Ok(vec![NemesisKind::ReplaceNode])
        );
        // Two nodes: the dead one cannot be removed without a quorum.
        assert!(parse_kinds("replace-node", 2).is_err());
    }

    #[test]
    fn the_upgrade_binary_is_required_exactly_by_a_rolling_upgrade() {
        let dir = std::env::temp_dir().join(format!("ts-upgrade-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let exe = dir.join("next");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let plain = dir.join("not-executable");
        std::fs::write(&plain, "").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let upgrade = [NemesisKind::RollingUpgrade];
        let restart = [NemesisKind::RollingRestart];
        assert_eq!(upgrade_bin(&restart, None), Ok(None));
        assert_eq!(upgrade_bin(&upgrade, Some(&exe)), Ok(Some(exe.clone())));
        let err = |kinds: &[NemesisKind], p: Option<&Path>| upgrade_bin(kinds, p).unwrap_err();
        assert!(err(&upgrade, None).contains("needs --upgrade-bin"));
        assert!(err(&restart, Some(&exe)).contains("not selected"));
        assert!(err(&upgrade, Some(&plain)).contains("not executable"));
        assert!(err(&upgrade, Some(&dir.join("missing"))).contains("no file"));
        assert!(err(&upgrade, Some(&dir)).contains("not a file"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
