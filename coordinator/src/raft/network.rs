//! The Raft network client: each RPC is an HTTP POST of a versioned bincode body to the
//! peer's `/raft/*` endpoint, carrying the cluster secret, except AppendEntries, which
//! travel on one stream per peer (`append_stream.rs`) when the peer serves it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use super::append_stream::{
    self, Answer, Called, StreamError, StreamSlot, CONNECT_TIMEOUT_MS, UPGRADE_RETRY_MS,
};
use super::behaviour::{BehaviourReports, BEHAVIOUR_MAX_HEADER};
use super::cluster_id::{ClusterIdentity, CLUSTER_ID_HEADER};
use super::pre_vote::{PreVoteRequest, PreVoteResponse};
use super::wire::{self, APPEND_PATH, CLUSTER_SECRET_HEADER, RPC_BODY_BYTES_MAX};
use crate::storage::{clamp_commit, LogMarks};
use crate::types::{NodeId, TypeConfig};

/// Builds one connection per peer; all share one HTTP client (and its connection pool).
#[derive(Debug, Clone)]
pub struct Network {
    /// Whether AppendEntries go on a stream when the peer serves one.
    append_stream: bool,
    http: reqwest::Client,
    secret: String,
    identity: Arc<ClusterIdentity>,
    reports: Arc<BehaviourReports>,
    /// The last entry on disk in this node's log: the highest commit point it may send.
    durable: watch::Receiver<LogMarks>,
}

impl Network {
    /// `reports` receives each answer's behaviour header (`behaviour.rs`); `durable` is the
    /// log store's durable mark (`storage/log_durable.rs`).
    pub fn new(
        append_stream: bool,
        secret: String,
        identity: Arc<ClusterIdentity>,
        reports: Arc<BehaviourReports>,
        durable: watch::Receiver<LogMarks>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            // Node-to-node traffic goes direct, as the append stream does: a proxy in the
            // environment (HTTP_PROXY) is for the node's own outbound requests.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client with static settings builds");
        Self {
            append_stream,
            http,
            secret,
            identity,
            reports,
            durable,
        }
    }
}

