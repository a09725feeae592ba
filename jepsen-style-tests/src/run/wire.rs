//! The harness's HTTP client: one request, redirects followed by hand, and the answer
//! classified the way the history needs it: `Ok`, `Fail` (it definitely did not happen)
//! or `Info` (it may have happened).
//!
//! Deliberately not `taskswarm_worker::Client`: that client retries, and a retry hidden
//! inside one recorded operation would blur what the history claims happened. Here each
//! attempt is one operation and the workload decides whether to try again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use taskswarm_api::ErrorCode;

/// A follower answers a write with a 307 to the leader; two hops cover a leader change
/// in between, more is a loop.
pub const REDIRECT_HOPS_MAX: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(Value),
    /// Definitely not applied; the error code.
    Fail(String),
    /// Outcome unknown; why.
    Info(String),
}

impl Reply {
    /// The error code of a `Fail` or `Info`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Reply::Ok(_) => None,
            Reply::Fail(c) | Reply::Info(c) => Some(c),
        }
    }
}

#[derive(Debug)]
pub struct Wire {
    http: reqwest::Client,
    /// Base URLs of the nodes (`http://10.77.0.11:7001`).
    nodes: Vec<String>,
    /// Index into `nodes` of the node to try first: the last leader seen.
    hint: AtomicUsize,
}

/// How the status and error code of a non-2xx answer classify.
fn classify(status: u16, code: &str) -> Reply {
    match ErrorCode::parse(code) {
        // Refused before anything was proposed.
        Some(ErrorCode::NoLeader | ErrorCode::NotLeader | ErrorCode::NoQuorum) => {
            Reply::Fail(code.to_owned())
        }
        // Proposed (or maybe proposed) but the commit was not confirmed.
        Some(ErrorCode::Indeterminate | ErrorCode::Unavailable) => Reply::Info(code.to_owned()),
        _ if (400..500).contains(&status) => Reply::Fail(code.to_owned()),
        _ => Reply::Info(format!("http_{status}")),
    }
}

impl Wire {
    pub fn new(nodes: Vec<String>) -> Result<Wire, reqwest::Error> {
        assert!(!nodes.is_empty(), "a wire needs at least one node");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4)
            .build()?;
        Ok(Wire {
            http,
            nodes,
            hint: AtomicUsize::new(0),
        })
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    fn rotate(&self) {
        let next = (self.hint.load(Ordering::Relaxed) + 1) % self.nodes.len();
        self.hint.store(next, Ordering::Relaxed);
    }

    fn remember(&self, url: &str) {
        if let Some(i) = self.nodes.iter().position(|n| url.starts_with(n.as_str())) {
            self.hint.store(i, Ordering::Relaxed);
        }
    }

    pub async fn post(&self, path: &str, body: &Value, timeout: Duration) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body), timeout)
            .await
    }

    pub async fn get(&self, path: &str, timeout: Duration) -> Reply {
        self.send(reqwest::Method::GET, path, None, timeout).await
    }

    pub async fn delete(&self, path: &str, timeout: Duration) -> Reply {
        self.send(reqwest::Method::DELETE, path, None, timeout)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Reply {
        let first = self.hint.load(Ordering::Relaxed) % self.nodes.len();
        let mut url = format!("{}{path}", self.nodes[first]);
        for _ in 0..=REDIRECT_HOPS_MAX {
            let mut req = self.http.request(method.clone(), &url).timeout(timeout);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                // Not connected means not delivered: nothing can have happened.
                Err(e) if e.is_connect() => {
                    self.rotate();
                    return Reply::Fail("connect".to_owned());
                }
                Err(e) if e.is_timeout() => {
                    self.rotate();
                    return Reply::Info("timeout".to_owned());
                }
                Err(_) => {
                    self.rotate();
                    return Reply::Info("transport".to_owned());
                }
            };
            let status = resp.status().as_u16();
            if status == 307 {
                let Some(location) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                else {
                    return Reply::Fail("redirect_without_location".to_owned());
                };
                url = location.to_owned();
                self.remember(&url);
                continue;
            }
            let text = match resp.text().await {
                Ok(t) => t,
                Err(_) => return Reply::Info("transport".to_owned()),
            };
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                self.remember(&url);
                return Reply::Ok(json);
            }
            let code = json["error"]["code"].as_str().unwrap_or("unknown");
            let reply = classify(status, code);
            if matches!(
                ErrorCode::parse(code),
                Some(ErrorCode::NoLeader | ErrorCode::NoQuorum)
            ) {
                self.rotate();
            }
            return reply;
        }
        Reply::Fail("redirect_hops".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_classify_as_definite_or_unknown() {
        assert_eq!(classify(503, "no_leader"), Reply::Fail("no_leader".into()));
        assert_eq!(
            classify(503, "indeterminate"),
            Reply::Info("indeterminate".into())
        );
        assert_eq!(
            classify(409, "lease_lost"),
            Reply::Fail("lease_lost".into())
        );
        assert_eq!(classify(502, "unknown"), Reply::Info("http_502".into()));
    }
}
