//! The public HTTP API (v1). One file per group of endpoints; errors map to status codes
//! in `error.rs` only. A follower answers writes and linearizable reads with a `307` to
//! the leader, filled in by `redirect_to_leader`.

mod admin;
mod auth;
mod cluster;
mod convert;
pub mod error;
mod extract;
pub mod forward;
mod lease;
pub mod metrics;
mod params;
mod stream;
mod tasks;

use std::sync::Arc;

use axum::extract::State;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::raft::Node;
use error::LeaderRedirect;
use forward::Forwarder;

/// Largest request body: a full enqueue batch of modest payloads. Each payload is also
/// bounded by the state machine's `PAYLOAD_BYTES_MAX`.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `api_token`: when set, every request but the health probes must carry it.
/// `forward`: a follower forwards requests for the leader instead of answering 307
/// (`forward.rs`).
pub fn router(node: Arc<Node>, api_token: Option<String>, forward: Option<Forwarder>) -> Router {
    let request_metrics = Arc::new(metrics::RequestMetrics::default());
    let node_id = node.id();
    let state = AppState {
        node,
        metrics: request_metrics.clone(),
    };
    Router::new()
        .route("/v1/tasks", post(tasks::enqueue).get(tasks::list))
        .route("/v1/tasks/batch", post(tasks::enqueue_batch))
        .route("/v1/tasks/{id}", get(tasks::get))
        .route("/v1/tasks/{id}/events", get(tasks::events))
        .route("/v1/tasks/{id}/heartbeat", post(lease::heartbeat))
        .route("/v1/tasks/{id}/complete", post(lease::complete))
        .route("/v1/tasks/{id}/fail", post(lease::fail))
        .route("/v1/tasks/{id}/release", post(lease::release))
        .route("/v1/tasks/{id}/cancel", post(admin::cancel))
        .route("/v1/tasks/{id}/requeue", post(admin::requeue))
        .route("/v1/events", get(stream::all_events))
        .route("/v1/claim", post(lease::claim))
        .route("/v1/complete", post(lease::complete_batch))
        .route("/v1/heartbeat", post(lease::heartbeat_batch))
        .route("/v1/queues", get(admin::queues))
        .route("/v1/queues/{queue}/pause", post(admin::pause))
        .route("/v1/queues/{queue}/resume", post(admin::resume))
        .route(
            "/v1/broadcast",
            post(admin::broadcast).get(admin::broadcasts),
        )
        .route("/v1/cluster", get(cluster::status))
        .route("/v1/cluster/learners", post(cluster::add_learner))
        .route("/v1/cluster/membership", post(cluster::membership))
        .route("/healthz", get(cluster::healthz))
        .route("/readyz", get(cluster::readyz))
        .route("/metrics", get(cluster::metrics))
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            forward.map(Arc::new),
            redirect_to_leader,
        ))
        .route_layer(middleware::from_fn_with_state(
            (request_metrics, node_id),
            metrics::track,
        ))
        .layer(middleware::from_fn_with_state(
            api_token.map(Arc::from),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

/// What every handler can reach: the node, and the request metrics `/metrics` renders.
#[derive(Debug, Clone)]
pub struct AppState {
    pub node: Arc<Node>,
    pub metrics: Arc<metrics::RequestMetrics>,
}

impl axum::extract::FromRef<AppState> for Arc<Node> {
    fn from_ref(s: &AppState) -> Arc<Node> {
        s.node.clone()
    }
}

/// Completes a not-leader answer: `Location` is the same path and query on the leader.
/// With forwarding on, sends the request to the leader instead (see `forward.rs`); the
/// body is read first so that it can be sent again.
async fn redirect_to_leader(
    State(forwarder): State<Option<Arc<Forwarder>>>,
    req: Request,
    next: Next,
) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let Some(forwarder) = forwarder else {
        let mut response = next.run(req).await;
        set_location(&mut response, &path_and_query);
        return response;
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error::ApiError::Rejected(taskswarm_state_machine::Rejection::PayloadTooLarge {
                field: "body".into(),
                bytes: 0,
                max: BODY_BYTES_MAX as u64,
            })
            .into_response()
        }
    };
    let (method, headers) = (parts.method.clone(), parts.headers.clone());
    let mut response = next
        .run(Request::from_parts(
            parts,
            axum::body::Body::from(bytes.clone()),
        ))
        .await;
    let Some(LeaderRedirect(addr)) = response.extensions().get::<LeaderRedirect>().cloned() else {
        return response;
    };
    match forward::decide(&headers, &addr) {
        forward::Decision::Forward { leader_addr } => {
            forwarder
                .forward(method, &path_and_query, &headers, bytes, &leader_addr)
                .await
        }
        forward::Decision::Redirect => {
            set_location(&mut response, &path_and_query);
            response
        }
        forward::Decision::LeaderMoved => error::ApiError::NoLeader.into_response(),
    }
}

fn set_location(response: &mut Response, path_and_query: &str) {
    if let Some(LeaderRedirect(addr)) = response.extensions_mut().remove::<LeaderRedirect>() {
        let location = format!("{}{path_and_query}", addr.trim_end_matches('/'));
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
}
