//! Sending one API request to the cluster. The decisions (redirects, rotation, retries,
//! back-off, giving up, what an answer means) are `plan::CallPlan`'s; this module does the
//! I/O they ask for: it sends, sleeps, and reports each send's `Outcome`.
//!
//! | file | job |
//! |---|---|
//! | `plan.rs` | `CallPlan`: one call's retry and redirect rules, a state machine without I/O |
//! | `route.rs` | `Route`: the leader last seen and the rotation through the nodes |
//! | `answer.rs` | `Answer`: what a final answer decodes to (`Rejected` for a refusal) |

mod answer;
mod plan;
mod route;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;
use plan::{Action, Budget, CallPlan, Outcome};
pub use plan::{Retry, REDIRECT_HOPS_MAX, REDIRECT_UNREACHABLE_MAX, REDIRECT_UNREACHABLE_MIN};
use route::Route;

/// Time to open a connection: a node that does not accept within it is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
    route: Mutex<Route>,
    config: TransportConfig,
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
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Ok(Self {
            http,
            route: Mutex::new(Route::new(clean)),
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
        self.route().pick()
    }

    /// Held only inside one decision, never across an await.
    fn route(&self) -> MutexGuard<'_, Route> {
        self.route.lock().expect("route lock")
    }

    fn budget(&self) -> Budget {
        Budget {
            retry_budget: self.config.retry_budget,
            backoff_initial: self.config.backoff_initial,
            backoff_max: self.config.backoff_max,
        }
    }

    /// Sends a JSON request and decodes the JSON answer, carrying out what the call's
    /// plan decides.
    pub async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Req>,
        retry: Retry,
        timeout: Option<Duration>,
    ) -> Result<Resp, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request types serialize"));
        let mut plan = CallPlan::new(retry, self.budget(), path_and_query, Instant::now());
        let mut action = plan.attempt(&mut self.route());
        loop {
            action = match action {
                Action::Send { url } => {
                    let outcome = self.send(&method, &url, body.as_deref(), timeout).await;
                    plan.on_outcome(Instant::now(), outcome, &mut self.route())
                }
                Action::Sleep(backoff) => {
                    tracing::debug!(problem = %plan.last_problem(), ?backoff, "retrying");
                    tokio::time::sleep(backoff).await;
                    plan.attempt(&mut self.route())
                }
                Action::Return(result) => return result.and_then(|answer| answer.decode()),
            };
        }
    }

    /// One HTTP request, and what became of it.
    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Outcome {
        let mut req = self
            .http
            .request(method.clone(), url)
            .timeout(timeout.unwrap_or(self.config.request_timeout))
            .headers(self.auth_headers());
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Outcome::NotConnected {
                    cause: root_cause(&e),
                    name_not_resolved: is_name_not_resolved(&e),
                }
            }
            Err(e) => {
                return Outcome::Lost {
                    cause: format!("{e} ({})", root_cause(&e)),
                }
            }
        };
        let status: StatusCode = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match resp.bytes().await {
            Ok(b) => Outcome::Answered {
                status,
                location,
                body: b.to_vec(),
            },
            Err(e) => Outcome::BodyLost {
                status,
                location,
                cause: e.to_string(),
            },
        }
    }
}