impl Network {
    /// A connection to one peer, for openraft's RPCs and our pre-vote.
    pub(crate) fn connect(&self, target: NodeId, addr: &str) -> Connection {
        let base = addr.trim_end_matches('/').to_owned();
        let append_url = reqwest::Url::parse(&format!("{base}{APPEND_PATH}")).ok();
        // The stream is plain TCP: only for a peer reached over plain HTTP, and only if the
        // upgrade request can carry its address and the secret.
        let stream_addr = append_url
            .as_ref()
            .filter(|url| self.append_stream && url.scheme() == "http")
            .and_then(|url| {
                Some(format!(
                    "{}:{}",
                    url.host_str()?,
                    url.port_or_known_default()?
                ))
            })
            .filter(|addr| append_stream::upgrade_request(addr, &self.secret, None).is_some());
        Connection {
            target,
            append_url,
            stream_addr,
            stream: StreamSlot::default(),
            stream_refused_at: None,
            base,
            http: self.http.clone(),
            secret: self.secret.clone(),
            identity: Arc::clone(&self.identity),
            reports: Arc::clone(&self.reports),
            durable: self.durable.clone(),
            answered: false,
            timeouts_in_a_row: 0,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        self.connect(target, &node.addr)
    }
}

#[derive(Debug)]
pub struct Connection {
    target: NodeId,
    base: String,
    /// `base` + [`APPEND_PATH`], parsed once (`None` if it does not parse: then every call
    /// builds it from `base` and reports the same error as the other RPCs). Parsing it per
    /// AppendEntries, IDNA processing included, was ~1.7 % of a loaded leader's CPU.
    append_url: Option<reqwest::Url>,
    /// `host:port` of the peer for the AppendEntries stream (`None`: POSTs only).
    stream_addr: Option<String>,
    stream: StreamSlot,
    /// When the peer last refused the upgrade (an older build): POSTs until
    /// `UPGRADE_RETRY_MS` later.
    stream_refused_at: Option<Instant>,
    http: reqwest::Client,
    secret: String,
    identity: Arc<ClusterIdentity>,
    reports: Arc<BehaviourReports>,
    durable: watch::Receiver<LogMarks>,
    /// The peer has answered an AppendEntries on this connection. Until then a first
    /// timeout more likely means a peer still starting than a batch too large for the
    /// deadline: halving at once was reported as "payload too large" errors at every
    /// start. A second timeout in a row halves anyway (a live peer far behind on large
    /// entries must still catch up).
    answered: bool,
    timeouts_in_a_row: u32,
}

/// Why one RPC failed before the peer could answer it.
enum CallError {
    Unreachable(std::io::Error),
    /// No answer within our deadline (a little inside openraft's own).
    TimedOut(String),
    /// The peer refused the body as too large.
    TooLarge,
    Network(String),
}

/// openraft gives an AppendEntries exactly one heartbeat interval, then reports a plain
/// timeout and resends the same batch: a follower far behind on large entries would
/// never catch up. Our own deadline ends a little earlier so that a batch of several
/// entries that did not make it is reported as too large instead, and openraft halves it.
pub const RPC_DEADLINE_MARGIN_PERCENT: u32 = 85;

impl Connection {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError> {
        let request = match &self.append_url {
            Some(url) if path == APPEND_PATH => self.http.post(url.clone()),
            _ => self.http.post(format!("{}{path}", self.base)),
        };
        let mut request = request.header(CLUSTER_SECRET_HEADER, &self.secret);
        if let Some(id) = self.identity.header() {
            request = request.header(CLUSTER_ID_HEADER, id);
        }
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .timeout(ttl * RPC_DEADLINE_MARGIN_PERCENT / 100)
            .body(wire::encode(req))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    CallError::Unreachable(std::io::Error::other(e))
                } else if e.is_timeout() {
                    CallError::TimedOut(e.to_string())
                } else {
                    CallError::Network(e.to_string())
                }
            })?;
        let status = response.status();
        let behaviour_max = response.headers().get(BEHAVIOUR_MAX_HEADER).cloned();
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            return Err(CallError::TooLarge);
        }
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                CallError::TimedOut(e.to_string())
            } else {
                CallError::Network(e.to_string())
            }
        })?;
        if !status.is_success() {
            return Err(CallError::Network(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        self.reports.record(
            self.target,
            behaviour_max.as_ref().map(|v| v.as_bytes()),
            std::time::Instant::now(),
        );
        wire::decode(&body).map_err(|e| CallError::Network(e.to_string()))
    }

    fn lift<Resp, E: std::error::Error>(
        &self,
        outcome: Result<Result<Resp, RaftError<NodeId, E>>, CallError>,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        match outcome {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(CallError::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(CallError::TimedOut(msg)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(msg),
            ))),
            Err(CallError::TooLarge) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other("body too large"),
            ))),
            Err(CallError::Network(msg)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(msg),
            ))),
        }
    }
}

