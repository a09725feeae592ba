//! Sending one API request to the cluster: leader tracking, redirects, rotation, retries.
//!
//! Retry rules follow from what each answer proves:
//! - connection refused: the node never saw the request → try the next node;
//! - `307`: a follower refused to act → go where `Location` points (at most
//!   `REDIRECT_HOPS_MAX` hops per attempt) and remember that leader; when that address's
//!   name cannot be resolved `REDIRECT_UNREACHABLE_MAX` times in a row and for longer than
//!   an election takes (`REDIRECT_UNREACHABLE_MIN`: the leader advertises a name this
//!   client cannot resolve, e.g. one inside a Docker network), give up with an error
//!   naming it rather than after the whole budget. A refused connection is not that: a
//!   leader that just died is refused until the followers elect another;
//! - `503 no_leader` / `no_quorum` / `unavailable`: nothing was written → back off, try
//!   again (on the next node);
//! - `503 indeterminate`, a timeout, a dropped connection after sending: the write may
//!   have happened → retry only requests that are idempotent, otherwise report
//!   `Indeterminate`;
//! - any other 4xx/5xx: a refusal → `Rejected`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use taskswarm_api::{codes, ErrorBody};

use crate::error::ClientError;

/// Redirects followed within one attempt before giving up on it.
pub const REDIRECT_HOPS_MAX: u32 = 5;
/// Attempts in a row whose redirect led to a name that could not be resolved, and the
/// least time spent, before the call fails as unavailable: longer than an election, so a
/// leader briefly missing from DNS while it restarts (Kubernetes) is waited out.
pub const REDIRECT_UNREACHABLE_MAX: u32 = 3;
pub const REDIRECT_UNREACHABLE_MIN: Duration = Duration::from_secs(2);

/// Whether a request may be sent again when its first outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sending it twice has the effect of sending it once (reads, enqueue with a key,
    /// complete with its token, heartbeat).
    Idempotent,
    /// A second send could act twice (claim, fail, release, cancel): report
    /// `Indeterminate` instead of retrying after an unknown outcome.
    AtMostOnce,
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub request_timeout: Duration,
    /// Total time spent retrying one call.
    pub retry_budget: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub api_token: Option<String>,
}

#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    nodes: Vec<String>,
    /// The last leader seen, tried first.
    leader: Mutex<Option<String>>,
    /// Index of the next node to try when the leader is unknown.
    next: Mutex<usize>,
    config: TransportConfig,
}

/// An answer that ends the attempt.
enum Attempt {
    Done(StatusCode, Vec<u8>),
    /// Nothing was written; try again (possibly elsewhere).
    RetrySafe(String),
    /// Maybe written.
    Unknown(String),
    /// A follower redirected to `leader`, whose name could not be resolved: nothing was
    /// written.
    LeaderUnreachable {
        leader: String,
        cause: String,
    },
}

