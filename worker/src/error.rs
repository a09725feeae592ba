use std::time::Duration;

/// Why a client call did not return a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The cluster refused the request; nothing changed. `code` is the API's error code
    /// (`invalid_request`, `lease_lost`, `not_found`, ...).
    #[error("{code}: {message} (HTTP {status})")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The request may or may not have taken effect (a write timed out, or its leader
    /// stepped down). Read the task, or retry an idempotent request, to find out.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    /// No node could take the request within the retry budget; nothing was written.
    #[error("unavailable after {elapsed:?}: {message}")]
    Unavailable { elapsed: Duration, message: String },
    /// The server answered something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The caller passed something unusable (no servers, a bad URL).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The API error code of a rejection, if this is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the cluster said the lease is gone: stop working on the task.
    pub fn is_lease_lost(&self) -> bool {
        self.code() == Some(taskswarm_api::codes::LEASE_LOST)
    }
}
