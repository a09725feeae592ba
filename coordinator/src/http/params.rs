//! Path and query parameters, with failures as structured errors, and the read gate that
//! makes reads linearizable unless the client asks for local ones.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use serde::Deserialize;
use taskswarm_state_machine::StateMachine;
use tokio::time::Instant;

use super::error::ApiError;
use crate::raft::Node;

/// The longest a long-poll (`wait_ms`) may hold a request.
pub const WAIT_MS_MAX: u64 = 60_000;

pub fn path_id(p: Result<Path<u64>, PathRejection>) -> Result<u64, ApiError> {
    p.map(|Path(id)| id)
        .map_err(|e| ApiError::BadRequest(format!("bad task id: {}", e.body_text())))
}

pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `?consistency=local&wait_ms=N` on reads.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// `linearizable` (the default: the leader answers) or `local` (this node's applied
    /// state, possibly behind).
    pub consistency: Option<String>,
    /// `GET /v1/tasks/{id}` only: hold the request up to this long (at most 60000) until
    /// the task is finished.
    pub wait_ms: Option<u64>,
}

/// Linearizable by default: the leader confirms it still leads and has applied all that
/// was committed before the read began. `local` reads this node's applied state as is.
pub async fn read_gate(node: &Node, consistency: Option<&str>) -> Result<(), ApiError> {
    match consistency {
        None | Some("linearizable") => Ok(node.read_barrier().await?),
        Some("local") => Ok(()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "consistency must be linearizable or local, not {other:?}"
        ))),
    }
}

pub fn wait_deadline(wait_ms: Option<u64>) -> Result<Instant, ApiError> {
    let ms = wait_ms.unwrap_or(0);
    if ms > WAIT_MS_MAX {
        return Err(ApiError::BadRequest(format!(
            "wait_ms must be at most {WAIT_MS_MAX}"
        )));
    }
    Ok(Instant::now() + std::time::Duration::from_millis(ms))
}

/// Waits until `done` holds on the applied state or the deadline passes. Wakes on every
/// apply, so it costs nothing while the cluster is idle.
pub async fn wait_for(
    node: &Node,
    deadline: Instant,
    done: impl Fn(&StateMachine) -> bool,
) -> bool {
    wait_on(node, node.applied(), deadline, done).await
}

/// Like `wait_for`, woken only when something may have become claimable.
pub async fn wait_ready(
    node: &Node,
    deadline: Instant,
    done: impl Fn(&StateMachine) -> bool,
) -> bool {
    wait_on(node, node.ready(), deadline, done).await
}

async fn wait_on(
    node: &Node,
    mut applied: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    done: impl Fn(&StateMachine) -> bool,
) -> bool {
    loop {
        if done(&node.state()) {
            return true;
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return false },
            () = tokio::time::sleep_until(deadline) => return done(&node.state()),
            // A stopping node answers its long-polls with what it has now.
            () = node.stopped() => return done(&node.state()),
        }
    }
}
