//! Fencing: ok-claim tokens are unique and grow in real-time order (a claim acknowledged
//! before another was invoked has the smaller token); no heartbeat / complete / fail /
//! release with token t is acknowledged when a claim of the same task with a larger token
//! was acknowledged before it was invoked; at most one token completes a task, and it is
//! the task's final token.
//!
//! A task claimed under several tokens ran more than once (its lease was really lost):
//! legal at-least-once behaviour, counted and listed, not an anomaly.

use std::collections::{BTreeMap, BTreeSet};

use crate::checker::claims::{Grant, Grants};
use crate::checker::Findings;
use crate::history::{History, F};
use crate::ops::{operations, Operation};

pub const PROPERTY: &str = "fencing";

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let ops = operations(history);
    let grants = Grants::new(&ops);
    out.count("grants", grants.all.len() as u64);
    unique_tokens(&grants, &mut out);
    real_time_order(&grants, &mut out);
    stale_acknowledgements(&ops, &grants, &mut out);
    completions(history, &ops, &mut out);
    // A fail or release hands the task back on purpose; every other re-grant means a
    // lease was really lost while its holder may still have been working.
    let mut handed_back: BTreeMap<u64, usize> = BTreeMap::new();
    for op in ops
        .iter()
        .filter(|op| op.is_ok() && matches!(op.f, F::Fail | F::Release))
    {
        if let Some(task) = op.task() {
            *handed_back.entry(task).or_default() += 1;
        }
    }
    for (&task, list) in grants.tasks() {
        let tokens: BTreeSet<u64> = list.iter().map(|g| g.token).collect();
        let expected = 1 + handed_back.get(&task).copied().unwrap_or(0);
        if tokens.len() > expected {
            out.count("duplicate_executions", 1);
            out.example("duplicate_execution", task);
        }
    }
    out
}

fn unique_tokens(grants: &Grants, out: &mut Findings) {
    let mut seen: BTreeMap<u64, Grant> = BTreeMap::new();
    for g in &grants.all {
        if let Some(first) = seen.insert(g.token, *g) {
            out.anomaly(
                "duplicate_token",
                Some(g.task),
                format!(
                    "token {} granted twice: task {} and task {}",
                    g.token, first.task, g.task
                ),
            );
        }
    }
}

/// Sweep in invoke order, keeping the largest token among claims already acknowledged:
/// O(n log n) instead of comparing every pair.
fn real_time_order(grants: &Grants, out: &mut Findings) {
    let mut by_start = grants.all.clone();
    by_start.sort_by_key(|g| g.start);
    let mut by_end = grants.all.clone();
    by_end.sort_by_key(|g| g.end);
    let mut done = by_end.iter().peekable();
    let mut max: Option<Grant> = None;
    for g in &by_start {
        while let Some(prev) = done.next_if(|prev| prev.end < g.start) {
            if max.is_none_or(|m| prev.token > m.token) {
                max = Some(*prev);
            }
        }
        if let Some(m) = max.filter(|m| m.token > g.token) {
            out.anomaly(
                "token_order",
                Some(g.task),
                format!(
                    "claim of task {} got token {} after token {} (task {}) was acknowledged",
                    g.task, g.token, m.token, m.task
                ),
            );
        }
    }
}

fn stale_acknowledgements(ops: &[Operation<'_>], grants: &Grants, out: &mut Findings) {
    for op in ops.iter().filter(|op| op.f.is_lease_op()) {
        let (Some(task), Some(token)) = (op.task(), op.token()) else {
            continue;
        };
        if grants.is_stale_attempt(op) {
            out.count("stale_attempts", 1);
        }
        if !op.is_ok() {
            continue;
        }
        if let Some(newer) = grants.newer_before(task, token, op.start()) {
            out.anomaly(
                "stale_token_accepted",
                Some(task),
                format!(
                    "{} of task {task} with token {token} acknowledged after token {} was granted",
                    op.f.name(),
                    newer.token
                ),
            );
        }
    }
}

/// A retried complete with the same token is acknowledged again (`duplicate`): only
/// distinct tokens count as two completions.
fn completions(history: &History, ops: &[Operation<'_>], out: &mut Findings) {
    let mut tokens: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.f == F::Complete && op.is_ok()) {
        if let (Some(task), Some(token)) = (op.task(), op.token()) {
            tokens.entry(task).or_default().insert(token);
        }
    }
    out.count("completed_tasks", tokens.len() as u64);
    for (&task, set) in &tokens {
        if set.len() > 1 {
            out.anomaly(
                "double_complete",
                Some(task),
                format!("task {task} completed with tokens {set:?}"),
            );
        }
        let final_token = history
            .final_state()
            .and_then(|f| f.tasks.get(&task))
            .and_then(|t| t.token);
        if let Some(final_token) = final_token {
            for &t in set.iter().filter(|&&t| t != final_token) {
                out.anomaly(
                    "complete_not_final_token",
                    Some(task),
                    format!(
                        "task {task} completed with token {t} but its final token is {final_token}"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::history::OpType;
    use crate::model::TaskState;
    use crate::testkit::*;

    #[test]
    fn valid_history_passes_and_counts_the_duplicate_execution() {
        let f = check(&valid());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
        assert_eq!(f.counts.get("duplicate_executions"), Some(&1));
        assert_eq!(f.examples.get("duplicate_execution"), Some(&vec![2]));
        assert_eq!(f.counts.get("stale_attempts"), Some(&1));
    }

    #[test]
    fn stale_token_acknowledged_after_a_larger_claim() {
        let mut b = valid_prefix();
        b.lease(4, F::Heartbeat, 2, 200, OpType::Ok, None);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["stale_token_accepted"]);
        assert_eq!(f.anomalies[0].task, Some(2));
    }

    #[test]
    fn two_acknowledged_completes_with_distinct_tokens() {
        let mut b = Builder::new(crate::history::Workload::Q);
        b.enqueue(1, "c1", OpType::Ok, Some(1))
            .claim(2, &[(1, 100)])
            .lease_invoke(2, F::Complete, 1, 100)
            .claim(3, &[(1, 200)])
            .lease(3, F::Complete, 1, 200, OpType::Ok, None)
            .op(2, OpType::Ok, F::Complete, Default::default());
        let f = check(
            &b.finish(&[(1, TaskState::Succeeded, Some(200), "c1")], &NODES_OK)
                .build(),
        );
        assert!(f.kinds().contains(&"double_complete"), "{f:?}");
        assert!(!f.kinds().contains(&"stale_token_accepted"), "{f:?}");
    }

    #[test]
    fn retried_complete_with_the_same_token_is_not_a_double_complete() {
        let mut b = valid_prefix();
        b.lease(3, F::Complete, 1, 100, OpType::Ok, None);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
    }

    #[test]
    fn token_going_back_in_real_time_and_reused_tokens() {
        let mut b = valid_prefix();
        b.claim(7, &[(3, 250)]).claim(8, &[(1, 300)]);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert!(f.kinds().contains(&"token_order"), "{f:?}");
        assert!(f.kinds().contains(&"duplicate_token"), "{f:?}");
    }
}
