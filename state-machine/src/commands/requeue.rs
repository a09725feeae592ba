//! `requeue`: take a task out of the dead-letter set (failed, or expired by a timeout)
//! and queue it again with its attempts reset. Its timeouts count afresh from now.

use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Rejection, Reply};
use crate::task::{EventKind, TaskId, TaskState};

impl StateMachine {
    pub(crate) fn requeue(&mut self, id: TaskId) -> CommandResult {
        let Some(task) = self.tasks.get(&id) else {
            return Err(Rejection::NotFound(id));
        };
        if !matches!(task.state, TaskState::Failed | TaskState::Expired) {
            return Err(Rejection::NotRequeueable {
                task: id,
                state: task.state,
            });
        }
        if let Some(key) = &task.rare.coalesce_key {
            // Its key may belong to a newer unfinished task by now; two unfinished tasks
            // may not share one, so the requeued task gives its key up.
            if self
                .coalesce
                .contains_key(&(task.queue.to_string(), key.clone()))
            {
                self.update(id, |t| t.rare.change(|r| r.coalesce_key = None));
            }
        }
        let (seq, cluster) = (self.alloc_ready_seq(), self.cluster_ms);
        self.update(id, |t| {
            t.state = TaskState::Queued;
            t.attempt = 0;
            t.rare.change(|r| {
                r.cancel_requested = false;
                r.error = None;
                r.finished_wall_ms = None;
                r.finished_cluster_ms = None;
            });
            t.created_cluster_ms = cluster;
            t.ready_cluster_ms = cluster;
            t.ready_seq = seq;
        });
        self.emit(id, EventKind::Requeued);
        Ok(Reply::Requeued)
    }
}
