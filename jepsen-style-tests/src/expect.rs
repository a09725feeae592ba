//! Recovery targets (`jepsen-run --expect-recovery`): how fast a client must see the
//! cluster serve writes again after a fault. A separate check from the verdict: the CI
//! matrix stays a correctness gate, and these are judged in a run long enough for the
//! medians to mean something.
//!
//! Failover is measured by the probe (one sequential client with a 1 s timeout that
//! rotates nodes), from the fault's start. A heal that must not disturb a healthy leader
//! is measured by any client, from the fault's stop.

use crate::availability::{AvailabilitySummary, KindRecovery, RecoveryStats};

/// Which recovery a target is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The probe's first ok write after the fault started.
    ProbeFromStart,
    /// Any client's first ok write after the fault stopped.
    AnyFromStop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub measure: Measure,
    pub p50_ms_max: u64,
    pub max_ms_max: Option<u64>,
}

/// The availability issue's targets, with default node settings.
pub const TARGETS: &[Target] = &[
    // A SIGKILLed leader (kill-minority always includes it).
    Target {
        kind: "kill-minority",
        measure: Measure::ProbeFromStart,
        p50_ms_max: 1_000,
        max_ms_max: Some(2_000),
    },
    // A SIGSTOPped leader: the probe's own 1 s timeout is part of it.
    Target {
        kind: "pause-leader",
        measure: Measure::ProbeFromStart,
        p50_ms_max: 1_500,
        max_ms_max: Some(2_500),
    },
    // Heals where the leader kept its quorum: nodes coming back must not depose it.
    Target {
        kind: "halves-leader-majority",
        measure: Measure::AnyFromStop,
        p50_ms_max: 100,
        max_ms_max: None,
    },
    Target {
        kind: "majorities-ring",
        measure: Measure::AnyFromStop,
        p50_ms_max: 100,
        max_ms_max: None,
    },
    Target {
        kind: "bridge",
        measure: Measure::AnyFromStop,
        p50_ms_max: 100,
        max_ms_max: None,
    },
];

/// One target judged against a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub target: Target,
    /// The measured recovery; `None` when the fault did not run.
    pub measured: Option<RecoveryStats>,
    pub faults: u64,
    pub met: bool,
}

/// Judges every target whose fault ran. A fault that ran but never saw an ok write
/// afterwards misses its target.
pub fn judge(summary: &AvailabilitySummary) -> Vec<Judgement> {
    TARGETS
        .iter()
        .filter_map(|target| {
            let kinds = match target.measure {
                Measure::ProbeFromStart => &summary.probe_by_kind,
                Measure::AnyFromStop => &summary.by_kind,
            };
            let k: &KindRecovery = kinds.iter().find(|k| k.kind == target.kind)?;
            let stats = match target.measure {
                Measure::ProbeFromStart => k.start_to_first_ok_write,
                Measure::AnyFromStop => k.stop_to_first_ok_write,
            };
            let all_recovered = stats.samples == k.count;
            let p50_ok = stats.median_ms.is_some_and(|v| v <= target.p50_ms_max);
            let max_ok = match target.max_ms_max {
                Some(limit) => stats.max_ms.is_some_and(|v| v <= limit),
                None => true,
            };
            Some(Judgement {
                target: *target,
                measured: Some(stats),
                faults: k.count,
                met: all_recovered && p50_ok && max_ok,
            })
        })
        .collect()
}

/// One line per judged target.
pub fn render(judgements: &[Judgement]) -> String {
    let mut s = String::from("recovery targets\n");
    for j in judgements {
        let t = &j.target;
        let m = j.measured.unwrap_or_default();
        let what = match t.measure {
            Measure::ProbeFromStart => "probe, start->ok",
            Measure::AnyFromStop => "any client, stop->ok",
        };
        let limit_max = t.max_ms_max.map_or("-".to_owned(), |v| format!("{v}"));
        s.push_str(&format!(
            "{:<24} {:<22} p50 {:>6} ms (<= {:>5})  max {:>6} ms (<= {:>5})  {}/{} recovered  {}\n",
            t.kind,
            what,
            m.median_ms.map_or("-".to_owned(), |v| v.to_string()),
            t.p50_ms_max,
            m.max_ms.map_or("-".to_owned(), |v| v.to_string()),
            limit_max,
            m.samples,
            j.faults,
            if j.met { "met" } else { "MISSED" }
        ));
    }
    if judgements.is_empty() {
        s.push_str("(no fault with a target ran)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, count: u64, start: RecoveryStats, stop: RecoveryStats) -> KindRecovery {
        KindRecovery {
            kind: name.to_owned(),
            count,
            start_to_first_ok_write: start,
            stop_to_first_ok_write: stop,
        }
    }

    fn stats(samples: u64, median: u64, max: u64) -> RecoveryStats {
        RecoveryStats {
            samples,
            median_ms: Some(median),
            max_ms: Some(max),
        }
    }

    fn summary(by_kind: Vec<KindRecovery>, probe: Vec<KindRecovery>) -> AvailabilitySummary {
        AvailabilitySummary {
            windows: Vec::new(),
            availability: Default::default(),
            recoveries: Vec::new(),
            by_kind,
            probe_by_kind: probe,
            last_stop_to_drained_ms: None,
        }
    }

    #[test]
    fn failover_is_judged_on_the_probe_from_the_start() {
        let fast = kind(
            "kill-minority",
            2,
            stats(2, 800, 1_900),
            RecoveryStats::default(),
        );
        // Any client recovered at once, yet the probe's numbers decide.
        let any = kind(
            "kill-minority",
            2,
            stats(2, 10, 20),
            RecoveryStats::default(),
        );
        let j = judge(&summary(vec![any.clone()], vec![fast]));
        assert_eq!(j.len(), 1);
        assert!(j[0].met);
        let slow = kind(
            "kill-minority",
            2,
            stats(2, 1_100, 1_200),
            RecoveryStats::default(),
        );
        let j = judge(&summary(vec![any.clone()], vec![slow]));
        assert!(!j[0].met, "p50 over 1 s");
        let long_tail = kind(
            "kill-minority",
            3,
            stats(3, 700, 2_100),
            RecoveryStats::default(),
        );
        assert!(
            !judge(&summary(vec![any], vec![long_tail]))[0].met,
            "max over 2 s"
        );
    }

    #[test]
    fn heals_are_judged_on_any_client_from_the_stop() {
        let ring = kind(
            "majorities-ring",
            1,
            stats(1, 9_000, 9_000),
            stats(1, 40, 40),
        );
        let j = judge(&summary(vec![ring], Vec::new()));
        assert!(j[0].met);
        let deposed = kind("bridge", 1, stats(1, 10, 10), stats(1, 1_500, 1_500));
        assert!(!judge(&summary(vec![deposed], Vec::new()))[0].met);
    }

    #[test]
    fn a_fault_that_never_recovered_misses_and_absent_faults_are_not_judged() {
        let stuck = kind(
            "pause-leader",
            2,
            RecoveryStats::default(),
            RecoveryStats::default(),
        );
        let j = judge(&summary(Vec::new(), vec![stuck]));
        assert_eq!(j.len(), 1);
        assert!(!j[0].met);
        let partly = kind(
            "pause-leader",
            2,
            stats(1, 900, 900),
            RecoveryStats::default(),
        );
        assert!(!judge(&summary(Vec::new(), vec![partly]))[0].met);
        assert!(judge(&summary(Vec::new(), Vec::new())).is_empty());
        assert!(render(&[]).contains("no fault with a target ran"));
    }
}
