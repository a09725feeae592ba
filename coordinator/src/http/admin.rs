//! Operators' endpoints: cancel, requeue from the dead-letter set, queue counts, pause and
//! resume, broadcast.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use taskswarm_api as api;
use taskswarm_state_machine::TaskId;

use super::convert;
use super::error::ApiError;
use super::extract::Body;
use super::params::{path_id, query, read_gate, ReadParams};
use super::propose;
use super::stream;
use crate::raft::Node;

#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks", params(("id" = u64, Path, description = "Task id")), responses((status = 200, description = "Cancelled, or for a running task: cancel requested (told on its next heartbeat)", body = api::StateResponse)))]
pub async fn cancel(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let state = propose::cancel(&node, TaskId(id)).await??;
    Ok(Json(api::StateResponse {
        id,
        state: convert::state(state),
        duplicate: false,
        next: None,
    }))
}

#[utoipa::path(post, path = "/v1/tasks/{id}/requeue", tag = "tasks", params(("id" = u64, Path, description = "Task id")), responses((status = 200, body = api::StateResponse), (status = 409, description = "`not_requeueable`: only failed and expired tasks are", body = api::ErrorBody)))]
pub async fn requeue(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    propose::requeue(&node, TaskId(id)).await??;
    Ok(Json(api::StateResponse {
        id,
        state: api::TaskState::Queued,
        duplicate: false,
        next: None,
    }))
}

#[utoipa::path(get, path = "/v1/queues", tag = "queues", params(ReadParams), responses((status = 200, body = api::QueuesResponse)))]
pub async fn queues(
    State(node): State<Arc<Node>>,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Json<api::QueuesResponse>, ApiError> {
    let params = query(params)?;
    read_gate(&node, params.consistency.as_deref()).await?;
    let clock = node.clock_ref();
    let sm = node.state();
    let queues = sm
        .queues()
        .map(|(name, info)| {
            let oldest = sm
                .oldest_ready_cluster_ms(name)
                .map(|ms| clock.to_wall_ms(ms));
            convert::queue(name, info.paused, &info.counts, oldest)
        })
        .collect();
    Ok(Json(api::QueuesResponse { queues }))
}

#[utoipa::path(post, path = "/v1/queues/{queue}/pause", tag = "queues", params(("queue" = String, Path, description = "Queue name")), responses((status = 200, body = api::QueueView)))]
pub async fn pause(
    State(node): State<Arc<Node>>,
    queue: Result<Path<String>, PathRejection>,
) -> Result<Json<api::QueueView>, ApiError> {
    set_paused(node, queue_name(queue)?, true).await
}

#[utoipa::path(post, path = "/v1/queues/{queue}/resume", tag = "queues", params(("queue" = String, Path, description = "Queue name")), responses((status = 200, body = api::QueueView)))]
pub async fn resume(
    State(node): State<Arc<Node>>,
    queue: Result<Path<String>, PathRejection>,
) -> Result<Json<api::QueueView>, ApiError> {
    set_paused(node, queue_name(queue)?, false).await
}

fn queue_name(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("bad queue name: {}", e.body_text())))
}

async fn set_paused(
    node: Arc<Node>,
    queue: String,
    paused: bool,
) -> Result<Json<api::QueueView>, ApiError> {
    propose::set_paused(&node, queue.clone(), paused).await??;
    let clock = node.clock_ref();
    let sm = node.state();
    let counts = sm.queue(&queue).map(|q| q.counts).unwrap_or_default();
    let oldest = sm
        .oldest_ready_cluster_ms(&queue)
        .map(|ms| clock.to_wall_ms(ms));
    Ok(Json(convert::queue(&queue, paused, &counts, oldest)))
}

#[utoipa::path(post, path = "/v1/broadcast", tag = "events", request_body = api::BroadcastRequest, responses((status = 200, body = api::BroadcastResponse)))]
pub async fn broadcast(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::BroadcastRequest>,
) -> Result<Json<api::BroadcastResponse>, ApiError> {
    let seq = propose::broadcast(&node, req.channel, convert::json_text(&req.message)).await??;
    Ok(Json(api::BroadcastResponse { seq }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BroadcastParams {
    /// Messages with a higher sequence number (default 0: all retained).
    #[serde(default)]
    after: u64,
    /// `linearizable` (default) or `local`.
    consistency: Option<String>,
}

/// `GET /v1/broadcast?after=SEQ`: retained messages after a sequence number.
/// With `Accept: text/event-stream`, a live stream instead.
#[utoipa::path(get, path = "/v1/broadcast", tag = "events", params(BroadcastParams), responses((status = 200, description = "Retained messages after `after`; with `Accept: text/event-stream`, a live stream of BroadcastView (JSON) per `data:`, `id:` the sequence number (resume with `Last-Event-ID`)", content((Vec<api::BroadcastView> = "application/json"), (api::BroadcastView = "text/event-stream")))))]
pub async fn broadcasts(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    params: Result<Query<BroadcastParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    if stream::wants_stream(&headers) {
        return Ok(stream::broadcasts(
            node,
            stream::resume_point(&headers, p.after),
        ));
    }
    read_gate(&node, p.consistency.as_deref()).await?;
    let sm = node.state();
    Ok(Json(
        sm.broadcasts_after(p.after)
            .map(convert::broadcast)
            .collect::<Vec<_>>(),
    )
    .into_response())
}
