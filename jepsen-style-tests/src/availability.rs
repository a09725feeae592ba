//! Availability and recovery: how the cluster served clients while faults were active and
//! how quickly it came back once they healed.
//!
//! Everything here is a pure function of a validated [`History`]. Safety is the checkers'
//! business; these numbers are about liveness, so nothing here changes a verdict.
//!
//! Times are the harness's `time_ms`, but "invoked after the fault started" uses the
//! history `index`, the same total order the checkers use, so events recorded within the
//! same millisecond are still ordered correctly.

use std::collections::BTreeMap;

use crate::history::{History, NemesisType, Record, F};
use crate::ops::{operations, Operation, Outcome};
use crate::report::percentile;

/// One fault from its nemesis `start` to its `stop`, or to the end of the history when it
/// was never stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultWindow {
    pub id: u64,
    pub kind: String,
    /// The targets its `start` record names (`n2`, `n1,n2|n3`...).
    pub targets: Vec<String>,
    /// History index of the `start` record.
    pub start_index: u64,
    pub start_ms: u64,
    /// History index of the `stop` record; `None` when the fault was never stopped.
    pub stop_index: Option<u64>,
    pub stop_ms: Option<u64>,
    /// `stop_ms`, or the time of the last record when the fault was never stopped.
    pub end_ms: u64,
}

impl FaultWindow {
    /// Whether an event at `time_ms` happened while the fault was active. The stop instant
    /// is outside (the fault is healed); an unstopped fault still covers the last instant.
    pub fn contains(&self, time_ms: u64) -> bool {
        time_ms >= self.start_ms && (time_ms < self.end_ms || self.stop_ms.is_none())
    }

    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// Fault windows in the order the faults started.
///
/// A `stop` with no open `start` of the same id is ignored: it bounds nothing. A second
/// `start` of an id that is already open is ignored too: the fault is already in effect
/// and its window began at the first one.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let end_ms = history.records().last().map_or(0, Record::time_ms);
    let mut windows: Vec<FaultWindow> = Vec::new();
    // Fault id → position in `windows` of its open window.
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for record in history.records() {
        let Record::Nemesis(n) = record else { continue };
        match n.kind {
            NemesisType::Start => {
                open.entry(n.fault.id).or_insert_with(|| {
                    windows.push(FaultWindow {
                        id: n.fault.id,
                        kind: n.fault.kind.clone(),
                        targets: n.fault.targets.clone(),
                        start_index: n.index,
                        start_ms: n.time_ms,
                        stop_index: None,
                        stop_ms: None,
                        end_ms,
                    });
                    windows.len() - 1
                });
            }
            NemesisType::Stop => {
                if let Some(i) = open.remove(&n.fault.id) {
                    let w = &mut windows[i];
                    w.stop_index = Some(n.index);
                    w.stop_ms = Some(n.time_ms);
                    w.end_ms = n.time_ms;
                }
            }
        }
    }
    windows
}

/// Whether an operation changes the queue; only reads do not.
pub fn is_write(f: F) -> bool {
    f != F::Read
}

/// Outcomes of a set of operations; operations with no completion count as `info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Availability {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Availability {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    /// `ok / (ok + fail + info)`; `None` when there were no operations.
    pub fn fraction(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.ok as f64 / total as f64)
    }
}

/// Operations split by whether their invoke fell inside any fault window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub inside: Availability,
    pub outside: Availability,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AvailabilityByFaults {
    pub all: Split,
    /// Everything except reads.
    pub writes: Split,
}

/// Availability of all operations and of writes, inside vs outside the fault windows.
pub fn availability(history: &History, windows: &[FaultWindow]) -> AvailabilityByFaults {
    let covered = Coverage::new(windows);
    let mut result = AvailabilityByFaults::default();
    for op in operations(history) {
        let inside = covered.contains(op.invoke.time_ms);
        let outcome = op.outcome();
        let pick = |split: &mut Split| {
            if inside {
                split.inside.add(outcome);
            } else {
                split.outside.add(outcome);
            }
        };
        pick(&mut result.all);
        if is_write(op.f) {
            pick(&mut result.writes);
        }
    }
    result
}

/// The union of the fault windows as disjoint half-open intervals sorted by start, so an
/// operation is classified with a binary search instead of a scan over every window.
#[derive(Debug)]
struct Coverage {
    intervals: Vec<(u64, u64)>,
}

