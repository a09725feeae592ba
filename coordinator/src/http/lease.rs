//! Workers' endpoints: claim (long-polling), heartbeat (one lease or all of a worker's),
//! complete, fail, release. Every lease operation carries the fencing token.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use taskswarm_api as api;
use taskswarm_state_machine::{Command, LeaseBeat, Reply, TaskId, Token};

use super::convert;
use super::error::{rejection_body, ApiError};
use super::extract::Body;
use super::params::{path_id, wait_deadline, wait_ready};
use crate::raft::{Leadership, Node, ProposeError};

/// How often a waiting claim re-checks that this node still leads.
pub const CLAIM_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// `POST /v1/claim`: takes ready tasks now, or waits up to `wait_ms` for some. A claim is
/// proposed only when the leader's state shows something to take, so an idle worker
/// fleet does not fill the log with empty claims.
pub async fn claim(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::ClaimRequest>,
) -> Result<Json<api::ClaimResponse>, ApiError> {
    let claim = convert::claim(&req);
    claim.validate()?;
    let deadline = wait_deadline(Some(req.wait_ms))?;
    loop {
        if let Leadership::Follower { leader } = node.leadership() {
            return Err(ProposeError::NotLeader { leader }.into());
        }
        // A cut-off leader must not hold a worker's long poll: it can hand out nothing.
        node.check_quorum()?;
        if node.state().claimable(&claim) {
            let Reply::Claimed(tasks) = node.propose(Command::Claim(claim.clone())).await?? else {
                unreachable!("claim replies Claimed")
            };
            if !tasks.is_empty() {
                let clock = node.clock_ref();
                return Ok(Json(api::ClaimResponse {
                    tasks: tasks.iter().map(|t| convert::claimed(&clock, t)).collect(),
                }));
            }
        }
        // Wait in slices so a node that stops leading redirects the worker instead of
        // holding it until `wait_ms` runs out.
        let slice_end = deadline.min(tokio::time::Instant::now() + CLAIM_RECHECK);
        if !wait_ready(&node, slice_end, |sm| sm.claimable(&claim)).await && slice_end >= deadline {
            return Ok(Json(api::ClaimResponse { tasks: vec![] }));
        }
    }
}

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
    let Reply::Heartbeats(mut acks) = node
        .propose(Command::Heartbeat {
            worker: "-".into(),
            leases: vec![beat],
        })
        .await??
    else {
        unreachable!("heartbeat replies Heartbeats")
    };
    let ack = acks.pop().expect("one result per lease")?;
    Ok(Json(convert::heartbeat_ack(&node.clock_ref(), &ack)))
}

pub async fn heartbeat_batch(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::BatchHeartbeatRequest>,
) -> Result<Json<api::BatchHeartbeatResponse>, ApiError> {
    let leases: Vec<LeaseBeat> = req.leases.iter().map(convert::lease_beat).collect();
    let Reply::Heartbeats(acks) = node
        .propose(Command::Heartbeat {
            worker: req.worker,
            leases,
        })
        .await??
    else {
        unreachable!("heartbeat replies Heartbeats")
    };
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

pub async fn complete(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::CompleteRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let command = Command::Complete {
        task: TaskId(id),
        token: Token(req.token),
        result: convert::json_text(&req.result),
    };
    let Reply::Completed { duplicate } = node.propose(command).await?? else {
        unreachable!("complete replies Completed")
    };
    Ok(Json(api::StateResponse {
        id,
        state: "succeeded".into(),
        duplicate,
    }))
}

pub async fn fail(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::FailRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let command = Command::Fail {
        task: TaskId(id),
        token: Token(req.token),
        code: req.code,
        message: req.error,
        retryable: req.retryable,
        retry_after_ms: req.retry_after_ms,
    };
    let Reply::FailRecorded { state } = node.propose(command).await?? else {
        unreachable!("fail replies FailRecorded")
    };
    Ok(Json(api::StateResponse {
        id,
        state: state.as_str().into(),
        duplicate: false,
    }))
}

pub async fn release(
    State(node): State<Arc<Node>>,
    id: Result<Path<u64>, PathRejection>,
    Body(req): Body<api::ReleaseRequest>,
) -> Result<Json<api::StateResponse>, ApiError> {
    let id = path_id(id)?;
    let command = Command::Release {
        task: TaskId(id),
        token: Token(req.token),
        delay_ms: req.delay_ms,
    };
    let Reply::Released { state } = node.propose(command).await?? else {
        unreachable!("release replies Released")
    };
    Ok(Json(api::StateResponse {
        id,
        state: state.as_str().into(),
        duplicate: false,
    }))
}
