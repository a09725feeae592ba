use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/tasks` and each item of `POST /v1/tasks/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    #[serde(default = "default_queue")]
    pub queue: String,
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
    /// Higher runs first; FIFO within a priority.
    #[serde(default)]
    pub priority: i32,
    /// A retried enqueue with the same key returns the first task. Clients should always
    /// send one, so a retry after a timeout never creates a second task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// While an unfinished task in the queue has this key, this enqueue joins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce_key: Option<String>,
    /// Not before this wall time. The only wait that follows the wall clock: a leader
    /// whose clock is wrong may start it early or late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at_ms: Option<u64>,
    /// Not before this much cluster time from now (ignored with `run_at_ms`); a wall clock
    /// jump neither stretches nor shortens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_to_close_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_close_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

pub fn default_queue() -> String {
    "default".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    pub initial_ms: u64,
    /// e.g. 2.0 doubles the delay each attempt.
    pub multiplier: f64,
    pub max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnqueueResponse {
    pub id: u64,
    pub created: bool,
    #[serde(default)]
    pub coalesced: bool,
    pub state: crate::TaskState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchEnqueueRequest {
    pub tasks: Vec<EnqueueRequest>,
}

/// One item of a batch answer: its result, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ItemResult<T> {
    Ok(T),
    Err(crate::ErrorBody),
}

/// One enqueued task of `POST /v1/tasks/batch`.
pub type BatchItem = ItemResult<EnqueueResponse>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchEnqueueResponse {
    // Inline: a generic schema registered once would name one `T` for every batch.
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub results: Vec<BatchItem>,
}

/// `GET /v1/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskView {
    pub id: u64,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    /// scheduled, queued, running, succeeded, failed, cancelled, expired
    pub state: crate::TaskState,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease: Option<LeaseView>,
    pub cancel_requested: bool,
    pub result: Option<Value>,
    pub error: Option<TaskErrorView>,
    pub progress: Option<Value>,
    pub group: Option<String>,
    pub idempotency_key: Option<String>,
    pub coalesce_key: Option<String>,
    /// Enqueues that joined this task through its coalesce key.
    pub joined: u32,
    pub created_at_ms: u64,
    /// While scheduled: when it becomes ready. For a relative delay (enqueue `delay_ms`,
    /// retry backoff, `retry_after_ms`, release `delay_ms`), which runs on cluster time,
    /// the answering node's wall-clock estimate.
    pub run_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseView {
    pub worker: String,
    pub token: u64,
    pub lease_ms: u64,
    /// The leader's estimate in wall time; the lease itself runs on cluster time.
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskErrorView {
    pub code: String,
    pub message: String,
}

/// `GET /v1/tasks/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    pub task: u64,
    pub queue: String,
    /// The task's state after the event: on live streams (`/v1/events`). Absent in a
    /// task's stored history, which keeps events, not states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::TaskState>,
    /// enqueued, joined, scheduled, claimed, progress, released, attempt_failed,
    /// succeeded, failed, cancel_requested, cancelled, expired, requeued
    pub event: crate::EventName,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskErrorView>,
    /// On `scheduled`: when the task becomes ready (for a relative delay, an estimate:
    /// the wall time it was scheduled at plus the delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventsResponse {
    pub events: Vec<EventView>,
    /// Older events dropped to keep the history bounded.
    pub dropped: u64,
}

/// `GET /v1/tasks?queue=&state=&limit=&after=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskListResponse {
    pub tasks: Vec<TaskView>,
    /// Pass as `after` to continue; absent at the end.
    pub next: Option<u64>,
}

/// Reply of cancel, requeue, complete, fail and release: the task's state afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateResponse {
    pub id: u64,
    pub state: crate::TaskState,
    /// complete only: the task had already succeeded with this token (a retry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// complete with `next` only: the tasks claimed after the completion (possibly none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Vec<crate::ClaimedTask>>,
}

/// `GET /v1/queues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuesResponse {
    pub queues: Vec<QueueView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueView {
    pub name: String,
    pub paused: bool,
    /// Tasks by state name, every state listed.
    pub counts: std::collections::BTreeMap<crate::TaskState, u64>,
    /// The wall-clock estimate of when the longest-waiting queued task became ready
    /// (absent when nothing is queued, and from older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_queued_at_ms: Option<u64>,
}

/// `POST /v1/broadcast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    #[serde(default = "default_channel")]
    pub channel: String,
    pub message: Value,
}

pub fn default_channel() -> String {
    "all".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BroadcastView {
    pub seq: u64,
    pub channel: String,
    pub message: Value,
    pub at_ms: u64,
}

/// Answer of `POST /v1/broadcast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BroadcastResponse {
    pub seq: u64,
}

/// `GET /v1/rates`: lifecycle counts per queue in fixed buckets, from the answering
/// node's applied log (every node applies the same entries; a node's history starts
/// when it started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatesResponse {
    pub bucket_ms: u64,
    /// Wall-clock end of the newest bucket (ms since the Unix epoch).
    pub end_at_ms: u64,
    pub queues: Vec<QueueRates>,
}

/// Counts per bucket, oldest first; every list has the same length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueRates {
    pub name: String,
    pub enqueued: Vec<u64>,
    pub succeeded: Vec<u64>,
    pub failed: Vec<u64>,
}