impl Coverage {
    fn new(windows: &[FaultWindow]) -> Self {
        let mut spans: Vec<(u64, u64)> = windows
            .iter()
            .map(|w| {
                // Half-open end; an unstopped window keeps its last instant (see
                // `FaultWindow::contains`).
                let end = if w.stop_ms.is_some() {
                    w.end_ms
                } else {
                    w.end_ms.saturating_add(1)
                };
                (w.start_ms, end)
            })
            .filter(|(start, end)| start < end)
            .collect();
        spans.sort_unstable();
        let mut intervals: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match intervals.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => intervals.push((start, end)),
            }
        }
        Self { intervals }
    }

    fn contains(&self, time_ms: u64) -> bool {
        // The last interval starting at or before `time_ms` is the only candidate.
        let after = self
            .intervals
            .partition_point(|&(start, _)| start <= time_ms);
        after > 0 && time_ms < self.intervals[after - 1].1
    }
}

/// How long one fault kept writes from succeeding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecovery {
    pub window: FaultWindow,
    /// From the fault's start to the completion of the first ok write invoked after it;
    /// `None` when no write invoked after the start ever succeeded.
    pub start_to_first_ok_write_ms: Option<u64>,
    /// From the fault's stop to the completion of the first ok write invoked after it;
    /// `None` when the fault never stopped or no later write succeeded.
    pub stop_to_first_ok_write_ms: Option<u64>,
}

/// Recovery times per fault window, in the windows' order.
pub fn recoveries(history: &History, windows: &[FaultWindow]) -> Vec<FaultRecovery> {
    recoveries_of(&operations(history), windows)
}

/// [`recoveries`] seen by one process alone (the probe).
pub fn recoveries_of_process(
    history: &History,
    windows: &[FaultWindow],
    process: u64,
) -> Vec<FaultRecovery> {
    let ops: Vec<Operation<'_>> = operations(history)
        .into_iter()
        .filter(|op| op.invoke.process == process)
        .collect();
    recoveries_of(&ops, windows)
}

