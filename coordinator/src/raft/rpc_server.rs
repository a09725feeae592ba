//! The Raft RPC endpoints (`/raft/*`), separate from the public API and guarded by the
//! cluster secret. A request without the right secret, or from another cluster
//! (`cluster_id.rs`), is refused and logged.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::append_stream::{self, AppendsReceived, STREAM_PATH, UPGRADE_PROTOCOL};
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
    appends: Arc<AppendsReceived>,
}

/// `append_stream`: serve the AppendEntries stream; without, an upgrade request finds no
/// route and a leader sends POSTs, as to a build from before the stream.
pub fn router(node: &crate::raft::Node, secret: &str, append_stream: bool) -> Router {
    let state = RpcState {
        raft: node.raft_handle(),
        elector: node.elector(),
        secret: Arc::from(secret),
        identity: node.cluster_identity(),
        behaviour_max: HeaderValue::from(node.behaviour_max()),
        appends: node.appends_received(),
    };
    let router = Router::new().route(APPEND_PATH, post(append));
    let router = if append_stream {
        router.route(STREAM_PATH, get(append_stream_upgrade))
    } else {
        router
    };
    router
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
    admit_sender(state, headers)?;
    wire::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response())
}

/// Checks the secret and the cluster id, or answers the refusal.
fn admit_sender(state: &RpcState, headers: &HeaderMap) -> Result<(), Response> {
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
    Ok(())
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
        Ok(req) => {
            s.appends.posted.fetch_add(1, Ordering::Relaxed);
            reply(&s, &s.raft.append_entries(req).await)
        }
        Err(refusal) => refusal,
    }
}

/// Upgrades the connection to an AppendEntries stream (`append_stream.rs`): the sender
/// is admitted once, then every frame is answered as `append` answers a POST.
async fn append_stream_upgrade(State(s): State<RpcState>, mut req: Request) -> Response {
    let asks_for_ours = req.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(UPGRADE_PROTOCOL.as_bytes())
    });
    if !asks_for_ours {
        return (
            StatusCode::BAD_REQUEST,
            format!("expected upgrade: {UPGRADE_PROTOCOL}"),
        )
            .into_response();
    }
    // Admitted once for the stream's life: the secret does not change, and a sender's
    // cluster id (or this node's adoption of it) is settled by this first check, as by a
    // POST's.
    if let Err(refusal) = admit_sender(&s, req.headers()) {
        return refusal;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let raft = s.raft.clone();
    let appends = s.appends.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                append_stream::serve(hyper_util::rt::TokioIo::new(upgraded), |req| {
                    appends.streamed.fetch_add(1, Ordering::Relaxed);
                    let raft = raft.clone();
                    async move { raft.append_entries(req).await }
                })
                .await
            }
            Err(e) => tracing::debug!(error = %e, "append stream upgrade failed"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL)),
            (
                axum::http::HeaderName::from_static(BEHAVIOUR_MAX_HEADER),
                s.behaviour_max.clone(),
            ),
        ],
    )
        .into_response()
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
