//! The terminal summary of a run: operations by f and result, faults by kind with their
//! durations, availability inside vs outside fault windows and recovery times after
//! them, findings per property with example task ids, latency p50/p99 per f.
//!
//! Rendering is a pure function to a `String`, so it is testable and the binary only
//! prints.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::availability::{summarize, Availability, KindRecovery, RecoveryStats, Split};
use crate::checker::{overall, Findings, EXAMPLES_MAX};
use crate::history::{History, NemesisType, Record, F};
use crate::ops::{operations, Outcome};

/// Percentile by nearest rank over sorted samples (`p` in 0..=100).
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn render(history: &History, findings: &[Findings]) -> String {
    let mut s = String::new();
    let h = history.header();
    let _ = writeln!(
        s,
        "taskswarm history: workload {:?}, {} nodes, seed {}",
        h.workload, h.nodes, h.seed
    );
    ops_table(history, &mut s);
    faults_table(history, &mut s);
    availability_section(history, &mut s);
    findings_table(findings, &mut s);
    let verdict = overall(findings);
    let _ = writeln!(s, "\nverdict: {verdict:?} (exit {})", verdict.exit_code());
    s
}

fn ops_table(history: &History, s: &mut String) {
    let ops = operations(history);
    let mut counts: BTreeMap<F, [u64; 4]> = BTreeMap::new();
    let mut latencies: BTreeMap<F, Vec<u64>> = BTreeMap::new();
    for op in &ops {
        let row = counts.entry(op.f).or_default();
        row[0] += 1;
        row[match op.outcome() {
            Outcome::Ok => 1,
            Outcome::Fail => 2,
            Outcome::Info => 3,
        }] += 1;
        if let Some(l) = op.latency_ms() {
            latencies.entry(op.f).or_default().push(l);
        }
    }
    let _ = writeln!(
        s,
        "\n{:<10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "f", "invoke", "ok", "fail", "info", "p50 ms", "p99 ms"
    );
    for (f, [invoke, ok, fail, info]) in &counts {
        let mut l = latencies.remove(f).unwrap_or_default();
        l.sort_unstable();
        let _ = writeln!(
            s,
            "{:<10} {invoke:>8} {ok:>8} {fail:>8} {info:>8} {:>9} {:>9}",
            f.name(),
            fmt_opt(percentile(&l, 50)),
            fmt_opt(percentile(&l, 99))
        );
    }
}

fn faults_table(history: &History, s: &mut String) {
    let end = history.records().last().map_or(0, Record::time_ms);
    let mut started: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    // kind → (count, total ms, never stopped)
    let mut by_kind: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for r in history.records() {
        let Record::Nemesis(n) = r else { continue };
        match n.kind {
            NemesisType::Start => {
                started.insert(n.fault.id, (n.fault.kind.clone(), n.time_ms));
            }
            NemesisType::Stop => {
                if let Some((kind, at)) = started.remove(&n.fault.id) {
                    let e = by_kind.entry(kind).or_default();
                    e.0 += 1;
                    e.1 += n.time_ms.saturating_sub(at);
                }
            }
        }
    }
    for (kind, at) in started.into_values() {
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += end.saturating_sub(at);
        e.2 += 1;
    }
    let _ = writeln!(
        s,
        "\n{:<28} {:>6} {:>10} {:>10}",
        "fault", "count", "total ms", "unstopped"
    );
    for (kind, (count, ms, open)) in by_kind {
        let _ = writeln!(s, "{kind:<28} {count:>6} {ms:>10} {open:>10}");
    }
}

/// Liveness under faults; informational only, it never changes the verdict.
fn availability_section(history: &History, s: &mut String) {
    let summary = summarize(history);
    let _ = writeln!(s, "\navailability and recovery");
    let _ = writeln!(
        s,
        "{:<10} {:>24} {:>24}",
        "ops ok", "inside fault windows", "outside fault windows"
    );
    let row = |s: &mut String, name: &str, split: &Split| {
        let _ = writeln!(
            s,
            "{name:<10} {:>24} {:>24}",
            fmt_availability(&split.inside),
            fmt_availability(&split.outside)
        );
    };
    row(s, "all", &summary.availability.all);
    row(s, "writes", &summary.availability.writes);
    recovery_table(s, "first ok write, any client", &summary.by_kind);
    recovery_table(
        s,
        "first ok write, the probe (sequential, 1 s timeout, rotating)",
        &summary.probe_by_kind,
    );
    let _ = writeln!(
        s,
        "last stop -> drained: {} ms",
        fmt_opt(summary.last_stop_to_drained_ms)
    );
}

