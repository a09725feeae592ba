//! `release`: give a task back without using an attempt (a worker that cannot take it
//! now: shutting down, missing a resource, taskdist's "reject"). With a cancel pending,
//! a release acknowledges the cancel instead.

use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Reply};
use crate::task::{error_code, EventKind, TaskError, TaskId, TaskState, Token};
use crate::validate;

impl StateMachine {
    pub(crate) fn release(&mut self, id: TaskId, token: Token, delay_ms: u64) -> CommandResult {
        validate::duration_ms("delay_ms", delay_ms)?;
        self.check_lease(id, token)?;
        self.emit(id, EventKind::Released { token });
        if self.tasks[&id].rare.cancel_requested {
            self.finish(
                id,
                TaskState::Cancelled,
                Some(TaskError::new(
                    error_code::CANCELLED,
                    "cancelled while running",
                )),
            );
            self.emit(id, EventKind::Cancelled);
        } else {
            self.update(id, |t| {
                assert!(t.attempt > 0, "a running task used an attempt");
                t.attempt -= 1;
            });
            self.make_ready(id, delay_ms);
        }
        Ok(Reply::Released {
            state: self.tasks[&id].state,
        })
    }
}
