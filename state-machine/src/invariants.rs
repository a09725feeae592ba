//! A full check of the state machine's invariants, recomputed from scratch. Expensive
//! (linear in the tasks): tests call it after every apply; production does not.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits;
use crate::machine::{Counts, StateMachine};
use crate::task::{TaskState, Token};

impl StateMachine {
    /// Panics with a description when an invariant does not hold.
    pub fn check_invariants(&self) {
        let rebuilt = StateMachine::restore(&self.snapshot()).expect("own snapshot decodes");
        assert_eq!(rebuilt.queues, self.queues, "queue counts match the tasks");
        assert_eq!(rebuilt.groups, self.groups, "group counts match the tasks");
        assert_eq!(
            rebuilt.ready, self.ready,
            "ready index matches the queued tasks"
        );
        assert_eq!(rebuilt.scheduled, self.scheduled, "schedule index matches");
        assert_eq!(rebuilt.delayed, self.delayed, "delay index matches");
        assert_eq!(
            rebuilt.leases, self.leases,
            "lease index matches the running tasks"
        );
        assert_eq!(rebuilt.deadlines, self.deadlines, "deadline index matches");
        assert_eq!(rebuilt.retention, self.retention, "retention index matches");
        assert_eq!(
            rebuilt.idempotency, self.idempotency,
            "idempotency index matches"
        );
        assert_eq!(rebuilt.coalesce, self.coalesce, "coalesce index matches");

        let mut live_tokens: BTreeSet<Token> = BTreeSet::new();
        let mut seqs = BTreeSet::new();
        let mut by_queue: BTreeMap<&str, Counts> = BTreeMap::new();
        for (id, task) in &self.tasks {
            assert_eq!(*id, task.id);
            assert!(task.id.0 < self.next_task_id);
            assert!(task.max_attempts >= 1);
            assert!(
                task.attempt <= task.max_attempts,
                "task {id} used more attempts than allowed"
            );
            assert!(task.events_len() <= limits::TASK_EVENTS_MAX);
            if let Some(t) = task.last_token() {
                assert!(t <= self.last_token, "task {id} holds a token never issued");
            }
            by_queue.entry(&task.queue).or_default().0[task.state as usize] += 1;
            match task.state {
                TaskState::Running => {
                    let lease = task.lease.as_ref().expect("running task has a lease");
                    assert!(
                        live_tokens.insert(lease.token),
                        "two leases share token {}",
                        lease.token
                    );
                    assert_eq!(task.last_token(), Some(lease.token));
                    assert!(task.attempt >= 1);
                }
                _ => assert!(
                    task.lease.is_none(),
                    "task {id} is {} with a lease",
                    task.state.as_str()
                ),
            }
            if task.state == TaskState::Queued {
                assert!(task.ready_seq >= 1 && task.ready_seq < self.next_ready_seq);
                assert!(seqs.insert(task.ready_seq), "ready order is total");
                assert!(
                    task.attempt < task.max_attempts,
                    "a queued task has an attempt left"
                );
            }
            if task.state == TaskState::Scheduled {
                assert!(
                    task.attempt < task.max_attempts,
                    "a scheduled task has an attempt left"
                );
            }
            assert_eq!(
                task.rare.run_at.is_some(),
                task.state == TaskState::Scheduled,
                "task {id} has a run_at exactly while scheduled"
            );
            assert_eq!(
                task.state.is_finished(),
                task.rare.finished_cluster_ms.is_some()
            );
            if task.state == TaskState::Succeeded {
                assert!(task.rare.result.is_some(), "a succeeded task has a result");
            }
            assert!(task.created_cluster_ms <= self.cluster_ms);
        }
        for (queue, info) in &self.queues {
            let expected = by_queue.get(&**queue).copied().unwrap_or_default();
            assert_eq!(info.counts, expected, "counts of queue {queue}");
            assert_eq!(info.paused, self.paused.contains(&**queue));
            assert!(
                info.paused || info.counts.total() > 0,
                "empty unpaused queue {queue} is dropped"
            );
        }
        assert_eq!(
            self.scheduled.len() + self.delayed.len(),
            self.queues
                .values()
                .map(|q| q.counts.get(TaskState::Scheduled))
                .sum::<u64>() as usize,
            "every scheduled task waits in exactly one of the two schedules"
        );
        assert!(self.queues.len() <= limits::QUEUES_MAX);
        assert!(self.broadcasts.len() <= limits::BROADCASTS_KEPT_MAX);
        assert!(self
            .broadcasts
            .back()
            .is_none_or(|m| m.seq == self.last_broadcast_seq));
    }
}
