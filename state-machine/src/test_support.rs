//! Helpers for unit tests inside the crate.

use crate::command::{Entry, NewTask};
use crate::machine::StateMachine;
use crate::task::{Task, TaskId};

/// A fresh task with one enqueue, taken from a real state machine.
pub(crate) fn task(id: u64) -> Task {
    let mut sm = StateMachine::default();
    let entry = Entry {
        wall_ms: 1,
        cluster_ms: 1,
        commands: vec![crate::Command::Enqueue {
            tasks: vec![NewTask {
                queue: "q".into(),
                kind: "k".into(),
                payload: "{}".into(),
                ..Default::default()
            }],
        }],
    };
    sm.apply(1, &entry);
    let mut t = sm.task(TaskId(1)).expect("enqueued").clone();
    t.id = TaskId(id);
    t
}
