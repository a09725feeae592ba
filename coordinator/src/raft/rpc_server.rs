//! The Raft RPC endpoints (`/raft/*`), separate from the public API and guarded by the
//! cluster secret. A request without the right secret, or from another cluster
//! (`cluster_id.rs`), is refused and logged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::behaviour::BEHAVIOUR_MAX_HEADER;
use super::cluster_id::{self, ClusterIdentity, CLUSTER_ID_HEADER};
use super::elector::Elector;
use super::pre_vote::PreVoteRequest;
use super::wire::{self, APPEND_PATH, CLUSTER_SECRET_HEADER, RPC_BODY_BYTES_MAX};
use crate::types::Raft;

#[derive(Clone)]
struct RpcState {
    raft: Raft,
    elector: Arc<Elector>,
    secret: Arc<str>,
    identity: Arc<ClusterIdentity>,
    /// This node's accepted behaviour maximum, sent on every answer (`behaviour.rs`).
    behaviour_max: HeaderValue,
}

pub fn router(node: &crate::raft::Node, secret: &str) -> Router {
    let state = RpcState {
        raft: node.raft_handle(),
        elector: node.elector(),
        secret: Arc::from(secret),
        identity: node.cluster_identity(),
        behaviour_max: HeaderValue::from(node.behaviour_max()),
    };
    Router::new()
        .route(APPEND_PATH, post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/prevote", post(pre_vote))
        .route("/raft/snapshot", post(snapshot))
        .layer(DefaultBodyLimit::max(RPC_BODY_BYTES_MAX))
        .with_state(state)
}

/// Checks the secret and decodes the body, or answers the refusal.
fn admit<T: DeserializeOwned>(
    state: &RpcState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Response> {
    let given = headers
        .get(CLUSTER_SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !crate::secret::secrets_match(given, state.secret.as_bytes()) {
        tracing::warn!(
            present = !given.is_empty(),
            "refused a Raft RPC without the cluster secret"
        );
        return Err((StatusCode::UNAUTHORIZED, "cluster secret required").into_response());
    }
    let given = headers
        .get(CLUSTER_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(cluster_id::parse);
    if let Err(why) = state.identity.admit(given) {
        tracing::warn!(%why, "refused a Raft RPC from another cluster");
        return Err((StatusCode::CONFLICT, why).into_response());
    }
    wire::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response())
}

fn reply<T: Serialize>(state: &RpcState, value: &T) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                axum::http::HeaderName::from_static(BEHAVIOUR_MAX_HEADER),
                state.behaviour_max.clone(),
            ),
        ],
        wire::encode(value),
    )
        .into_response()
}

async fn append(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&s, &headers, &body) {
        Ok(req) => reply(&s, &s.raft.append_entries(req).await),
        Err(refusal) => refusal,
    }
}

async fn vote(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&s, &headers, &body) {
        Ok(req) => reply(&s, &s.raft.vote(req).await),
        Err(refusal) => refusal,
    }
}

async fn pre_vote(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit::<PreVoteRequest>(&s, &headers, &body) {
        // Answered on its own task: a candidate that stops waiting drops this handler,
        // and a dropped wait on openraft's core makes the core log an error.
        Ok(req) => match tokio::spawn({
            let s = s.clone();
            async move { s.elector.answer(&req).await }
        })
        .await
        {
            Ok(answer) => reply(&s, &answer),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        },
        Err(refusal) => refusal,
    }
}

async fn snapshot(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&s, &headers, &body) {
        Ok(req) => reply(&s, &s.raft.install_snapshot(req).await),
        Err(refusal) => refusal,
    }
}
