//! Coverage: a run only proves something if its faults happened. Every scheduled fault
//! must have started, taken effect and stopped; in workload L at least one stale-token
//! operation must have been attempted (otherwise fencing was never exercised).
//!
//! Shortfalls are gaps (verdict unknown, exit 2), not anomalies: the system did nothing
//! wrong, the run just did not test it.

use std::collections::BTreeMap;

use crate::checker::claims::Grants;
use crate::checker::Findings;
use crate::history::{History, NemesisType, Record, Workload};
use crate::ops::operations;

pub const PROPERTY: &str = "coverage";

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    started: bool,
    effective: bool,
    stopped: bool,
}

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    for r in history.records() {
        let Record::Nemesis(n) = r else { continue };
        let s = seen.entry(n.fault.id).or_default();
        match n.kind {
            NemesisType::Start => {
                s.started = true;
                s.effective |= n.effective;
            }
            NemesisType::Stop => s.stopped = true,
        }
    }
    out.count(
        "scheduled_faults",
        history.header().scheduled_faults.len() as u64,
    );
    for fault in &history.header().scheduled_faults {
        let s = seen.remove(&fault.id).unwrap_or_default();
        let name = format!("fault {} ({})", fault.id, fault.kind);
        if !s.started {
            out.gap(
                "fault_not_started",
                None,
                format!("{name} was scheduled but never started"),
            );
        } else if !s.effective {
            out.gap(
                "fault_ineffective",
                None,
                format!("{name} started but never took effect"),
            );
        } else {
            out.count("effective_faults", 1);
        }
        if s.started && !s.stopped {
            out.gap(
                "fault_not_stopped",
                None,
                format!("{name} has no stop record"),
            );
        }
    }
    for (id, s) in seen {
        // Unscheduled faults are a harness bug: the schedule is the run's plan.
        out.gap(
            "fault_unscheduled",
            None,
            format!(
                "fault {id} ran but was not scheduled (stopped: {})",
                s.stopped
            ),
        );
    }

    let ops = operations(history);
    let grants = Grants::new(&ops);
    let stale = ops.iter().filter(|op| grants.is_stale_attempt(op)).count() as u64;
    out.count("stale_attempts", stale);
    if history.header().workload == Workload::L && stale == 0 {
        out.gap(
            "no_stale_attempt",
            None,
            "workload L never attempted an operation with a stale token",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::history::{OpType, F};
    use crate::testkit::*;

    fn gap_kinds(f: &crate::checker::Findings) -> Vec<&'static str> {
        f.gaps.iter().map(|g| g.kind).collect()
    }

    #[test]
    fn valid_history_passes() {
        let f = check(&valid());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
        assert_eq!(f.counts.get("effective_faults"), Some(&1));
    }

    #[test]
    fn missing_nemesis_stop_makes_the_run_inconclusive() {
        let mut b = valid_prefix();
        b.schedule(2, "kill");
        b.nemesis(NemesisType::Start, 2, true);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.verdict(), Verdict::Unknown);
        assert_eq!(gap_kinds(&f), vec!["fault_not_stopped"]);
    }

    #[test]
    fn fault_that_never_took_effect_or_never_started() {
        let mut b = valid_prefix();
        b.schedule(2, "pause-leader").schedule(3, "clock-skew");
        b.nemesis(NemesisType::Start, 2, false)
            .nemesis(NemesisType::Stop, 2, true);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(
            gap_kinds(&f),
            vec!["fault_ineffective", "fault_not_started"]
        );
    }

    #[test]
    fn workload_l_without_a_stale_attempt_is_inconclusive() {
        let mut b = Builder::new(Workload::L);
        b.enqueue(1, "c1", OpType::Ok, Some(1))
            .claim(2, &[(1, 100)])
            .lease(2, F::Complete, 1, 100, OpType::Ok, None);
        let f = check(&b.build());
        assert_eq!(gap_kinds(&f), vec!["no_stale_attempt"]);
    }
}
