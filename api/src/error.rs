use serde::{Deserialize, Serialize};

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_request`, `lease_lost`, `no_leader`,
    /// `indeterminate`; every one is listed in [`crate::ErrorCode`].
    #[cfg_attr(feature = "openapi", schema(value_type = crate::ErrorCode))]
    pub code: String,
    pub message: String,
    /// On `not_leader` redirects and `no_leader`/`indeterminate`: the leader, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
}

impl ErrorDetail {
    /// The code as a listed [`crate::ErrorCode`]; `None` for a code this build does not
    /// know (from a newer server).
    pub fn kind(&self) -> Option<crate::ErrorCode> {
        crate::ErrorCode::parse(&self.code)
    }
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

/// Codes clients branch on (the full list is [`crate::ErrorCode`]).
pub mod codes {
    use crate::ErrorCode;

    pub const INVALID_REQUEST: &str = ErrorCode::InvalidRequest.as_str();
    pub const NOT_FOUND: &str = ErrorCode::NotFound.as_str();
    pub const LEASE_LOST: &str = ErrorCode::LeaseLost.as_str();
    pub const TASK_FINISHED: &str = ErrorCode::TaskFinished.as_str();
    pub const PAYLOAD_TOO_LARGE: &str = ErrorCode::PayloadTooLarge.as_str();
    pub const NOT_LEADER: &str = ErrorCode::NotLeader.as_str();
    pub const NO_LEADER: &str = ErrorCode::NoLeader.as_str();
    /// The node leads but cannot reach a quorum; nothing was written: try another node.
    pub const NO_QUORUM: &str = ErrorCode::NoQuorum.as_str();
    pub const STORAGE_FULL: &str = ErrorCode::StorageFull.as_str();
    /// The write may or may not have been committed: treat the outcome as unknown.
    pub const INDETERMINATE: &str = ErrorCode::Indeterminate.as_str();
    pub const UNAVAILABLE: &str = ErrorCode::Unavailable.as_str();
    pub const REFUSED: &str = ErrorCode::Refused.as_str();
    pub const METHOD_NOT_ALLOWED: &str = ErrorCode::MethodNotAllowed.as_str();
    pub const UNAUTHORIZED: &str = ErrorCode::Unauthorized.as_str();
    pub const FORBIDDEN: &str = ErrorCode::Forbidden.as_str();
}
