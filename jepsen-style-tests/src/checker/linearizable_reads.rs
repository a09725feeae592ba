//! Linearizable reads: for each task that was read, the states observed by ok reads must
//! be explained by one order of that task's operations that respects real time (an
//! operation acknowledged before another was invoked comes first).
//!
//! The search is Wing & Gong / Lowe style: repeatedly pick a not-yet-placed operation that
//! no other unplaced operation must precede, apply it to the model, backtrack on failure,
//! and memoise (placed set, model states). Operations with an unknown outcome may be placed
//! or left out; definitely-failed ones are dropped.
//!
//! The model is the task's state only, as a *set* of possible states: what the cluster can
//! do on its own (lease expiry, retry backoff, timeouts, a claim whose answer was lost) is
//! a closure applied after every step, so the checker never blames the system for
//! transitions the history cannot show. Tokens are the fencing checker's business.

use std::collections::{BTreeMap, HashSet};

use crate::checker::Findings;
use crate::history::{History, F};
use crate::model::TaskState;
use crate::ops::{operations, Operation, Outcome};

pub const PROPERTY: &str = "linearizable_reads";

/// More operations on one task than this and the task is reported `unknown` (the placed
/// set is a u128 bitmask).
pub const OPS_PER_TASK_MAX: usize = 128;
/// Search steps per task before giving up with `unknown`: keeps a pathological history
/// from hanging the checker.
pub const SEARCH_STEPS_MAX: u64 = 200_000;

/// Bit set of possible states; bit 7 is "does not exist yet".
type States = u8;
const ABSENT: States = 1 << 7;

fn bit(s: TaskState) -> States {
    1 << (s as u8)
}

fn bits(list: &[TaskState]) -> States {
    list.iter().fold(0, |acc, &s| acc | bit(s))
}

fn has(set: States, s: TaskState) -> bool {
    set & bit(s) != 0
}

#[derive(Debug, Clone, Copy)]
enum Effect {
    Create,
    Claim,
    Heartbeat,
    Complete,
    /// fail / release / cancel, with the state the reply announced when known.
    Fail(Option<TaskState>),
    Release(Option<TaskState>),
    Cancel(Option<TaskState>),
    Read(TaskState),
}

#[derive(Debug, Clone, Copy)]
struct TaskOp {
    start: u64,
    end: u64,
    /// ok operations must be placed; unknown ones may be.
    required: bool,
    effect: Effect,
}

/// What the cluster may do to the task without any client operation.
fn closure(mut set: States, unknown_claims: bool) -> States {
    use TaskState::*;
    loop {
        let mut next = set;
        if has(set, Scheduled) {
            next |= bits(&[Queued, Expired]);
        }
        if has(set, Queued) {
            next |= bit(Expired);
            if unknown_claims {
                next |= bit(Running);
            }
        }
        if has(set, Running) {
            next |= bits(&[Queued, Scheduled, Failed, Expired]);
        }
        if next == set {
            return set;
        }
        set = next;
    }
}

/// The states after `effect`, from any state in `set` that allows it (empty: impossible).
fn apply(set: States, effect: Effect) -> States {
    use TaskState::*;
    let running = has(set, Running);
    let announced = |s: Option<TaskState>, otherwise: States| s.map_or(otherwise, bit);
    match effect {
        Effect::Create => {
            (if set & ABSENT != 0 {
                bits(&[Queued, Scheduled])
            } else {
                0
            }) | (set & !ABSENT)
        }
        Effect::Claim if has(set, Queued) => bit(Running),
        Effect::Heartbeat if running => bit(Running),
        Effect::Complete if running || has(set, Succeeded) => bit(Succeeded),
        Effect::Fail(s) if running => announced(s, bits(&[Queued, Scheduled, Failed])),
        Effect::Release(s) if running => announced(s, bits(&[Queued, Scheduled])),
        Effect::Cancel(s) => {
            let unfinished = set & bits(&[Scheduled, Queued, Running]);
            let cancelled = if unfinished != 0 {
                announced(s, bit(Cancelled) | (unfinished & bit(Running)))
            } else {
                0
            };
            cancelled | (set & !unfinished & !ABSENT)
        }
        Effect::Read(s) if has(set, s) => bit(s),
        _ => 0,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    Violation,
    Unknown,
}

struct Searcher<'a> {
    ops: &'a [TaskOp],
    unknown_claims: bool,
    required: u128,
    seen: HashSet<(u128, States)>,
    steps: u64,
}

