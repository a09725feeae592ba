use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker: String,
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    #[serde(default = "one")]
    pub max: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// Long-poll up to this long when nothing is ready.
    #[serde(default)]
    pub wait_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_priority: Option<i32>,
}

fn default_queues() -> Vec<String> {
    vec![crate::default_queue()]
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimResponse {
    pub tasks: Vec<ClaimedTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedTask {
    pub id: u64,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub group: Option<String>,
    pub lease: LeaseGrant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseGrant {
    /// The fencing token: send it with every heartbeat, complete, fail and release, and to
    /// any downstream store that should reject stale writers.
    pub token: u64,
    pub lease_ms: u64,
    /// The leader's wall-clock estimate. A worker should count `lease_ms` from when it
    /// sent the claim instead: that deadline always passes first.
    pub expires_at_ms: u64,
}

/// `POST /v1/tasks/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub token: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    pub task: u64,
    pub lease_ms: u64,
    pub expires_at_ms: u64,
    /// The task was cancelled: stop, then fail or release it.
    pub cancel_requested: bool,
}

/// `POST /v1/heartbeat`: every lease of one worker in one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchHeartbeatRequest {
    pub worker: String,
    pub leases: Vec<LeaseBeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeaseBeat {
    pub task: u64,
    pub token: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

/// One lease of `POST /v1/heartbeat`.
pub type HeartbeatItem = crate::ItemResult<HeartbeatResponse>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchHeartbeatResponse {
    // Inline: a generic schema registered once would name one `T` for every batch.
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub results: Vec<HeartbeatItem>,
}

/// `POST /v1/tasks/{id}/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub token: u64,
    #[serde(default)]
    pub result: Value,
    /// Also claim for this worker, only if the completion holds, in the same Raft command:
    /// a busy worker's next task without another round trip. Its `wait_ms` long-polls
    /// after the completion when nothing is ready (the completion is never held back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<ClaimRequest>,
}

/// `POST /v1/complete`: several completions in one request (a worker that claimed many),
/// each with its own result, in order. Every item is idempotent like a single complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteRequest {
    pub items: Vec<CompleteItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteItem {
    pub task: u64,
    pub token: u64,
    #[serde(default)]
    pub result: Value,
}

/// One item of `POST /v1/complete`.
pub type CompleteItemResult = crate::ItemResult<crate::StateResponse>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchCompleteResponse {
    // Inline: a generic schema registered once would name one `T` for every batch.
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub results: Vec<CompleteItemResult>,
}

/// `POST /v1/tasks/{id}/fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub token: u64,
    pub error: String,
    /// A snake_case code for the failure; `handler_error` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default = "yes")]
    pub retryable: bool,
    /// Overrides the task's backoff for this retry; like it, runs on cluster time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// `POST /v1/tasks/{id}/release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub token: u64,
    /// Ready again after this much cluster time.
    #[serde(default)]
    pub delay_ms: u64,
}