fn recoveries_of(ops: &[Operation<'_>], windows: &[FaultWindow]) -> Vec<FaultRecovery> {
    let writes = OkWrites::new(ops);
    windows
        .iter()
        .map(|w| FaultRecovery {
            window: w.clone(),
            start_to_first_ok_write_ms: writes
                .first_completion_after(w.start_index)
                .map(|done_ms| done_ms.saturating_sub(w.start_ms)),
            stop_to_first_ok_write_ms: w.stop_index.zip(w.stop_ms).and_then(|(index, ms)| {
                writes
                    .first_completion_after(index)
                    .map(|done_ms| done_ms.saturating_sub(ms))
            }),
        })
        .collect()
}

/// Ok writes in invoke order with, for each, the earliest completion time among it and
/// all later-invoked ones, so "first ok write invoked after X" is one binary search; and
/// their completion times in time order, for the gaps between them.
#[derive(Debug)]
struct OkWrites {
    invoke_indexes: Vec<u64>,
    earliest_done_ms: Vec<u64>,
    /// When a client saw each ok write acknowledged, sorted.
    done_ms: Vec<u64>,
}

impl OkWrites {
    fn new(ops: &[Operation<'_>]) -> Self {
        // `operations` returns invokes in history order, so indexes are already sorted.
        let (invoke_indexes, mut earliest_done_ms): (Vec<u64>, Vec<u64>) = ops
            .iter()
            .filter(|op| is_write(op.f) && op.is_ok())
            .filter_map(|op| op.completion.map(|c| (op.invoke.index, c.time_ms)))
            .unzip();
        let mut done_ms = earliest_done_ms.clone();
        done_ms.sort_unstable();
        for i in (0..earliest_done_ms.len().saturating_sub(1)).rev() {
            earliest_done_ms[i] = earliest_done_ms[i].min(earliest_done_ms[i + 1]);
        }
        Self {
            invoke_indexes,
            earliest_done_ms,
            done_ms,
        }
    }

    /// Completion time of the first ok write whose invoke comes after history `index`.
    fn first_completion_after(&self, index: u64) -> Option<u64> {
        let first = self.invoke_indexes.partition_point(|&i| i <= index);
        self.earliest_done_ms.get(first).copied()
    }
}

/// For each span `(from_ms, to_ms)` of the history's time: the longest time no client
/// saw a write acknowledged around it (see [`longest_gap_around`]). The unavailability
/// of an event that has no fault window of its own, such as one node's restart.
pub fn longest_ok_write_gaps_ms(history: &History, spans: &[(u64, u64)]) -> Vec<Option<u64>> {
    let writes = OkWrites::new(&operations(history));
    spans
        .iter()
        .map(|&(from_ms, to_ms)| longest_gap_around(&writes.done_ms, from_ms, to_ms))
        .collect()
}

/// The largest gap between consecutive times of `sorted_ms`, from the last one at or
/// before `from_ms` to the first one at or after `to_ms`: a gap that began before the
/// span or ended after it counts whole, since clients waited all of it. `None` when no
/// time lies on one side: that gap has no end to measure.
fn longest_gap_around(sorted_ms: &[u64], from_ms: u64, to_ms: u64) -> Option<u64> {
    let first = sorted_ms
        .partition_point(|&t| t <= from_ms)
        .checked_sub(1)?;
    let last = sorted_ms.partition_point(|&t| t < to_ms.max(from_ms));
    let around = sorted_ms.get(first..=last)?;
    Some(around.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0))
}

/// Milliseconds from the last nemesis `stop` to the final-state record; `None` when the
/// history has either no stop or no final record.
pub fn last_stop_to_drained_ms(history: &History) -> Option<u64> {
    let last_stop_ms = history.records().iter().rev().find_map(|r| match r {
        Record::Nemesis(n) if n.kind == NemesisType::Stop => Some(n.time_ms),
        _ => None,
    })?;
    match history.records().last() {
        Some(Record::Final(f)) => Some(f.time_ms.saturating_sub(last_stop_ms)),
        _ => None,
    }
}

/// Median and maximum of one recovery time over the faults of a kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Faults of the kind for which the time is known.
    pub samples: u64,
    /// Lower median (nearest rank), like the report's p50.
    pub median_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

impl RecoveryStats {
    fn of(values: impl Iterator<Item = Option<u64>>) -> Self {
        let mut known: Vec<u64> = values.flatten().collect();
        known.sort_unstable();
        Self {
            samples: known.len() as u64,
            median_ms: percentile(&known, 50),
            max_ms: known.last().copied(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRecovery {
    pub kind: String,
    /// Fault windows of this kind, stopped or not.
    pub count: u64,
    pub start_to_first_ok_write: RecoveryStats,
    pub stop_to_first_ok_write: RecoveryStats,
}

/// Recovery times aggregated per fault kind, sorted by kind.
pub fn by_kind(recoveries: &[FaultRecovery]) -> Vec<KindRecovery> {
    let mut groups: BTreeMap<&str, Vec<&FaultRecovery>> = BTreeMap::new();
    for r in recoveries {
        groups.entry(r.window.kind.as_str()).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(kind, rs)| KindRecovery {
            kind: kind.to_owned(),
            count: rs.len() as u64,
            start_to_first_ok_write: RecoveryStats::of(
                rs.iter().map(|r| r.start_to_first_ok_write_ms),
            ),
            stop_to_first_ok_write: RecoveryStats::of(
                rs.iter().map(|r| r.stop_to_first_ok_write_ms),
            ),
        })
        .collect()
}

/// Everything above for one history.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilitySummary {
    pub windows: Vec<FaultWindow>,
    pub availability: AvailabilityByFaults,
    pub recoveries: Vec<FaultRecovery>,
    pub by_kind: Vec<KindRecovery>,
    /// The same, seen by the probe alone; empty when the history has no probe.
    pub probe_by_kind: Vec<KindRecovery>,
    pub last_stop_to_drained_ms: Option<u64>,
}

pub fn summarize(history: &History) -> AvailabilitySummary {
    let windows = fault_windows(history);
    let availability = availability(history, &windows);
    let recoveries = recoveries(history, &windows);
    let by_kind = by_kind(&recoveries);
    let probe_by_kind = match history.header().probe_process {
        Some(process) => self::by_kind(&recoveries_of_process(history, &windows, process)),
        None => Vec::new(),
    };
    AvailabilitySummary {
        availability,
        by_kind,
        probe_by_kind,
        last_stop_to_drained_ms: last_stop_to_drained_ms(history),
        recoveries,
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, OpValue, Workload};
    use crate::model::TaskState;
    use crate::testkit::*;

    // In testkit histories event n happens at n × 10 ms.

    #[test]
    fn windows_pair_start_and_stop_by_fault_id() {
        let w = fault_windows(&valid());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].kind, "partition-isolate-leader");
        assert_eq!(
            (w[0].start_ms, w[0].stop_ms, w[0].end_ms),
            (70, Some(220), 220)
        );
        assert_eq!(w[0].duration_ms(), 150);
        assert!(w[0].contains(70) && w[0].contains(219));
        assert!(!w[0].contains(69) && !w[0].contains(220));
    }

    #[test]
    fn unstopped_fault_lasts_to_the_end_and_interleaved_faults_pair_by_id() {
        let mut b = Builder::new(Workload::Q);
        b.schedule(1, "kill").schedule(2, "pause-leader");
        b.nemesis(NemesisType::Start, 1, true) // 10
            .nemesis(NemesisType::Start, 2, true) // 20
            .nemesis(NemesisType::Stop, 1, true) // 30
            .nemesis(NemesisType::Stop, 9, true) // 40: stop of nothing
            .enqueue(1, "c1", OpType::Ok, Some(1)); // 50, 60
        let w = fault_windows(&b.build());
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].id, w[0].start_ms, w[0].stop_ms), (1, 10, Some(30)));
        assert_eq!((w[1].id, w[1].start_ms, w[1].stop_ms), (2, 20, None));
        assert_eq!(w[1].end_ms, 60);
        assert!(w[1].contains(60));
    }

    #[test]
    fn availability_splits_inside_and_outside_fault_windows() {
        let h = valid();
        let a = availability(&h, &fault_windows(&h));
        // Inside [70, 220): 3 claims, heartbeat, complete, 2 reads, all ok.
        assert_eq!(
            a.all.inside,
            Availability {
                ok: 7,
                fail: 0,
                info: 0
            }
        );
        assert_eq!(
            a.writes.inside,
            Availability {
                ok: 5,
                fail: 0,
                info: 0
            }
        );
        // Outside: 2 ok + 1 info enqueues, 2 ok + 1 fail completes; no reads.
        assert_eq!(
            a.all.outside,
            Availability {
                ok: 4,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(a.writes.outside, a.all.outside);
        assert_eq!(a.all.outside.total(), 6);
        assert_eq!(a.all.inside.fraction(), Some(1.0));
        assert_eq!(Availability::default().fraction(), None);
    }

    #[test]
    fn overlapping_windows_count_an_operation_once() {
        let mut b = Builder::new(Workload::Q);
        b.schedule(1, "kill").schedule(2, "kill");
        b.nemesis(NemesisType::Start, 1, true)
            .nemesis(NemesisType::Start, 2, true)
            .enqueue(1, "c1", OpType::Fail, None)
            .nemesis(NemesisType::Stop, 1, true)
            .enqueue(1, "c2", OpType::Ok, Some(1))
            .nemesis(NemesisType::Stop, 2, true)
            .enqueue(1, "c3", OpType::Ok, Some(2));
        let h = b.build();
        let a = availability(&h, &fault_windows(&h));
        assert_eq!(
            a.all.inside,
            Availability {
                ok: 1,
                fail: 1,
                info: 0
            }
        );
        assert_eq!(
            a.all.outside,
            Availability {
                ok: 1,
                fail: 0,
                info: 0
            }
        );
    }

    #[test]
    fn recovery_times_after_start_and_stop() {
        let h = valid();
        let r = recoveries(&h, &fault_windows(&h));
        // Start at 70; the claim invoked at 80 completes at 90.
        assert_eq!(r[0].start_to_first_ok_write_ms, Some(20));
        // Stop at 220; the complete invoked at 230 fails, the one at 250 completes at 260.
        assert_eq!(r[0].stop_to_first_ok_write_ms, Some(40));
        // Final record at 290.
        assert_eq!(last_stop_to_drained_ms(&h), Some(70));
    }

    #[test]
    fn first_ok_write_is_the_earliest_completion_and_ignores_reads_and_earlier_invokes() {
        let enqueue = |client: &str| OpValue {
            client_id: Some(client.to_owned()),
            ..OpValue::default()
        };
        let enqueued = |task: u64| OpValue {
            task: Some(task),
            ..OpValue::default()
        };
        let mut b = Builder::new(Workload::R);
        b.schedule(1, "kill");
        b.invoke(1, F::Enqueue, enqueue("early")) // 10: invoked before the start
            .nemesis(NemesisType::Start, 1, true) // 20
            .op(1, OpType::Ok, F::Enqueue, enqueued(1)) // 30
            .read(2, 1, TaskState::Queued) // 40, 50
            .invoke(3, F::Enqueue, enqueue("long")) // 60
            .enqueue(4, "fast", OpType::Ok, Some(2)) // 70, 80
            .op(3, OpType::Ok, F::Enqueue, enqueued(3)) // 90
            .nemesis(NemesisType::Stop, 1, true); // 100
        let h = b.build();
        let r = recoveries(&h, &fault_windows(&h));
        // "fast" completes at 80, before "long" (invoked earlier) completes at 90; "early"
        // and the read complete sooner but do not count.
        assert_eq!(r[0].start_to_first_ok_write_ms, Some(60));
        // Nothing is invoked after the stop.
        assert_eq!(r[0].stop_to_first_ok_write_ms, None);
        // No final record.
        assert_eq!(last_stop_to_drained_ms(&h), None);
    }

    #[test]
    fn the_longest_gap_includes_the_ones_that_straddle_the_span() {
        let done = [10, 20, 50, 55, 90, 100];
        // From 20 (last at or before 25) to 90 (first at or after 60): 30, 5, 35.
        assert_eq!(longest_gap_around(&done, 25, 60), Some(35));
        // A span inside one gap is that gap.
        assert_eq!(longest_gap_around(&done, 60, 70), Some(35));
        // On a completion: from it to itself.
        assert_eq!(longest_gap_around(&done, 50, 50), Some(0));
        assert_eq!(longest_gap_around(&done, 10, 100), Some(35));
        // Nothing acknowledged before, or after: no bound.
        assert_eq!(longest_gap_around(&done, 5, 30), None);
        assert_eq!(longest_gap_around(&done, 95, 101), None);
        assert_eq!(longest_gap_around(&[], 0, 0), None);
    }

    #[test]
    fn write_gaps_count_ok_writes_only_by_completion() {
        let mut b = Builder::new(Workload::R);
        b.enqueue(1, "c1", OpType::Ok, Some(1)) // 10, 20
            .enqueue(1, "c2", OpType::Fail, None) // 30, 40
            .read(2, 1, TaskState::Queued) // 50, 60: a read is not a write
            .enqueue(1, "c3", OpType::Ok, Some(2)) // 70, 80
            .enqueue(1, "c4", OpType::Info, None) // 90, 100
            .enqueue(1, "c5", OpType::Ok, Some(3)); // 110, 120
        let gaps = longest_ok_write_gaps_ms(&b.build(), &[(30, 90), (85, 85), (5, 50), (100, 130)]);
        assert_eq!(gaps, vec![Some(60), Some(40), None, None]);
    }

    #[test]
    fn summary_aggregates_per_kind() {
        let mut b = Builder::new(Workload::Q);
        b.schedule(1, "kill")
            .schedule(2, "kill")
            .schedule(3, "kill")
            .schedule(4, "clock-skew");
        b.nemesis(NemesisType::Start, 1, true) // 10
            .enqueue(1, "c1", OpType::Ok, Some(1)) // 20, 30: start→ok 20
            .nemesis(NemesisType::Stop, 1, true) // 40
            .enqueue(1, "c2", OpType::Ok, Some(2)) // 50, 60: stop→ok 20
            .nemesis(NemesisType::Start, 2, true) // 70
            .enqueue(1, "c3", OpType::Fail, None) // 80, 90
            .enqueue(1, "c4", OpType::Ok, Some(4)) // 100, 110: start→ok 40
            .nemesis(NemesisType::Stop, 2, true) // 120
            .enqueue(1, "c5", OpType::Info, None) // 130, 140
            .enqueue(1, "c6", OpType::Ok, Some(6)) // 150, 160: stop→ok 40
            .nemesis(NemesisType::Start, 3, true) // 170
            .nemesis(NemesisType::Start, 4, true) // 180
            .enqueue(1, "c7", OpType::Ok, Some(7)) // 190, 200
            .nemesis(NemesisType::Stop, 4, true); // 210: fault 3 never stops
        let s = summarize(&b.build());
        assert_eq!(s.windows.len(), 4);
        let kinds: Vec<&str> = s.by_kind.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(kinds, ["clock-skew", "kill"]);
        let kill = &s.by_kind[1];
        assert_eq!(kill.count, 3);
        assert_eq!(
            kill.start_to_first_ok_write,
            RecoveryStats {
                samples: 3,
                median_ms: Some(30),
                max_ms: Some(40)
            }
        );
        assert_eq!(
            kill.stop_to_first_ok_write,
            RecoveryStats {
                samples: 2,
                median_ms: Some(20),
                max_ms: Some(40)
            }
        );
        let skew = &s.by_kind[0];
        assert_eq!(skew.start_to_first_ok_write.max_ms, Some(20));
        assert_eq!(skew.stop_to_first_ok_write.samples, 0);
        assert_eq!(s.last_stop_to_drained_ms, None);
    }
}
