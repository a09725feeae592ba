//! Workers' endpoints: claim (long-polling), heartbeat (one lease or all of a worker's),
//! complete, fail, release. Every lease operation carries the fencing token.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use taskswarm_api as api;
use taskswarm_state_machine::{Claim, ClaimedTask, LeaseBeat, TaskId, Token};

use super::convert;
use super::error::{rejection_body, ApiError};
use super::extract::Body;
use super::params::{path_id, wait_deadline, wait_ready};
use super::propose;
use crate::raft::{Leadership, Node, ProposeError};

/// How often a waiting claim re-checks that this node still leads.
pub const CLAIM_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// `POST /v1/claim`: takes ready tasks now, or waits up to `wait_ms` for some. A claim is
/// proposed only when the leader's state shows something to take, so an idle worker
/// fleet does not fill the log with empty claims.
#[utoipa::path(post, path = "/v1/claim", tag = "workers", request_body = api::ClaimRequest, responses((status = 200, description = "The tasks leased (possibly none after `wait_ms`)", body = api::ClaimResponse)))]
pub async fn claim(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::ClaimRequest>,
) -> Result<Json<api::ClaimResponse>, ApiError> {
    let claim = convert::claim(&req);
    claim.validate()?;
    let deadline = wait_deadline(Some(req.wait_ms))?;
    let tasks = claim_until(&node, &claim, deadline).await?;
    Ok(Json(api::ClaimResponse { tasks }))
}

/// Claims as soon as something is claimable, until `deadline`; no tasks at the deadline.
async fn claim_until(
    node: &Node,
    claim: &Claim,
    deadline: tokio::time::Instant,
) -> Result<Vec<api::ClaimedTask>, ApiError> {
    loop {
        // One leadership and quorum check per round: `propose` makes it when there is
        // something to claim; before a wait it is made here, so that a follower or a
        // cut-off leader never holds a worker's long poll (it can hand out nothing).
        if node.state().claimable(claim) {
            let tasks = propose::claim(node, claim.clone()).await??;
            if !tasks.is_empty() {
                return Ok(claimed(node, &tasks));
            }
        } else {
            if let Leadership::Follower { leader } = node.leadership() {
                return Err(ProposeError::NotLeader { leader }.into());
            }
            node.check_quorum()?;
        }
        // Wait in slices so a node that stops leading redirects the worker instead of
        // holding it until `wait_ms` runs out.
        let slice_end = deadline.min(tokio::time::Instant::now() + CLAIM_RECHECK);
        if !wait_ready(node, slice_end, |sm| sm.claimable(claim)).await
            && (slice_end >= deadline || node.is_stopping())
        {
            return Ok(Vec::new());
        }
    }
}

fn claimed(node: &Node, tasks: &[ClaimedTask]) -> Vec<api::ClaimedTask> {
    let clock = node.clock_ref();
    tasks.iter().map(|t| convert::claimed(&clock, t)).collect()
}

#[utoipa::path(post, path = "/v1/tasks/{id}/heartbeat", tag = "workers", params(("id" = u64, Path, description = "Task id")), request_body = api::HeartbeatRequest, responses((status = 200, body = api::HeartbeatResponse), (status = 409, description = "`lease_lost` (stale token) or `task_finished`", body = api::ErrorBody)))]
pub async fn heartbeat(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::HeartbeatRequest>,
) -> Result<Json<api::HeartbeatResponse>, ApiError> {
    let beat = convert::lease_beat(&api::LeaseBeat {
        task: path_id(id)?,
        token: req.token,
        progress: req.progress,
        lease_ms: req.lease_ms,
    });
    // The single-lease form names no worker; the state machine checks the token only.
    let mut acks = propose::heartbeat(&node, "-".into(), vec![beat]).await??;
    let ack = acks.pop().expect("one result per lease")?;
    Ok(Json(convert::heartbeat_ack(&node.clock_ref(), &ack)))
}

#[utoipa::path(post, path = "/v1/heartbeat", tag = "workers", request_body = api::BatchHeartbeatRequest, responses((status = 200, description = "One result or error per lease, in order", body = api::BatchHeartbeatResponse)))]
pub async fn heartbeat_batch(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::BatchHeartbeatRequest>,
) -> Result<Json<api::BatchHeartbeatResponse>, ApiError> {
    let leases: Vec<LeaseBeat> = req.leases.iter().map(convert::lease_beat).collect();
    let acks = propose::heartbeat(&node, req.worker, leases).await??;
    let clock = node.clock_ref();
    let results = acks
        .iter()
        .map(|r| match r {
            Ok(ack) => api::HeartbeatItem::Ok(convert::heartbeat_ack(&clock, ack)),
            Err(rejection) => api::HeartbeatItem::Err(rejection_body(rejection)),
        })
        .collect();
    Ok(Json(api::BatchHeartbeatResponse { results }))
}

