//! No phantom: every task id seen (claimed, read, lease-acknowledged, in the final state)
//! was created by some enqueue that was attempted and not definitely refused; and an
//! idempotent re-enqueue (same client id) never yields a second task id.
//!
//! Tasks are tied to enqueues through the client-generated unique id carried in the
//! payload, which claims, reads and the final state echo back.

use std::collections::{BTreeMap, BTreeSet};

use crate::checker::Findings;
use crate::history::{History, F};
use crate::ops::{operations, Outcome};

pub const PROPERTY: &str = "phantom";

pub fn check(history: &History) -> Findings {
    let mut out = Findings::new(PROPERTY);
    let ops = operations(history);
    // Client ids whose enqueue may have happened (ok or unknown).
    let mut attempted: BTreeSet<&str> = BTreeSet::new();
    let mut acknowledged: BTreeSet<u64> = BTreeSet::new();
    // Every (task, client) pairing any response revealed.
    let mut pairs: BTreeSet<(u64, &str)> = BTreeSet::new();
    let mut observed: BTreeSet<u64> = BTreeSet::new();

    for op in &ops {
        let result = op.result();
        match (op.f, op.outcome()) {
            (F::Enqueue, outcome) => {
                let client = op.invoke.value.client_id.as_deref().unwrap_or_default();
                if outcome != Outcome::Fail {
                    attempted.insert(client);
                }
                if let (Outcome::Ok, Some(task)) = (outcome, result.and_then(|v| v.task)) {
                    acknowledged.insert(task);
                    pairs.insert((task, client));
                }
            }
            (F::Claim, Outcome::Ok) => {
                for c in result
                    .and_then(|v| v.claimed.as_deref())
                    .unwrap_or_default()
                {
                    observed.insert(c.task);
                    if let Some(client) = c.client_id.as_deref() {
                        pairs.insert((c.task, client));
                    }
                }
            }
            (_, Outcome::Ok) => {
                if let Some(task) = op.task() {
                    observed.insert(task);
                    if let Some(client) = result.and_then(|v| v.client_id.as_deref()) {
                        pairs.insert((task, client));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(fin) = history.final_state() {
        for (&task, t) in &fin.tasks {
            observed.insert(task);
            if let Some(client) = t.client_id.as_deref() {
                pairs.insert((task, client));
            }
        }
    }

    let mut tasks_of: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut clients_of: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for &(task, client) in &pairs {
        tasks_of.entry(client).or_default().insert(task);
        clients_of.entry(task).or_default().insert(client);
    }
    for (client, tasks) in &tasks_of {
        if tasks.len() > 1 {
            let first = tasks.iter().next().copied();
            out.anomaly(
                "duplicate_task",
                first,
                format!("client id {client} yielded tasks {tasks:?}"),
            );
        }
    }
    for (task, clients) in &clients_of {
        if clients.len() > 1 {
            out.anomaly(
                "client_mismatch",
                Some(*task),
                format!("task {task} seen with client ids {clients:?}"),
            );
        }
    }
    out.count("observed_tasks", observed.len() as u64);
    for task in observed {
        if acknowledged.contains(&task) {
            continue;
        }
        match clients_of.get(&task) {
            Some(clients) if clients.iter().any(|c| attempted.contains(c)) => {}
            Some(clients) => out.anomaly(
                "phantom",
                Some(task),
                format!("task {task} carries client id {clients:?}, whose enqueue was never attempted or was refused"),
            ),
            None => out.anomaly("phantom", Some(task), format!("task {task} was never returned by an enqueue")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::history::OpType;
    use crate::model::TaskState;
    use crate::testkit::*;

    #[test]
    fn valid_history_passes() {
        let f = check(&valid());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
        assert_eq!(f.counts.get("observed_tasks"), Some(&3));
    }

    #[test]
    fn claimed_task_never_enqueued_is_phantom() {
        let mut b = valid_prefix();
        b.claim(7, &[(42, 400)]);
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["phantom"]);
        assert_eq!(f.anomalies[0].task, Some(42));
    }

    #[test]
    fn task_of_a_refused_enqueue_is_phantom() {
        let mut b = valid_prefix();
        b.enqueue(7, "c4", OpType::Fail, None);
        let mut tasks = TASKS_OK.to_vec();
        tasks.push((4, TaskState::Succeeded, None, "c4"));
        let f = check(&b.finish(&tasks, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["phantom"]);
    }

    #[test]
    fn idempotent_re_enqueue_with_a_second_id_is_a_duplicate() {
        let mut b = valid_prefix();
        b.enqueue(7, "c1", OpType::Ok, Some(4));
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.kinds(), vec!["duplicate_task"]);
    }

    #[test]
    fn idempotent_re_enqueue_with_the_same_id_passes() {
        let mut b = valid_prefix();
        b.enqueue(7, "c1", OpType::Ok, Some(1));
        let f = check(&b.finish(&TASKS_OK, &NODES_OK).build());
        assert_eq!(f.verdict(), Verdict::Valid, "{f:?}");
    }
}
