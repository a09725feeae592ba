//! Producers' endpoints: enqueue (one or a batch), read a task (optionally waiting for its
//! result), its event history, and paged lists.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use taskswarm_api as api;
use taskswarm_state_machine::{ListFilter, TaskId};

use super::convert;
use super::error::{rejection_body, ApiError};
use super::extract::Body;
use super::params::{path_id, query, read_gate, wait_deadline, wait_for, ReadParams};
use super::propose;
use super::stream;
use crate::raft::Node;

#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = api::EnqueueRequest, responses((status = 201, description = "Created", body = api::EnqueueResponse), (status = 200, description = "An enqueue with this idempotency key (or coalesce key) already exists: its task", body = api::EnqueueResponse)))]
pub async fn enqueue(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::EnqueueRequest>,
) -> Result<(StatusCode, Json<api::EnqueueResponse>), ApiError> {
    let mut results = propose::enqueue(&node, vec![convert::new_task(req)]).await??;
    let result = results.pop().expect("one result per task")?;
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(convert::enqueued(&result))))
}

#[utoipa::path(post, path = "/v1/tasks/batch", tag = "tasks", request_body = api::BatchEnqueueRequest, responses((status = 200, description = "One result or error per task, in order", body = api::BatchEnqueueResponse)))]
pub async fn enqueue_batch(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::BatchEnqueueRequest>,
) -> Result<Json<api::BatchEnqueueResponse>, ApiError> {
    let tasks = req.tasks.into_iter().map(convert::new_task).collect();
    let results = propose::enqueue(&node, tasks).await??;
    let results = results
        .iter()
        .map(|r| match r {
            Ok(e) => api::BatchItem::Ok(convert::enqueued(e)),
            Err(rejection) => api::BatchItem::Err(rejection_body(rejection)),
        })
        .collect();
    Ok(Json(api::BatchEnqueueResponse { results }))
}

/// `GET /v1/tasks/{id}?wait_ms=N`: with `wait_ms`, holds the request until the task is
/// finished or the time passes (taskdist's `await put(task)`).
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks", params(("id" = u64, Path, description = "Task id"), ReadParams), responses((status = 200, body = api::TaskView)))]
pub async fn get(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Json<api::TaskView>, ApiError> {
    let id = TaskId(path_id(id)?);
    let params = query(params)?;
    let deadline = wait_deadline(params.wait_ms)?;
    read_gate(&node, params.consistency.as_deref()).await?;
    wait_for(&node, deadline, |sm| {
        sm.task(id).is_none_or(|t| t.state.is_finished())
    })
    .await;
    let clock = node.clock_ref();
    let state = node.state();
    let task = state
        .task(id)
        .ok_or_else(|| ApiError::NotFound(format!("task {id} not found")))?;
    Ok(Json(convert::task(&clock, task)))
}

/// `GET /v1/tasks/{id}/events`: the history as JSON, or with `Accept: text/event-stream`
/// the history then live events.
#[utoipa::path(get, path = "/v1/tasks/{id}/events", tag = "events", params(("id" = u64, Path, description = "Task id"), ReadParams), responses((status = 200, description = "The history as JSON; with `Accept: text/event-stream`, the history then live events as server-sent events, one EventView (JSON) per `data:`, `id:` counting the task's events from 1 (resume with `Last-Event-ID`); the stream ends when the task is finished", content((api::EventsResponse = "application/json"), (api::EventView = "text/event-stream")))))]
pub async fn events(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    id: Result<Path<u64>, PathRejection>,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    if stream::wants_stream(&headers) {
        return stream::task_events_route(node, id, &headers).await;
    }
    let id = TaskId(path_id(id)?);
    let params = query(params)?;
    read_gate(&node, params.consistency.as_deref()).await?;
    let state = node.state();
    let task = state
        .task(id)
        .ok_or_else(|| ApiError::NotFound(format!("task {id} not found")))?;
    let events = task
        .events()
        .map(|e| convert::event(id, &task.queue, task.rare.group.as_deref(), None, &e))
        .collect();
    Ok(Json(api::EventsResponse {
        events,
        dropped: task.rare.events_dropped,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    queue: Option<String>,
    state: Option<api::TaskState>,
    kind: Option<String>,
    group: Option<String>,
    /// Tasks per page (default 100, at most 1000). A page may hold fewer when the scan
    /// limit is reached: continue from `next`.
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<u64>,
    /// `linearizable` (default) or `local`.
    consistency: Option<String>,
}

/// Tasks listed by default per page.
pub const LIST_LIMIT_DEFAULT: usize = 100;

#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(ListParams), responses((status = 200, body = api::TaskListResponse)))]
pub async fn list(
    State(node): State<Arc<Node>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<api::TaskListResponse>, ApiError> {
    let p = query(params)?;
    let state_filter = p.state.map(convert::state_from_wire);
    read_gate(&node, p.consistency.as_deref()).await?;
    let clock = node.clock_ref();
    let sm = node.state();
    let page = sm.list(&ListFilter {
        queue: p.queue.as_deref(),
        state: state_filter,
        kind: p.kind.as_deref(),
        group: p.group.as_deref(),
        after: p.after.map(TaskId),
        limit: p.limit.unwrap_or(LIST_LIMIT_DEFAULT),
    });
    Ok(Json(api::TaskListResponse {
        tasks: page
            .tasks
            .iter()
            .map(|t| convert::task(&clock, t))
            .collect(),
        next: page.next.map(|t| t.0),
    }))
}