impl Connection {
    /// An AppendEntries on the stream when the peer serves it, else a POST.
    async fn call_append(
        &mut self,
        rpc: &AppendEntriesRequest<TypeConfig>,
        ttl: Duration,
    ) -> Result<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>, CallError> {
        let started = Instant::now();
        let due = self
            .stream_refused_at
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(UPGRADE_RETRY_MS));
        if due && self.stream_addr.is_some() {
            let frame = append_stream::request_frame(rpc);
            if append_stream::frame_body_len(&frame) > RPC_BODY_BYTES_MAX {
                return Err(CallError::TooLarge);
            }
            if let Some(outcome) = self.stream_call(&frame, ttl).await {
                return outcome;
            }
        }
        // The POST gets what is left of the call's time, not a deadline of its own.
        self.call(APPEND_PATH, rpc, ttl.saturating_sub(started.elapsed()))
            .await
    }

    /// One request on the stream; `None` if the peer will not have one (send a POST).
    async fn stream_call<Resp: DeserializeOwned>(
        &mut self,
        frame: &[u8],
        ttl: Duration,
    ) -> Option<Result<Resp, CallError>> {
        let deadline = ttl * RPC_DEADLINE_MARGIN_PERCENT / 100;
        let opening = !self.stream.is_open();
        let addr = self.stream_addr.as_deref()?;
        let (secret, identity) = (&self.secret, &self.identity);
        let upgrade = || {
            append_stream::upgrade_request(addr, secret, identity.header().as_ref())
                .expect("checked when the connection was made; a cluster id is hex")
        };
        let called = tokio::time::timeout(deadline, self.stream.call(addr, upgrade, frame)).await;
        let outcome = match called {
            Err(_) => {
                if opening {
                    // A network path that swallows upgrades must not stall replication:
                    // POSTs for a while.
                    self.refuse_stream("no answer to the upgrade in time");
                }
                Err(CallError::TimedOut(format!(
                    "no answer on the append stream within {deadline:?}"
                )))
            }
            Ok(Ok(Called::Answer(Answer::Answered(resp)))) => {
                self.reports
                    .record(self.target, self.stream.behaviour_max(), Instant::now());
                Ok(resp)
            }
            Ok(Ok(Called::Answer(Answer::TooLarge))) => Err(CallError::TooLarge),
            Ok(Ok(Called::Answer(Answer::Refused(why)))) => Err(CallError::Network(why)),
            Ok(Ok(Called::UpgradeRefused(status))) => {
                self.refuse_stream(&format!("upgrade answered {status}"));
                return None;
            }
            Ok(Err(StreamError::Connect(e))) => Err(CallError::Unreachable(e)),
            Ok(Err(e)) => Err(CallError::Network(e.to_string())),
        };
        Some(outcome)
    }

    /// POSTs to this peer until `UPGRADE_RETRY_MS` from now. Logged once per connection:
    /// a peer started with `--no-append-stream` refuses every time.
    fn refuse_stream(&mut self, why: &str) {
        if self.stream_refused_at.is_none() {
            tracing::info!(
                target_node = self.target,
                why,
                "no append stream to this peer; sending POSTs"
            );
        } else {
            tracing::debug!(
                target_node = self.target,
                why,
                "no append stream to this peer"
            );
        }
        self.stream_refused_at = Some(Instant::now());
    }

    fn halve(
        &self,
        entries: u64,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        tracing::debug!(
            target_node = self.target,
            entries,
            "append too large for one RPC; halving"
        );
        Err(RPCError::PayloadTooLarge(
            PayloadTooLarge::new_entries_hint(entries / 2),
        ))
    }

    /// Asks the peer whether it would vote for us (`pre_vote.rs`). Any failure, including
    /// a peer too old to know the endpoint, counts as a no: not standing is always safe.
    pub(crate) async fn pre_vote(
        &self,
        req: &PreVoteRequest,
        ttl: Duration,
    ) -> Result<PreVoteResponse, String> {
        match self.call("/raft/prevote", req, ttl).await {
            Ok(resp) => Ok(resp),
            Err(CallError::Unreachable(e)) => Err(format!("unreachable: {e}")),
            Err(CallError::TimedOut(e) | CallError::Network(e)) => Err(e),
            Err(CallError::TooLarge) => Err("body too large".to_owned()),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        // Rule 2 of `storage/log_durable.rs`: no follower learns a commit point that is
        // not yet on this leader's disk.
        rpc.leader_commit = clamp_commit(rpc.leader_commit, self.durable.borrow().durable);
        let entries = rpc.entries.len() as u64;
        let outcome = self.call_append(&rpc, option.hard_ttl()).await;
        if outcome.is_ok() {
            self.answered = true;
        }
        let timed_out = matches!(outcome, Err(CallError::TimedOut(_)));
        let timed_out_before = self.timeouts_in_a_row > 0;
        self.timeouts_in_a_row = if timed_out {
            self.timeouts_in_a_row + 1
        } else {
            0
        };
        match outcome {
            // Several entries did not fit in the body limit, or in the time (from a peer
            // that answers, or a second time in a row): ask for half.
            Err(CallError::TooLarge) if entries > 1 => self.halve(entries),
            Err(CallError::TimedOut(_)) if entries > 1 && (self.answered || timed_out_before) => {
                self.halve(entries)
            }
            outcome => self.lift(outcome),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let outcome = self.call("/raft/snapshot", &rpc, option.hard_ttl()).await;
        self.lift(outcome)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let outcome = self.call("/raft/vote", &rpc, option.hard_ttl()).await;
        self.lift(outcome)
    }
}
