//! `complete`: the attempt holding the lease succeeded; store its result.
//!
//! A retried complete (same token, task already succeeded with it) is acknowledged again
//! without change, so a client that timed out waiting can safely send it twice.

use crate::command::Claim;
use crate::limits;
use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Rejection, Reply};
use crate::task::{EventKind, TaskId, TaskState, Token};
use crate::validate;

impl StateMachine {
    pub(crate) fn complete(&mut self, id: TaskId, token: Token, result: &str) -> CommandResult {
        validate::blob("result", result, limits::PAYLOAD_BYTES_MAX)?;
        match self.check_lease(id, token) {
            Ok(()) => {}
            Err(Rejection::TaskFinished {
                state: TaskState::Succeeded,
                ..
            }) => {
                return Ok(Reply::Completed { duplicate: true });
            }
            Err(e) => return Err(e),
        }
        self.update(id, |t| {
            t.rare.change(|r| r.result = Some(result.to_owned()))
        });
        self.finish(id, TaskState::Succeeded, None);
        self.emit(id, EventKind::Succeeded { token });
        Ok(Reply::Completed { duplicate: false })
    }

    /// `complete`, then `claim` only if the completion held (a duplicate complete holds
    /// too: the worker's first answer was lost, and it still wants work). The claim is
    /// validated first, so a refusal of either part changes nothing.
    pub(crate) fn complete_and_claim(
        &mut self,
        id: TaskId,
        token: Token,
        result: &str,
        next: &Claim,
    ) -> CommandResult {
        super::claim::validate_claim(next)?;
        let Reply::Completed { duplicate } = self.complete(id, token, result)? else {
            unreachable!("complete replies Completed")
        };
        let Reply::Claimed(tasks) = self.claim(next)? else {
            unreachable!("claim replies Claimed")
        };
        Ok(Reply::CompletedAndClaimed { duplicate, tasks })
    }
}
