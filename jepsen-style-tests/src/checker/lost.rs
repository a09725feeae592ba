//! No lost task: every acknowledged enqueue is in the final state and ends succeeded (the
//! workloads drain, so anything else was lost or abandoned). A task cancelled by the
//! workload may end cancelled.
//!
//! `recovered` counts enqueues with an unknown outcome whose task exists at the end: not an
//! anomaly, but shows that unknown really meant unknown.

use std::collections::BTreeSet;

use crate::checker::{final_state_or_gap, Findings};
use crate::history::{History, F};
use crate::model::TaskState;
use crate::ops::{operations, Outcome};

pub const PROPERTY: &str = "lost";

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let Some(fin) = final_state_or_gap(history, &mut out) else {
        return out;
    };
    let ops = operations(history);
    // Tasks the workload tried to cancel (any outcome but a definite failure).
    let cancelled: BTreeSet<u64> = ops
        .iter()
        .filter(|op| op.f == F::Cancel && op.outcome() != Outcome::Fail)
        .filter_map(|op| op.task())
        .collect();
    let final_clients: BTreeSet<&str> = fin
        .tasks
        .values()
        .filter_map(|t| t.client_id.as_deref())
        .collect();

    for op in ops.iter().filter(|op| op.f == F::Enqueue) {
        let client = op.invoke.value.client_id.as_deref().unwrap_or_default();
        match op.outcome() {
            Outcome::Ok => {
                out.count("acknowledged", 1);
                let task = op.result().and_then(|v| v.task).unwrap_or_default();
                match fin.tasks.get(&task) {
                    None => out.anomaly(
                        "lost",
                        Some(task),
                        format!(
                            "enqueue of {client} acknowledged as task {task}, absent at the end"
                        ),
                    ),
                    Some(t) if t.state == TaskState::Succeeded => {
                        out.count(TaskState::Succeeded.as_str(), 1)
                    }
                    Some(t) if t.state == TaskState::Cancelled && cancelled.contains(&task) => {
                        out.count(TaskState::Cancelled.as_str(), 1)
                    }
                    Some(t) => out.anomaly(
                        "not_succeeded",
                        Some(task),
                        format!(
                            "acknowledged task {task} ({client}) ends {}",
                            t.state.as_str()
                        ),
                    ),
                }
            }
            Outcome::Info => {
                out.count("unknown", 1);
                if final_clients.contains(client) {
                    out.count("recovered", 1);
                }
            }
            Outcome::Fail => out.count("refused", 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use crate::testkit::*;

    #[test]
    fn valid_history_passes_and_counts_recovered() {
        let f = check(&valid());
        assert_eq!(f.verdict(), crate::checker::Verdict::Valid, "{f:?}");
        assert_eq!(f.counts.get("acknowledged"), Some(&2));
        assert_eq!(f.counts.get("recovered"), Some(&1));
    }

    #[test]
    fn acknowledged_enqueue_missing_at_the_end_is_lost() {
        let mut b = valid_prefix();
        b.enqueue(7, "c9", OpType::Ok, Some(9));
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["lost"]);
        assert_eq!(f.anomalies[0].task, Some(9));
    }

    #[test]
    fn acknowledged_task_left_queued_is_reported() {
        let mut tasks = TASKS_OK;
        tasks[1].1 = TaskState::Queued;
        let f = check(&valid_prefix().finish(&tasks, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["not_succeeded"]);
    }

    #[test]
    fn no_final_state_is_unknown() {
        let f = check(&valid_prefix().build());
        assert_eq!(f.verdict(), crate::checker::Verdict::Unknown);
    }
}
