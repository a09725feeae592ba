//! `cancel`: a waiting task is cancelled at once; a running one is marked
//! `cancel_requested`, which its worker learns on the next heartbeat. It becomes
//! `cancelled` when the worker fails or releases it, or when its lease ends. A worker that
//! completes anyway wins: the work was done.

use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Rejection, Reply};
use crate::task::{error_code, EventKind, TaskError, TaskId, TaskState};

impl StateMachine {
    pub(crate) fn cancel(&mut self, id: TaskId) -> CommandResult {
        if !self.tasks.contains_key(&id) {
            return Err(Rejection::NotFound(id));
        }
        self.fire_overdue(id);
        let task = &self.tasks[&id];
        match task.state {
            state if state.is_finished() => Err(Rejection::TaskFinished { task: id, state }),
            TaskState::Running => {
                if !task.rare.cancel_requested {
                    self.update(id, |t| t.rare.change(|r| r.cancel_requested = true));
                    self.emit(id, EventKind::CancelRequested);
                }
                Ok(Reply::CancelRecorded {
                    state: TaskState::Running,
                })
            }
            TaskState::Queued | TaskState::Scheduled => {
                self.finish(
                    id,
                    TaskState::Cancelled,
                    Some(TaskError::new(
                        error_code::CANCELLED,
                        "cancelled before it ran",
                    )),
                );
                self.emit(id, EventKind::Cancelled);
                Ok(Reply::CancelRecorded {
                    state: TaskState::Cancelled,
                })
            }
            _ => unreachable!("all states are covered above"),
        }
    }
}
