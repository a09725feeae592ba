//! `fail`: the attempt holding the lease failed. Retried with backoff while attempts
//! remain and the error is retryable, else dead-lettered (`failed`).

use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Reply};
use crate::task::{error_code, TaskError, TaskId, Token};
use crate::{limits, validate};

impl StateMachine {
    pub(crate) fn fail(
        &mut self,
        id: TaskId,
        token: Token,
        code: Option<&str>,
        message: &str,
        retryable: bool,
        retry_after_ms: Option<u64>,
    ) -> CommandResult {
        if let Some(code) = code {
            validate::name("code", code)?;
        }
        validate::blob("error", message, limits::PAYLOAD_BYTES_MAX)?;
        if let Some(ms) = retry_after_ms {
            validate::duration_ms("retry_after_ms", ms)?;
        }
        self.check_lease(id, token)?;
        let error = TaskError::new(code.unwrap_or(error_code::HANDLER_ERROR), message);
        let state = self.attempt_failed(id, error, retryable, retry_after_ms);
        Ok(Reply::FailRecorded { state })
    }
}
