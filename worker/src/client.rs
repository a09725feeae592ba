//! `Client`: one method per API call, plus `submit` / `submit_group` helpers that await
//! results (taskdist's `await put(task)`, proletariat's work groups) and event streams.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::Method;
use serde_json::Value;
use taskswarm_api as api;

use crate::error::ClientError;
use crate::sse;
use crate::transport::{Retry, Transport, TransportConfig};

/// The server's longest long-poll; waits are cut into pieces of at most this.
pub const WAIT_PIECE_MS: u64 = 30_000;
/// Concurrent result waits of one group.
pub const GROUP_WAITS_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time for one HTTP request (long-polls get their wait added on top).
    pub request_timeout: Duration,
    /// Time spent retrying one call through elections and dead nodes.
    pub retry_budget: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Sent as `Authorization: Bearer <token>` when the cluster requires one.
    pub api_token: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            api_token: None,
        }
    }
}

/// The servers of a local `taskswarm dev` cluster, used when `TASKSWARM_SERVERS` is unset.
pub const DEFAULT_SERVERS: &str =
    "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003";
/// The environment variable naming the servers (comma-separated URLs).
pub const SERVERS_ENV: &str = "TASKSWARM_SERVERS";

/// A handle to the cluster. Cheap to clone; clones share the leader they learned.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    request_timeout: Duration,
    key_prefix: String,
    key_counter: AtomicU64,
}

/// How a finished task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Succeeded(Value),
    /// Dead-lettered: attempts exhausted or not retryable.
    Failed(api::TaskErrorView),
    Cancelled,
    /// A timeout fired: `assign_timeout` or `deadline_exceeded`.
    Expired(api::TaskErrorView),
}

impl TaskOutcome {
    /// The outcome of a finished task; `None` while it is not finished.
    pub fn of(task: &api::TaskView) -> Option<TaskOutcome> {
        let error = || {
            task.error.clone().unwrap_or(api::TaskErrorView {
                code: "unknown".into(),
                message: String::new(),
            })
        };
        match task.state {
            api::TaskState::Succeeded => Some(TaskOutcome::Succeeded(
                task.result.clone().unwrap_or(Value::Null),
            )),
            api::TaskState::Failed => Some(TaskOutcome::Failed(error())),
            api::TaskState::Cancelled => Some(TaskOutcome::Cancelled),
            api::TaskState::Expired => Some(TaskOutcome::Expired(error())),
            api::TaskState::Scheduled | api::TaskState::Queued | api::TaskState::Running => None,
        }
    }
}

