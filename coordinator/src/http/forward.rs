//! Server-side forwarding to the leader (`--forward-to-leader`), next to the 307.
//!
//! Why: a follower's 307 names the leader's advertised address, which is the one the
//! nodes use among themselves. Behind Docker's port publishing (or Kubernetes services,
//! NAT, a load balancer) that address resolves only inside the cluster's network, so a
//! client outside it cannot follow the redirect. With forwarding on, a follower sends the
//! request to the leader itself and returns the leader's answer, streamed (long-polls
//! and event streams included): any node that a client can reach serves every request.
//!
//! The trade-off: one more hop for requests that land on a follower, and one more place
//! an outcome can become unknown. The rules keep "unknown" honest:
//! - The follower decides to forward only after its own handler answered "not the
//!   leader", which it does before proposing anything: nothing ran here.
//! - The leader could not be connected to: nothing was sent, so the answer is
//!   `503 no_leader` (safe to retry).
//! - The connection failed after the request was sent: the leader may have applied it,
//!   so the answer is `503 indeterminate`, never a failure.
//! - A request forwarded once is never forwarded again (header [`FORWARDED_HEADER`]): a
//!   node that is no longer the leader answers its own 307, which the forwarding node
//!   turns into `503 no_leader` (the leader moved; nothing was applied; retry).
//!
//! A client that wants the 307 anyway (to talk to the leader directly, as the Rust
//! client does when it can reach it) sends [`NO_FORWARD_HEADER`].

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::error::ApiError;

/// Set on a forwarded request (value: the forwarding node's id). Such a request is
/// answered where it lands, never forwarded again.
pub const FORWARDED_HEADER: &str = "x-taskswarm-forwarded-by";
/// A client sends this (any value) to get the 307 instead of a forward.
pub const NO_FORWARD_HEADER: &str = "x-taskswarm-no-forward";
/// A client sends this (any value) to have this one request forwarded even when the
/// node does not forward by default: the dashboard does, since a browser cannot follow
/// a 307 to another origin with its `Authorization` header.
pub const FORWARD_HEADER: &str = "x-taskswarm-forward";
/// Set on the answer to a forwarded request: the leader's address it was forwarded to.
pub const FORWARDED_TO_HEADER: &str = "x-taskswarm-forwarded-to";
/// Longest wait to connect to the leader before answering `no_leader`.
pub const FORWARD_CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Headers that describe one hop's connection, not the request (RFC 9110 §7.6.1), and
/// the ones the forwarding client sets itself.
const NOT_FORWARDED: [HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::TE,
    header::UPGRADE,
];

/// The forwarding client of one node.
#[derive(Debug, Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    node_id: u64,
}

/// What to do with a request that got a "not the leader" answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it to the leader at this address.
    Forward { leader_addr: String },
    /// Return the 307 as it is.
    Redirect,
    /// It was forwarded to us and we are not the leader either: `503 no_leader`.
    LeaderMoved,
}

/// Whether a request may be forwarded at all, decided before it runs: only then does
/// the node keep a copy of its body to send again.
pub fn may_forward(headers: &HeaderMap, by_default: bool) -> bool {
    by_default || headers.contains_key(FORWARD_HEADER)
}

/// The forwarding rule, as a pure function of the request's headers and whether this
/// node forwards by default (`--forward-to-leader`).
pub fn decide(headers: &HeaderMap, leader_addr: &str, by_default: bool) -> Decision {
    if headers.contains_key(FORWARDED_HEADER) {
        Decision::LeaderMoved
    } else if headers.contains_key(NO_FORWARD_HEADER) || !may_forward(headers, by_default) {
        Decision::Redirect
    } else {
        Decision::Forward {
            leader_addr: leader_addr.to_owned(),
        }
    }
}

impl Forwarder {
    pub fn new(node_id: u64) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_millis(FORWARD_CONNECT_TIMEOUT_MS))
            // Redirects from the leader are answers to pass back, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, node_id })
    }

    /// Sends the request (its parts and the body this node already read) to the leader,
    /// and streams the leader's answer back. No overall timeout: long-polls and event
    /// streams last as long as the client keeps its connection (dropping this future
    /// closes the forwarded one too).
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
        leader_addr: &str,
    ) -> Response {
        let url = format!("{}{path_and_query}", leader_addr.trim_end_matches('/'));
        let mut out = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            if !NOT_FORWARDED.contains(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out.insert(
            HeaderName::from_static(FORWARDED_HEADER),
            HeaderValue::from(self.node_id),
        );
        let sent = self
            .http
            .request(method, &url)
            .headers(out)
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) if e.is_connect() => {
                tracing::debug!(%url, error = %e, "could not connect to the leader to forward");
                return ApiError::NoLeader.into_response();
            }
            Err(e) => {
                return ApiError::Indeterminate(format!(
                    "forwarding to the leader at {leader_addr} failed after sending: {e}"
                ))
                .into_response();
            }
        };
        if answer.status() == StatusCode::TEMPORARY_REDIRECT {
            // The node we forwarded to is no longer the leader; it applied nothing.
            return ApiError::NoLeader.into_response();
        }
        let status = answer.status();
        let mut response_headers = HeaderMap::new();
        for (name, value) in answer.headers() {
            if !NOT_FORWARDED.contains(name) {
                response_headers.append(name.clone(), value.clone());
            }
        }
        let stream = answer.bytes_stream().map_err(std::io::Error::other);
        let mut response = Response::new(Body::from_stream(stream));
        *response.status_mut() = status;
        *response.headers_mut() = response_headers;
        if let Ok(value) = HeaderValue::from_str(leader_addr) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(FORWARDED_TO_HEADER), value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_plain_request_is_forwarded_to_the_leader() {
        assert_eq!(
            decide(&headers(&[]), "http://n1:7001", true),
            Decision::Forward {
                leader_addr: "http://n1:7001".into()
            }
        );
    }

    #[test]
    fn a_forwarded_request_is_never_forwarded_again() {
        assert_eq!(
            decide(
                &headers(&[(FORWARDED_HEADER, "2"), (NO_FORWARD_HEADER, "1")]),
                "http://n1:7001",
                true
            ),
            Decision::LeaderMoved
        );
    }

    #[test]
    fn a_client_can_ask_for_the_redirect() {
        assert_eq!(
            decide(
                &headers(&[(NO_FORWARD_HEADER, "1")]),
                "http://n1:7001",
                true
            ),
            Decision::Redirect
        );
    }

    #[test]
    fn without_forwarding_by_default_only_a_request_that_asks_is_forwarded() {
        assert!(!may_forward(&headers(&[]), false));
        assert_eq!(
            decide(&headers(&[]), "http://n1:7001", false),
            Decision::Redirect
        );
        let asks = headers(&[(FORWARD_HEADER, "1")]);
        assert!(may_forward(&asks, false));
        assert_eq!(
            decide(&asks, "http://n1:7001", false),
            Decision::Forward {
                leader_addr: "http://n1:7001".into()
            }
        );
        assert_eq!(
            decide(
                &headers(&[(FORWARD_HEADER, "1"), (FORWARDED_HEADER, "3")]),
                "x",
                false
            ),
            Decision::LeaderMoved
        );
    }
}
