//! `GET /v1/cluster/nodes`: every member's own status, gathered by the node asked, so
//! one request (the dashboard's cluster page) shows each node's term, applied index and
//! lag, and which nodes cannot be reached. Answered by whichever node is asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use taskswarm_api as api;

use super::AppState;

/// Longest wait for one member's status; members are asked in parallel.
pub const NODE_STATUS_TIMEOUT_MS: u64 = 1_000;

/// The HTTP client a node uses to read other members' status.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
}

impl PeerClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(NODE_STATUS_TIMEOUT_MS))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client without TLS builds");
        Self { http }
    }

    /// `authorization` is the caller's own header: members share the API token.
    async fn status(
        &self,
        addr: &str,
        authorization: Option<&header::HeaderValue>,
    ) -> Result<api::ClusterStatus, String> {
        let url = format!("{}/v1/cluster", addr.trim_end_matches('/'));
        let mut request = self.http.get(&url);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value.clone());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {NODE_STATUS_TIMEOUT_MS} ms")
            } else if e.is_connect() {
                "connection refused or unreachable".to_owned()
            } else {
                e.to_string()
            }
        })?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        response
            .json()
            .await
            .map_err(|e| format!("unreadable status: {e}"))
    }
}

impl Default for PeerClient {
    fn default() -> Self {
        Self::new()
    }
}

#[utoipa::path(get, path = "/v1/cluster/nodes", tag = "cluster", responses((status = 200, description = "Each member's own status, or why it could not be read (never redirected)", body = api::ClusterNodesResponse)))]
pub async fn nodes(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Json<api::ClusterNodesResponse> {
    let node = Arc::clone(&app.node);
    let own = node.status();
    let authorization = headers.get(header::AUTHORIZATION);
    let reads = own.members.iter().map(|(id, addr, voter)| {
        let peers = &app.peers;
        let node = &node;
        async move {
            let started = Instant::now();
            let read = if *id == node.id() {
                Ok(super::cluster::status_of(node, false).0)
            } else {
                peers.status(addr, authorization).await
            };
            let rtt_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, error, rtt_ms) = match read {
                Ok(status) => (Some(status), None, Some(rtt_ms)),
                Err(why) => (None, Some(why), None),
            };
            api::NodeView {
                id: *id,
                addr: addr.clone(),
                voter: *voter,
                status,
                error,
                rtt_ms,
            }
        }
    });
    Json(api::ClusterNodesResponse {
        nodes: futures::future::join_all(reads).await,
    })
}