impl Searcher<'_> {
    fn run(&mut self, placed: u128, set: States) -> Search {
        if placed & self.required == self.required {
            return Search::Linearizable;
        }
        if !self.seen.insert((placed, set)) {
            return Search::Violation;
        }
        self.steps += 1;
        if self.steps > SEARCH_STEPS_MAX {
            return Search::Unknown;
        }
        let unplaced = |i: usize| placed & (1u128 << i) == 0;
        let cutoff = (0..self.ops.len())
            .filter(|&i| unplaced(i))
            .map(|i| self.ops[i].end)
            .min()
            .unwrap_or(u64::MAX);
        let mut result = Search::Violation;
        for i in (0..self.ops.len()).filter(|&i| unplaced(i) && self.ops[i].start < cutoff) {
            let next = apply(set, self.ops[i].effect);
            if next == 0 {
                continue;
            }
            match self.run(placed | (1u128 << i), closure(next, self.unknown_claims)) {
                Search::Linearizable => return Search::Linearizable,
                Search::Unknown => result = Search::Unknown,
                Search::Violation => {}
            }
        }
        result
    }
}

fn task_op(op: &Operation<'_>, effect: Effect) -> Option<TaskOp> {
    match op.outcome() {
        Outcome::Fail => None,
        outcome => Some(TaskOp {
            start: op.start(),
            end: op.end(),
            required: outcome == Outcome::Ok,
            effect,
        }),
    }
}

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let ops = operations(history);
    // A claim with an unknown answer may have taken any queued task.
    let unknown_claims = ops
        .iter()
        .any(|op| op.f == F::Claim && op.outcome() == Outcome::Info);
    let client_task: BTreeMap<&str, u64> = history
        .final_state()
        .map(|f| {
            f.tasks
                .iter()
                .filter_map(|(&id, t)| Some((t.client_id.as_deref()?, id)))
                .collect()
        })
        .unwrap_or_default();

    let mut per_task: BTreeMap<u64, Vec<TaskOp>> = BTreeMap::new();
    let mut push = |task: u64, op: Option<TaskOp>| {
        if let Some(op) = op {
            per_task.entry(task).or_default().push(op);
        }
    };
    for op in &ops {
        let result_state = op.result().and_then(|v| v.state);
        match op.f {
            F::Enqueue => {
                let client = op.invoke.value.client_id.as_deref().unwrap_or_default();
                let task = op
                    .result()
                    .and_then(|v| v.task)
                    .or_else(|| client_task.get(client).copied());
                if let Some(task) = task {
                    push(task, task_op(op, Effect::Create));
                }
            }
            F::Claim => {
                for c in op
                    .result()
                    .and_then(|v| v.claimed.as_deref())
                    .unwrap_or_default()
                {
                    push(c.task, task_op(op, Effect::Claim));
                }
            }
            f => {
                let Some(task) = op.task() else { continue };
                let effect = match f {
                    F::Heartbeat => Effect::Heartbeat,
                    F::Complete => Effect::Complete,
                    F::Fail => Effect::Fail(result_state),
                    F::Release => Effect::Release(result_state),
                    F::Cancel => Effect::Cancel(result_state),
                    // A read with no state (unknown or failed) constrains nothing.
                    _ => match result_state {
                        Some(s) if op.is_ok() => Effect::Read(s),
                        _ => continue,
                    },
                };
                push(task, task_op(op, effect));
            }
        }
    }

    for (task, task_ops) in per_task {
        if !task_ops
            .iter()
            .any(|op| matches!(op.effect, Effect::Read(_)))
        {
            continue;
        }
        out.count("tasks_read", 1);
        if task_ops.len() > OPS_PER_TASK_MAX {
            out.gap(
                "too_many_ops",
                Some(task),
                format!(
                    "task {task} has {} operations (limit {OPS_PER_TASK_MAX})",
                    task_ops.len()
                ),
            );
            continue;
        }
        let created = task_ops
            .iter()
            .any(|op| matches!(op.effect, Effect::Create));
        // Without its enqueue in the history, the task may start in any unfinished state.
        let initial = if created {
            ABSENT
        } else {
            bits(&[TaskState::Scheduled, TaskState::Queued])
        };
        let required = task_ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.required)
            .fold(0u128, |m, (i, _)| m | (1 << i));
        let mut searcher = Searcher {
            ops: &task_ops,
            unknown_claims,
            required,
            seen: HashSet::new(),
            steps: 0,
        };
        match searcher.run(0, closure(initial, unknown_claims)) {
            Search::Linearizable => out.count("linearizable", 1),
            Search::Unknown => out.gap(
                "search_limit",
                Some(task),
                format!("task {task}: no decision within {SEARCH_STEPS_MAX} search steps"),
            ),
            Search::Violation => {
                let reads: Vec<&str> = task_ops
                    .iter()
                    .filter_map(|op| match op.effect {
                        Effect::Read(s) if op.required => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                out.anomaly(
                    "non_linearizable_read",
                    Some(task),
                    format!("task {task}: reads {reads:?} fit no order of its operations"),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::history::{OpType, OpValue, Workload};
    use crate::testkit::*;

    #[test]
    fn valid_history_passes() {
        let f = check(&valid());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
        assert_eq!(f.counts.get("linearizable"), Some(&1));
    }

    #[test]
    fn read_going_back_from_succeeded_to_running_is_detected() {
        let mut b = valid_prefix();
        b.read(5, 1, TaskState::Running);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["non_linearizable_read"]);
        assert_eq!(f.anomalies[0].task, Some(1));
    }

    #[test]
    fn read_concurrent_with_the_complete_may_see_either_state() {
        let mut b = Builder::new(Workload::R);
        b.enqueue(1, "c1", OpType::Ok, Some(1))
            .claim(2, &[(1, 100)])
            .lease_invoke(2, F::Complete, 1, 100)
            .read(3, 1, TaskState::Succeeded)
            .read(3, 1, TaskState::Succeeded)
            .op(2, OpType::Ok, F::Complete, OpValue::default());
        let f = check(&b.build());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
    }

    #[test]
    fn reading_a_task_before_its_enqueue_was_invoked_is_detected() {
        let mut b = Builder::new(Workload::R);
        b.read(3, 1, TaskState::Queued)
            .enqueue(1, "c1", OpType::Ok, Some(1));
        let f = check(&b.build());
        assert_eq!(f.kinds(), vec!["non_linearizable_read"]);
    }

    #[test]
    fn lease_expiry_explains_running_then_queued() {
        let mut b = Builder::new(Workload::R);
        b.enqueue(1, "c1", OpType::Ok, Some(1))
            .claim(2, &[(1, 100)])
            .read(3, 1, TaskState::Running)
            .read(3, 1, TaskState::Queued);
        let f = check(&b.build());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
    }

    #[test]
    fn too_many_operations_is_unknown_not_valid() {
        let mut b = Builder::new(Workload::R);
        b.enqueue(1, "c1", OpType::Ok, Some(1));
        for _ in 0..OPS_PER_TASK_MAX {
            b.read(3, 1, TaskState::Queued);
        }
        let f = check(&b.build());
        assert_eq!(f.verdict(), Verdict::Unknown, "{f:?}");
    }
}
