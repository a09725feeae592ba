use serde::{Deserialize, Serialize};

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_request`, `lease_lost`, `no_leader`,
    /// `indeterminate`.
    pub code: String,
    pub message: String,
    /// On `not_leader` redirects and `no_leader`/`indeterminate`: the leader, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                leader_id: None,
                leader_addr: None,
            },
        }
    }
}

/// Codes clients branch on.
pub mod codes {
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const NOT_FOUND: &str = "not_found";
    pub const LEASE_LOST: &str = "lease_lost";
    pub const TASK_FINISHED: &str = "task_finished";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const NOT_LEADER: &str = "not_leader";
    pub const NO_LEADER: &str = "no_leader";
    /// The node leads but cannot reach a quorum; nothing was written: try another node.
    pub const NO_QUORUM: &str = "no_quorum";
    /// The write may or may not have been committed: treat the outcome as unknown.
    pub const INDETERMINATE: &str = "indeterminate";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
}