impl Client {
    /// A client for the cluster at `servers` (any nodes; more is better for failover).
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
    ) -> Result<Client, ClientError> {
        Self::with_config(servers, ClientConfig::default())
    }

    /// A client for the servers in `TASKSWARM_SERVERS` (comma-separated), or the local dev
    /// cluster when it is unset.
    pub fn from_env() -> Result<Client, ClientError> {
        let list = std::env::var(SERVERS_ENV).unwrap_or_else(|_| DEFAULT_SERVERS.to_owned());
        Self::new(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        )
    }

    pub fn with_config<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let transport = Transport::new(
            servers.into_iter().map(Into::into).collect(),
            TransportConfig {
                request_timeout: config.request_timeout,
                retry_budget: config.retry_budget,
                backoff_initial: config.backoff_initial,
                backoff_max: config.backoff_max,
                api_token: config.api_token.clone(),
            },
        )?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                request_timeout: config.request_timeout,
                key_prefix: key_prefix(),
                key_counter: AtomicU64::new(0),
            }),
        })
    }

    /// A fresh idempotency key, unique across processes (random prefix) and calls.
    pub fn new_key(&self) -> String {
        format!(
            "{}-{}",
            self.inner.key_prefix,
            self.inner.key_counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn call<Req: serde::Serialize + ?Sized, Resp: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Req>,
        retry: Retry,
    ) -> Result<Resp, ClientError> {
        self.inner
            .transport
            .call(method, path, body, retry, None)
            .await
    }

    async fn get<Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Resp, ClientError> {
        self.call::<(), Resp>(Method::GET, path, None, Retry::Idempotent)
            .await
    }

    // ---- producers ----------------------------------------------------------------------

    /// Enqueues one task. Without an idempotency key one is generated, so retries through
    /// timeouts and leader changes never create a second task.
    pub async fn enqueue(
        &self,
        mut task: api::EnqueueRequest,
    ) -> Result<api::EnqueueResponse, ClientError> {
        task.idempotency_key.get_or_insert_with(|| self.new_key());
        self.call(Method::POST, "/v1/tasks", Some(&task), Retry::Idempotent)
            .await
    }

    /// Enqueues several tasks in one request; one result per task, in order.
    pub async fn enqueue_batch(
        &self,
        mut tasks: Vec<api::EnqueueRequest>,
    ) -> Result<Vec<api::BatchItem>, ClientError> {
        for t in &mut tasks {
            t.idempotency_key.get_or_insert_with(|| self.new_key());
        }
        let resp: api::BatchEnqueueResponse = self
            .call(
                Method::POST,
                "/v1/tasks/batch",
                Some(&api::BatchEnqueueRequest { tasks }),
                Retry::Idempotent,
            )
            .await?;
        Ok(resp.results)
    }

    /// Enqueues and returns a handle to await the result.
    pub async fn submit(&self, task: api::EnqueueRequest) -> Result<TaskHandle, ClientError> {
        let r = self.enqueue(task).await?;
        Ok(TaskHandle {
            client: self.clone(),
            id: r.id,
            created: r.created,
            coalesced: r.coalesced,
        })
    }

    /// Enqueues a work group (every task gets `group`) and returns a handle that yields
    /// each item's outcome as it finishes, or all of them.
    pub async fn submit_group(
        &self,
        group: &str,
        tasks: Vec<api::EnqueueRequest>,
    ) -> Result<GroupHandle, ClientError> {
        let tasks = tasks.into_iter().map(|mut t| {
            t.group = Some(group.to_owned());
            t
        });
        let results = self.enqueue_batch(tasks.collect()).await?;
        let mut ids = Vec::with_capacity(results.len());
        for r in results {
            match r {
                api::BatchItem::Ok(e) => ids.push(e.id),
                api::BatchItem::Err(e) => {
                    return Err(ClientError::Rejected {
                        status: 400,
                        code: e.error.code,
                        message: e.error.message,
                    });
                }
            }
        }
        Ok(GroupHandle {
            client: self.clone(),
            group: group.to_owned(),
            ids,
        })
    }

    pub async fn task(&self, id: u64) -> Result<api::TaskView, ClientError> {
        self.get(&format!("/v1/tasks/{id}")).await
    }

    /// Waits until the task is finished (or `timeout` passes) and returns it.
    pub async fn wait(&self, id: u64, timeout: Duration) -> Result<api::TaskView, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let piece = (left.as_millis() as u64).min(WAIT_PIECE_MS);
            let path = format!("/v1/tasks/{id}?wait_ms={piece}");
            let request_timeout = self.inner_timeout() + Duration::from_millis(piece);
            let task: api::TaskView = self
                .inner
                .transport
                .call::<(), _>(
                    Method::GET,
                    &path,
                    None,
                    Retry::Idempotent,
                    Some(request_timeout),
                )
                .await?;
            if TaskOutcome::of(&task).is_some() || piece == 0 {
                return Ok(task);
            }
        }
    }

    fn inner_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    pub async fn events(&self, id: u64) -> Result<api::EventsResponse, ClientError> {
        self.get(&format!("/v1/tasks/{id}/events")).await
    }

    pub async fn list(
        &self,
        queue: Option<&str>,
        state: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<api::TaskListResponse, ClientError> {
        let mut q = format!("/v1/tasks?limit={limit}");
        if let Some(queue) = queue {
            q += &format!("&queue={}", encode(queue));
        }
        if let Some(state) = state {
            q += &format!("&state={}", encode(state));
        }
        if let Some(after) = after {
            q += &format!("&after={after}");
        }
        self.get(&q).await
    }

    pub async fn cancel(&self, id: u64) -> Result<api::StateResponse, ClientError> {
        // A repeat after an unknown outcome would answer `task_finished` for a cancel that
        // worked: report the unknown instead.
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/tasks/{id}/cancel"),
            None,
            Retry::AtMostOnce,
        )
        .await
    }

    pub async fn requeue(&self, id: u64) -> Result<api::StateResponse, ClientError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/tasks/{id}/requeue"),
            None,
            Retry::AtMostOnce,
        )
        .await
    }

    pub async fn queues(&self) -> Result<api::QueuesResponse, ClientError> {
        self.get("/v1/queues").await
    }

    pub async fn pause(&self, queue: &str) -> Result<api::QueueView, ClientError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/queues/{}/pause", encode(queue)),
            None,
            Retry::Idempotent,
        )
        .await
    }

    pub async fn resume(&self, queue: &str) -> Result<api::QueueView, ClientError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/queues/{}/resume", encode(queue)),
            None,
            Retry::Idempotent,
        )
        .await
    }

    /// Sends a message to every broadcast subscriber; returns its sequence number.
    pub async fn broadcast(&self, channel: &str, message: Value) -> Result<u64, ClientError> {
        let body = api::BroadcastRequest {
            channel: channel.to_owned(),
            message,
        };
        let v: Value = self
            .call(
                Method::POST,
                "/v1/broadcast",
                Some(&body),
                Retry::AtMostOnce,
            )
            .await?;
        v["seq"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("broadcast answer without seq".into()))
    }

    pub async fn cluster(&self) -> Result<api::ClusterStatus, ClientError> {
        self.get("/v1/cluster").await
    }

    pub async fn add_learner(
        &self,
        id: u64,
        addr: &str,
    ) -> Result<api::ClusterStatus, ClientError> {
        let body = api::AddLearnerRequest {
            id,
            addr: addr.to_owned(),
        };
        self.call(
            Method::POST,
            "/v1/cluster/learners",
            Some(&body),
            Retry::Idempotent,
        )
        .await
    }

    pub async fn change_membership(
        &self,
        voters: Vec<u64>,
    ) -> Result<api::ClusterStatus, ClientError> {
        self.call(
            Method::POST,
            "/v1/cluster/membership",
            Some(&api::MembershipRequest { voters }),
            Retry::Idempotent,
        )
        .await
    }

    /// Adds a node as a learner, waits up to `catch_up_ms` on the leader for it to catch
    /// up, then makes it a voter. The request lasts that long: give the client a
    /// `request_timeout` above it.
    pub async fn add_node(
        &self,
        id: u64,
        addr: &str,
        catch_up_ms: Option<u64>,
    ) -> Result<api::ClusterStatus, ClientError> {
        let body = api::AddNodeRequest {
            id,
            addr: addr.to_owned(),
            catch_up_ms,
        };
        self.call(
            Method::POST,
            "/v1/cluster/nodes",
            Some(&body),
            Retry::AtMostOnce,
        )
        .await
    }

    /// Removes a voter or learner; `force` allows leaving fewer than 3 voters.
    pub async fn remove_node(
        &self,
        id: u64,
        force: bool,
    ) -> Result<api::ClusterStatus, ClientError> {
        let path = format!("/v1/cluster/nodes/{id}?force={force}");
        self.call::<(), _>(Method::DELETE, &path, None, Retry::AtMostOnce)
            .await
    }

    // ---- workers ------------------------------------------------------------------------

    /// Claims tasks, long-polling up to `req.wait_ms`. An unknown outcome is reported, not
    /// retried: a repeated claim could lease tasks nobody works on until they expire.
    pub async fn claim(
        &self,
        req: &api::ClaimRequest,
    ) -> Result<Vec<api::ClaimedTask>, ClientError> {
        let timeout = self.inner_timeout() + Duration::from_millis(req.wait_ms);
        let resp: api::ClaimResponse = self
            .inner
            .transport
            .call(
                Method::POST,
                "/v1/claim",
                Some(req),
                Retry::AtMostOnce,
                Some(timeout),
            )
            .await?;
        Ok(resp.tasks)
    }

    pub async fn heartbeat(
        &self,
        id: u64,
        req: &api::HeartbeatRequest,
    ) -> Result<api::HeartbeatResponse, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/tasks/{id}/heartbeat"),
            Some(req),
            Retry::Idempotent,
        )
        .await
    }

    /// Renews every lease of a worker in one request.
    pub async fn heartbeat_batch(
        &self,
        req: &api::BatchHeartbeatRequest,
    ) -> Result<Vec<api::HeartbeatItem>, ClientError> {
        let resp: api::BatchHeartbeatResponse = self
            .call(Method::POST, "/v1/heartbeat", Some(req), Retry::Idempotent)
            .await?;
        Ok(resp.results)
    }

    /// Completing twice with the same token is acknowledged twice, so this retries.
    pub async fn complete(
        &self,
        id: u64,
        token: u64,
        result: Value,
    ) -> Result<api::StateResponse, ClientError> {
        let body = api::CompleteRequest {
            token,
            result,
            next: None,
        };
        self.call(
            Method::POST,
            &format!("/v1/tasks/{id}/complete"),
            Some(&body),
            Retry::Idempotent,
        )
        .await
    }

    /// Completes several tasks in one request; one result per item, in order (a refused
    /// item is `ItemResult::Err`). Retried as a whole through unknown outcomes: each
    /// complete is idempotent with its token.
    pub async fn complete_batch(
        &self,
        items: Vec<api::CompleteItem>,
    ) -> Result<Vec<api::CompleteItemResult>, ClientError> {
        let resp: api::BatchCompleteResponse = self
            .call(
                Method::POST,
                "/v1/complete",
                Some(&api::BatchCompleteRequest { items }),
                Retry::Idempotent,
            )
            .await?;
        Ok(resp.results)
    }

    /// Completes and, only if the completion holds, claims `next` in the same Raft
    /// command; the claimed tasks are in the answer's `next`. Sent at most once: a retry
    /// after an unknown outcome could lease tasks whose answer is lost. Retry with
    /// [`Client::complete`], which is idempotent.
    pub async fn complete_and_claim(
        &self,
        id: u64,
        token: u64,
        result: Value,
        next: &api::ClaimRequest,
    ) -> Result<api::StateResponse, ClientError> {
        let body = api::CompleteRequest {
            token,
            result,
            next: Some(next.clone()),
        };
        let timeout = self.inner_timeout() + Duration::from_millis(next.wait_ms);
        self.inner
            .transport
            .call(
                Method::POST,
                &format!("/v1/tasks/{id}/complete"),
                Some(&body),
                Retry::AtMostOnce,
                Some(timeout),
            )
            .await
    }

    pub async fn fail(
        &self,
        id: u64,
        req: &api::FailRequest,
    ) -> Result<api::StateResponse, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/tasks/{id}/fail"),
            Some(req),
            Retry::AtMostOnce,
        )
        .await
    }

    pub async fn release(
        &self,
        id: u64,
        token: u64,
        delay_ms: u64,
    ) -> Result<api::StateResponse, ClientError> {
        let body = api::ReleaseRequest { token, delay_ms };
        self.call(
            Method::POST,
            &format!("/v1/tasks/{id}/release"),
            Some(&body),
            Retry::AtMostOnce,
        )
        .await
    }

    // ---- streams ------------------------------------------------------------------------

    /// Every lifecycle event from now on (optionally one queue's), from one node. The
    /// stream ends if that node goes away; subscribe again to continue.
    pub async fn watch(
        &self,
        queue: Option<&str>,
    ) -> Result<impl Stream<Item = Result<api::EventView, ClientError>>, ClientError> {
        let path = match queue {
            Some(q) => format!("/v1/events?queue={}", encode(q)),
            None => "/v1/events".to_owned(),
        };
        self.stream(&path).await
    }

    /// A task's history, then its new events until it finishes.
    pub async fn task_events(
        &self,
        id: u64,
    ) -> Result<impl Stream<Item = Result<api::EventView, ClientError>>, ClientError> {
        self.stream(&format!("/v1/tasks/{id}/events")).await
    }

    async fn stream(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<api::EventView, ClientError>>, ClientError> {
        let node = self.inner.transport.pick();
        let resp = self
            .inner
            .transport
            .http()
            .get(format!("{node}{path}"))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .headers(self.inner.transport.auth_headers())
            .send()
            .await
            .map_err(|e| ClientError::Unavailable {
                elapsed: Duration::ZERO,
                message: e.to_string(),
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body: api::ErrorBody = resp
                .json()
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            return Err(ClientError::Rejected {
                status,
                code: body.error.code,
                message: body.error.message,
            });
        }
        Ok(sse::events(resp).filter_map(|e| async move {
            match e {
                Ok(e) if e.event == "lagged" => None,
                Ok(e) => Some(
                    serde_json::from_str(&e.data)
                        .map_err(|err| ClientError::Protocol(err.to_string())),
                ),
                Err(err) => Some(Err(err)),
            }
        }))
    }
}

/// A submitted task.
#[derive(Debug, Clone)]
pub struct TaskHandle {
    client: Client,
    pub id: u64,
    /// False when the idempotency key matched an earlier task.
    pub created: bool,
    /// True when it joined an unfinished task with the same coalesce key.
    pub coalesced: bool,
}

impl TaskHandle {
    /// Waits for the task to finish, up to `timeout`. `Ok(None)`: still running.
    pub async fn wait(&self, timeout: Duration) -> Result<Option<TaskOutcome>, ClientError> {
        let task = self.client.wait(self.id, timeout).await?;
        Ok(TaskOutcome::of(&task))
    }
}

/// A submitted work group.
#[derive(Debug, Clone)]
pub struct GroupHandle {
    client: Client,
    pub group: String,
    /// Task ids in submission order.
    pub ids: Vec<u64>,
}

impl GroupHandle {
    /// Each item's outcome as it finishes: (index in the submission, task id, outcome).
    pub fn results(
        &self,
        timeout: Duration,
    ) -> impl Stream<Item = (usize, u64, Result<Option<TaskOutcome>, ClientError>)> + '_ {
        futures::stream::iter(self.ids.iter().copied().enumerate())
            .map(move |(i, id)| async move {
                let outcome = self
                    .client
                    .wait(id, timeout)
                    .await
                    .map(|t| TaskOutcome::of(&t));
                (i, id, outcome)
            })
            .buffer_unordered(GROUP_WAITS_MAX)
    }

    /// Every item's outcome, in submission order.
    pub async fn wait_all(
        &self,
        timeout: Duration,
    ) -> Vec<Result<Option<TaskOutcome>, ClientError>> {
        let mut out: Vec<Option<Result<Option<TaskOutcome>, ClientError>>> =
            vec![None; self.ids.len()];
        let mut results = std::pin::pin!(self.results(timeout));
        while let Some((i, _, r)) = results.next().await {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("every item answered"))
            .collect()
    }
}

/// Percent-encodes a path or query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A per-client random prefix for idempotency keys. Seeded by the standard library's
/// randomly keyed hasher, mixed with the time and process id.
fn key_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("c{:016x}", h.finish())
}