/// `POST /v1/tasks/{id}/complete`, with `next`: complete and claim in one command (the
/// claim only if the completion holds). When that claim finds nothing and `next.wait_ms`
/// allows, it long-polls afterwards; a failure of that wait answers no tasks rather than
/// an error, because the completion already happened and must be reported as such.
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "workers", params(("id" = u64, Path, description = "Task id")), request_body = api::CompleteRequest, responses((status = 200, body = api::StateResponse), (status = 409, description = "`lease_lost` (stale token) or `task_finished`", body = api::ErrorBody)))]
pub async fn complete(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::CompleteRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let (task, token, result) = (
        TaskId(id),
        Token(req.token),
        convert::json_text(&req.result),
    );
    let Some(next_req) = req.next else {
        let duplicate = propose::complete(&node, task, token, result).await??;
        return Ok(Json(succeeded(id, duplicate, None)));
    };
    let next = convert::claim(&next_req);
    next.validate()?;
    let deadline = wait_deadline(Some(next_req.wait_ms))?;
    let (duplicate, tasks) =
        propose::complete_and_claim(&node, task, token, result, next.clone()).await??;
    let mut tasks = claimed(&node, &tasks);
    if tasks.is_empty() && next_req.wait_ms > 0 {
        tasks = claim_until(&node, &next, deadline)
            .await
            .unwrap_or_default();
    }
    Ok(Json(succeeded(id, duplicate, Some(tasks))))
}

/// Most completions in one `POST /v1/complete`.
pub const COMPLETE_BATCH_MAX: usize = 1_024;

/// `POST /v1/complete`: each item proposed as its own command (group commit carries them
/// in one entry or a few), answered in order. A refusal is that item's answer; a failure
/// to propose (leadership lost, outcome unknown) answers the whole request, which the
/// client may retry as a whole: a complete repeated with its token is acknowledged as a
/// duplicate.
#[utoipa::path(post, path = "/v1/complete", tag = "workers", request_body = api::BatchCompleteRequest, responses((status = 200, description = "One result or error per completion, in order", body = api::BatchCompleteResponse)))]
pub async fn complete_batch(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::BatchCompleteRequest>,
) -> Result<Json<api::BatchCompleteResponse>, ApiError> {
    if req.items.is_empty() || req.items.len() > COMPLETE_BATCH_MAX {
        return Err(ApiError::BadRequest(format!(
            "items must hold 1..={COMPLETE_BATCH_MAX} completions, not {}",
            req.items.len()
        )));
    }
    // Redirect before proposing anything in the usual case.
    if let Leadership::Follower { leader } = node.leadership() {
        return Err(ProposeError::NotLeader { leader }.into());
    }
    let proposals = req.items.iter().map(|item| {
        propose::complete(
            &node,
            TaskId(item.task),
            Token(item.token),
            convert::json_text(&item.result),
        )
    });
    let answers = futures::future::join_all(proposals).await;
    let mut results = Vec::with_capacity(answers.len());
    for (item, answer) in req.items.iter().zip(answers) {
        results.push(match answer? {
            Ok(duplicate) => api::CompleteItemResult::Ok(succeeded(item.task, duplicate, None)),
            Err(rejection) => api::CompleteItemResult::Err(rejection_body(&rejection)),
        });
    }
    Ok(Json(api::BatchCompleteResponse { results }))
}

fn succeeded(id: u64, duplicate: bool, next: Option<Vec<api::ClaimedTask>>) -> api::StateResponse {
    api::StateResponse {
        id,
        state: api::TaskState::Succeeded,
        duplicate,
        next,
    }
}

#[utoipa::path(post, path = "/v1/tasks/{id}/fail", tag = "workers", params(("id" = u64, Path, description = "Task id")), request_body = api::FailRequest, responses((status = 200, body = api::StateResponse), (status = 409, description = "`lease_lost` (stale token) or `task_finished`", body = api::ErrorBody)))]
pub async fn fail(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::FailRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let failure = propose::Failure {
        code: req.code,
        message: req.error,
        retryable: req.retryable,
        retry_after_ms: req.retry_after_ms,
    };
    let state = propose::fail(&node, TaskId(id), Token(req.token), failure).await??;
    Ok(Json(api::StateResponse {
        id,
        state: convert::state(state),
        duplicate: false,
        next: None,
    }))
}

#[utoipa::path(post, path = "/v1/tasks/{id}/release", tag = "workers", params(("id" = u64, Path, description = "Task id")), request_body = api::ReleaseRequest, responses((status = 200, body = api::StateResponse), (status = 409, description = "`lease_lost` (stale token) or `task_finished`", body = api::ErrorBody)))]
pub async fn release(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::ReleaseRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let state = propose::release(&node, TaskId(id), Token(req.token), req.delay_ms).await??;
    Ok(Json(api::StateResponse {
        id,
        state: convert::state(state),
        duplicate: false,
        next: None,
    }))
}