/// Whether a connection failed because the host name did not resolve (hyper's
/// connector reports it as a "dns error" in the error's chain).
fn is_name_not_resolved(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.to_string().contains("dns error") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The innermost cause of an error ("dns error: failed to lookup address ..."), which is
/// what tells a user why; reqwest's own message is only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl Transport {
    pub fn new(nodes: Vec<String>, config: TransportConfig) -> Result<Self, ClientError> {
        if nodes.is_empty() {
            return Err(ClientError::InvalidArgument(
                "at least one server URL is needed".into(),
            ));
        }
        let mut clean = Vec::new();
        for n in nodes {
            let n = n.trim().trim_end_matches('/').to_owned();
            if !n.starts_with("http://") && !n.starts_with("https://") {
                return Err(ClientError::InvalidArgument(format!(
                    "server {n:?} must start with http:// or https://"
                )));
            }
            clean.push(n);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Ok(Self {
            http,
            nodes: clean,
            leader: Mutex::new(None),
            next: Mutex::new(0),
            config,
        })
    }

    /// The `Authorization` header, when a token is configured.
    pub fn auth_headers(&self) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.config.api_token {
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
        }
        h
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The node to try first: the known leader, else the next in rotation.
    pub fn pick(&self) -> String {
        if let Some(leader) = self.leader.lock().expect("leader lock").clone() {
            return leader;
        }
        let mut next = self.next.lock().expect("rotation lock");
        let node = self.nodes[*next % self.nodes.len()].clone();
        *next = (*next + 1) % self.nodes.len();
        node
    }

    fn forget_leader(&self) {
        *self.leader.lock().expect("leader lock") = None;
    }

    fn remember_leader(&self, addr: String) {
        *self.leader.lock().expect("leader lock") = Some(addr.trim_end_matches('/').to_owned());
    }

    /// Sends a JSON request and decodes the JSON answer.
    pub async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Req>,
        retry: Retry,
        timeout: Option<Duration>,
    ) -> Result<Resp, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request types serialize"));
        let started = Instant::now();
        let mut backoff = self.config.backoff_initial;
        let mut last_problem: String;
        let mut maybe_written = false;
        let mut leader_unreachable = 0;
        loop {
            let attempt = self
                .attempt(&method, path_and_query, body.as_deref(), timeout)
                .await;
            if matches!(attempt, Attempt::LeaderUnreachable { .. }) {
                leader_unreachable += 1;
            } else {
                leader_unreachable = 0;
            }
            match attempt {
                Attempt::Done(status, bytes) => return decode(status, &bytes),
                Attempt::RetrySafe(why) => last_problem = why,
                Attempt::LeaderUnreachable { leader, cause } => {
                    last_problem = format!(
                        "the leader's address {leader}, given in a redirect by a follower, cannot be \
                         reached from here ({cause}); reach the cluster at addresses it advertises, \
                         or run the nodes with --forward-to-leader"
                    );
                    if leader_unreachable >= REDIRECT_UNREACHABLE_MAX
                        && started.elapsed() >= REDIRECT_UNREACHABLE_MIN
                        && !maybe_written
                    {
                        return Err(ClientError::Unavailable {
                            elapsed: started.elapsed(),
                            message: last_problem,
                        });
                    }
                }
                Attempt::Unknown(why) => {
                    if retry == Retry::AtMostOnce {
                        return Err(ClientError::Indeterminate(why));
                    }
                    maybe_written = true;
                    last_problem = why;
                }
            }
            if started.elapsed() + backoff > self.config.retry_budget {
                let elapsed = started.elapsed();
                return Err(if maybe_written {
                    ClientError::Indeterminate(format!("gave up after {elapsed:?}: {last_problem}"))
                } else {
                    ClientError::Unavailable {
                        elapsed,
                        message: last_problem,
                    }
                });
            }
            tracing::debug!(problem = %last_problem, ?backoff, "retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Attempt {
        let mut url = format!("{}{path_and_query}", self.pick());
        for hop in 0..=REDIRECT_HOPS_MAX {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .timeout(timeout.unwrap_or(self.config.request_timeout))
                .headers(self.auth_headers());
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() && hop > 0 && is_name_not_resolved(&e) => {
                    self.forget_leader();
                    let leader = url.strip_suffix(path_and_query).unwrap_or(&url).to_owned();
                    return Attempt::LeaderUnreachable {
                        leader,
                        cause: root_cause(&e),
                    };
                }
                Err(e) if e.is_connect() => {
                    self.forget_leader();
                    return Attempt::RetrySafe(format!("{url}: {}", root_cause(&e)));
                }
                Err(e) => {
                    self.forget_leader();
                    return Attempt::Unknown(format!("{url}: {e} ({})", root_cause(&e)));
                }
            };
            let status = resp.status();
            if status == StatusCode::TEMPORARY_REDIRECT {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                let leader = serde_json::from_slice::<ErrorBody>(&bytes)
                    .ok()
                    .and_then(|e| e.error.leader_addr);
                match (location, leader) {
                    (Some(location), leader) => {
                        if let Some(addr) = leader {
                            self.remember_leader(addr);
                        }
                        url = location;
                        continue;
                    }
                    (None, _) => {
                        return Attempt::RetrySafe(format!("{url}: redirect without a Location"))
                    }
                }
            }
            let bytes = match resp.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => return Attempt::Unknown(format!("{url}: reading the answer: {e}")),
            };
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let code = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|e| e.error.code)
                    .unwrap_or_default();
                self.forget_leader();
                return if code == codes::INDETERMINATE {
                    Attempt::Unknown(format!("{url}: the write's outcome is unknown"))
                } else {
                    Attempt::RetrySafe(format!("{url}: {code}"))
                };
            }
            return Attempt::Done(status, bytes);
        }
        Attempt::RetrySafe(format!("more than {REDIRECT_HOPS_MAX} redirects"))
    }
}

fn decode<Resp: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<Resp, ClientError> {
    if status.is_success() {
        return serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Protocol(format!("undecodable answer: {e}")));
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(e) => Err(ClientError::Rejected {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
        }),
        Err(_) => Err(ClientError::Rejected {
            status: status.as_u16(),
            code: "http_error".into(),
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
        }),
    }
}
