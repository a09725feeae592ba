//! Nothing stuck after the heal, from the final-state record: every node names the same
//! leader, all nodes applied the same index and hold the same state hash, and every
//! acknowledged task has finished. (The runner takes the record only after lease + a few
//! election timeouts past the heal, so "not yet" here means "stuck".)

use std::collections::BTreeSet;

use crate::checker::{final_state_or_gap, Findings};
use crate::history::{History, F};
use crate::ops::operations;

pub const PROPERTY: &str = "stuck";

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let Some(fin) = final_state_or_gap(history, &mut out) else {
        return out;
    };
    if fin.nodes.is_empty() {
        out.gap("no_nodes", None, "the final state lists no node");
    }
    out.count("nodes", fin.nodes.len() as u64);

    let leaders: BTreeSet<Option<u64>> = fin.nodes.iter().map(|n| n.leader_id).collect();
    match leaders.iter().next() {
        Some(Some(leader)) if leaders.len() == 1 && fin.nodes.iter().any(|n| n.id == *leader) => {}
        _ if fin.nodes.is_empty() => {}
        _ => out.anomaly(
            "no_single_leader",
            None,
            format!("nodes name leaders {leaders:?}"),
        ),
    }
    let applied: BTreeSet<u64> = fin.nodes.iter().map(|n| n.applied_index).collect();
    if applied.len() > 1 {
        out.anomaly(
            "applied_index_differs",
            None,
            format!("applied indexes {applied:?}"),
        );
    }
    let hashes: BTreeSet<&str> = fin.nodes.iter().map(|n| n.state_hash.as_str()).collect();
    if hashes.len() > 1 {
        let detail: Vec<String> = fin
            .nodes
            .iter()
            .map(|n| format!("n{}={}", n.id, n.state_hash))
            .collect();
        out.anomaly(
            "state_hash_differs",
            None,
            format!("state hashes differ: {}", detail.join(", ")),
        );
    }

    let acknowledged: BTreeSet<u64> = operations(history)
        .iter()
        .filter(|op| op.f == F::Enqueue && op.is_ok())
        .filter_map(|op| op.result().and_then(|v| v.task))
        .collect();
    for (&task, t) in &fin.tasks {
        if t.state.is_finished() {
            continue;
        }
        if acknowledged.contains(&task) {
            out.anomaly(
                "unfinished",
                Some(task),
                format!("acknowledged task {task} is still {}", t.state.as_str()),
            );
        } else {
            // An unknown-outcome enqueue left behind: worth seeing, not a broken promise.
            out.count("unfinished_unacknowledged", 1);
            out.example("unfinished_unacknowledged", task);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::model::TaskState;
    use crate::testkit::*;

    #[test]
    fn valid_history_passes() {
        let f = check(&valid());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
    }

    #[test]
    fn nodes_with_different_hashes_are_detected() {
        let mut nodes = NODES_OK;
        nodes[2].3 = "abd";
        let f = check(&valid_prefix().finish(&TASKS_OK, &nodes).build());
        assert_eq!(f.kinds(), vec!["state_hash_differs"]);
    }

    #[test]
    fn lagging_node_and_split_leadership_are_detected() {
        let mut nodes = NODES_OK;
        nodes[1].2 = 39;
        nodes[2].1 = None;
        let f = check(&valid_prefix().finish(&TASKS_OK, &nodes).build());
        assert_eq!(f.kinds(), vec!["no_single_leader", "applied_index_differs"]);
    }

    #[test]
    fn acknowledged_task_still_running_is_stuck() {
        let mut tasks = TASKS_OK;
        tasks[0].1 = TaskState::Running;
        let f = check(&valid_prefix().finish(&tasks, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["unfinished"]);
        assert_eq!(f.anomalies[0].task, Some(1));
    }
}
