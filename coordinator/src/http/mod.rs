//! The public HTTP API (v1). One file per group of endpoints; errors map to status codes
//! in `error.rs` only. A follower answers writes and linearizable reads with a `307` to
//! the leader, filled in by `redirect_to_leader`.

mod admin;
mod auth;
mod backup;
mod cluster;
mod cluster_nodes;
mod convert;
pub mod error;
mod extract;
pub mod forward;
mod lease;
mod membership_plan;
pub mod metrics;
pub mod openapi;
mod params;
mod propose;
pub mod rates;
mod stream;
mod tasks;
mod ui;

use std::sync::Arc;

use axum::extract::State;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::raft::Node;
use error::LeaderRedirect;
use forward::Forwarder;

/// Largest request body: a full enqueue batch of modest payloads. Each payload is also
/// bounded by the state machine's `PAYLOAD_BYTES_MAX`.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `api_token`: when set, every request but the health probes and the dashboard's
/// assets must carry it. `forward_by_default`: a follower forwards requests for the
/// leader instead of answering 307 (`forward.rs`); a request can ask for that itself.
pub fn router(
    node: Arc<Node>,
    api_token: Option<String>,
    forwarder: Forwarder,
    forward_by_default: bool,
) -> Router {
    let request_metrics = Arc::new(metrics::RequestMetrics::default());
    let node_id = node.id();
    let rates = Arc::new(parking_lot::Mutex::new(rates::RateBook::default()));
    rates::spawn_feeder(&node, rates.clone());
    let state = AppState {
        node,
        metrics: request_metrics.clone(),
        rates,
        peers: cluster_nodes::PeerClient::new(),
    };
    let (api_routes, _) = api_routes().split_for_parts();
    api_routes
        .merge(ui::router())
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            Arc::new((forwarder, forward_by_default)),
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

/// Every documented route: each is registered from its handler's `#[utoipa::path]`, so
/// the OpenAPI document lists exactly what the router serves.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(tasks::enqueue, tasks::list))
        .routes(routes!(tasks::enqueue_batch))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::events))
        .routes(routes!(lease::heartbeat))
        .routes(routes!(lease::complete))
        .routes(routes!(lease::fail))
        .routes(routes!(lease::release))
        .routes(routes!(admin::cancel))
        .routes(routes!(admin::requeue))
        .routes(routes!(stream::all_events))
        .routes(routes!(lease::claim))
        .routes(routes!(lease::complete_batch))
        .routes(routes!(lease::heartbeat_batch))
        .routes(routes!(admin::queues))
        .routes(routes!(admin::pause))
        .routes(routes!(admin::resume))
        .routes(routes!(rates::rates))
        .routes(routes!(admin::broadcast, admin::broadcasts))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster_nodes::nodes, cluster::add_node))
        .routes(routes!(cluster::remove_node))
        .routes(routes!(cluster::add_learner))
        .routes(routes!(cluster::membership))
        .routes(routes!(cluster::healthz))
        .routes(routes!(cluster::readyz))
        .routes(routes!(cluster::metrics))
        .routes(routes!(openapi::document_json))
        .routes(routes!(backup::backup))
}

/// What every handler can reach: the node, and the request metrics `/metrics` renders.
#[derive(Debug, Clone)]
pub struct AppState {
    pub node: Arc<Node>,
    pub metrics: Arc<metrics::RequestMetrics>,
    pub rates: Arc<parking_lot::Mutex<rates::RateBook>>,
    pub peers: cluster_nodes::PeerClient,
}

impl axum::extract::FromRef<AppState> for Arc<Node> {
    fn from_ref(s: &AppState) -> Arc<Node> {
        s.node.clone()
    }
}

impl axum::extract::FromRef<AppState> for Arc<parking_lot::Mutex<rates::RateBook>> {
    fn from_ref(s: &AppState) -> Self {
        s.rates.clone()
    }
}

/// Completes a not-leader answer: `Location` is the same path and query on the leader.
/// With forwarding on, sends the request to the leader instead (see `forward.rs`); the
/// body is read first so that it can be sent again.
async fn redirect_to_leader(
    State(forwarding): State<Arc<(Forwarder, bool)>>,
    req: Request,
    next: Next,
) -> Response {
    let (forwarder, by_default) = (&forwarding.0, forwarding.1);
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    if !forward::may_forward(req.headers(), by_default) {
        let mut response = next.run(req).await;
        set_location(&mut response, &path_and_query);
        return response;
    }
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
    match forward::decide(&headers, &addr, by_default) {
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