/// Recovery times by fault kind, one row each.
fn recovery_table(s: &mut String, title: &str, kinds: &[KindRecovery]) {
    if kinds.is_empty() {
        return;
    }
    let _ = writeln!(s, "recovery: {title}");
    let _ = writeln!(
        s,
        "{:<28} {:>6} {:>16} {:>16} {:>16} {:>16}",
        "fault",
        "count",
        "start->ok p50 ms",
        "start->ok max ms",
        "stop->ok p50 ms",
        "stop->ok max ms"
    );
    for k in kinds {
        let (start, stop) = (&k.start_to_first_ok_write, &k.stop_to_first_ok_write);
        let _ = writeln!(
            s,
            "{:<28} {:>6} {:>16} {:>16} {:>16} {:>16}",
            k.kind,
            k.count,
            fmt_recovery(start, start.median_ms, k.count),
            fmt_recovery(start, start.max_ms, k.count),
            fmt_recovery(stop, stop.median_ms, k.count),
            fmt_recovery(stop, stop.max_ms, k.count)
        );
    }
}

/// `ok/total (pct%)`, or `-` when no operation fell on that side.
fn fmt_availability(a: &Availability) -> String {
    a.fraction().map_or_else(
        || "-".to_owned(),
        |f| format!("{}/{} ({:.1}%)", a.ok, a.total(), f * 100.0),
    )
}

/// A recovery statistic, flagged with how many faults it covers when some never saw an
/// ok write afterwards: a median over the recovered faults alone would look too good.
fn fmt_recovery(stats: &RecoveryStats, value: Option<u64>, faults: u64) -> String {
    let v = fmt_opt(value);
    if stats.samples < faults {
        format!("{v} ({}/{faults})", stats.samples)
    } else {
        v
    }
}

fn findings_table(findings: &[Findings], s: &mut String) {
    let _ = writeln!(
        s,
        "\n{:<20} {:<10} {:>9} {:>5}  examples",
        "property", "verdict", "anomalies", "gaps"
    );
    for f in findings {
        let mut examples: Vec<String> = Vec::new();
        for a in f.anomalies.iter().chain(&f.gaps).take(EXAMPLES_MAX) {
            examples.push(
                a.task
                    .map_or_else(|| a.kind.to_owned(), |t| format!("{}:{t}", a.kind)),
            );
        }
        let _ = writeln!(
            s,
            "{:<20} {:<10} {:>9} {:>5}  {}",
            f.property,
            format!("{:?}", f.verdict()),
            f.anomalies.len(),
            f.gaps.len(),
            examples.join(" ")
        );
        let counts: Vec<String> = f.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !counts.is_empty() {
            let _ = writeln!(s, "{:<20} {}", "", counts.join(" "));
        }
        for (kind, ids) in &f.examples {
            let _ = writeln!(s, "{:<20} {kind}: {ids:?}", "");
        }
    }
    for f in findings {
        for a in f.anomalies.iter().chain(&f.gaps).take(EXAMPLES_MAX) {
            let _ = writeln!(s, "  [{}] {}: {}", f.property, a.kind, a.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::check_all;
    use crate::testkit::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn report_lists_ops_faults_and_verdict() {
        let h = valid();
        let text = render(&h, &check_all(&h));
        assert!(text.contains("partition-isolate-leader"), "{text}");
        // complete: 4 invokes, 3 ok, 1 fail (the stale one), latency 10 ms each.
        assert!(
            text.contains(&format!(
                "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
                "complete", 4, 3, 1, 0, 10, 10
            )),
            "{text}"
        );
        assert!(text.contains("verdict: Valid (exit 0)"), "{text}");
    }

    #[test]
    fn report_has_availability_and_recovery_section() {
        let h = valid();
        let text = render(&h, &check_all(&h));
        assert!(text.contains("availability and recovery"), "{text}");
        // Inside the partition: 7 ops (5 writes), all ok; outside: 4 of 6 ok.
        let row = |name: &str, inside: &str, outside: &str| {
            format!("{name:<10} {inside:>24} {outside:>24}")
        };
        assert!(
            text.contains(&row("all", "7/7 (100.0%)", "4/6 (66.7%)")),
            "{text}"
        );
        assert!(
            text.contains(&row("writes", "5/5 (100.0%)", "4/6 (66.7%)")),
            "{text}"
        );
        // Start at 70 ms → claim ok at 90; stop at 220 → complete ok at 260.
        assert!(
            text.contains(&format!(
                "{:<28} {:>6} {:>16} {:>16} {:>16} {:>16}",
                "partition-isolate-leader", 1, 20, 20, 40, 40
            )),
            "{text}"
        );
        assert!(text.contains("last stop -> drained: 70 ms"), "{text}");
    }

    #[test]
    fn report_names_anomalies_with_task_ids() {
        let mut b = valid_prefix();
        b.claim(7, &[(42, 400)]);
        let h = b.finish(&TASKS_OK, &NODES_OK).build();
        let text = render(&h, &check_all(&h));
        assert!(text.contains("phantom:42"), "{text}");
        assert!(text.contains("verdict: Anomalies (exit 1)"), "{text}");
    }
}
