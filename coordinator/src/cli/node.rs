//! `taskswarm node`: one coordinator process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use taskswarm_coordinator::raft::snapshot_cadence::LOG_PERCENT_MAX as SNAPSHOT_LOG_PERCENT_MAX;
use taskswarm_coordinator::raft::{NodeConfig, NodeId};

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, env = "TASKSWARM_ID")]
    pub id: NodeId,
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long, env = "TASKSWARM_LISTEN")]
    pub listen: SocketAddr,
    /// URL other nodes and clients use to reach this node. Defaults to this node's entry
    /// in --peers (or http://LISTEN when --peers does not list it).
    #[arg(long, env = "TASKSWARM_ADVERTISE")]
    pub advertise: Option<String>,
    /// Where the Raft log, vote and snapshots live.
    #[arg(long, env = "TASKSWARM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The initial voters: 1=http://127.0.0.1:7001,2=http://... The lowest id forms the
    /// cluster on its first start.
    #[arg(long, env = "TASKSWARM_PEERS")]
    pub peers: String,
    /// Shared secret every Raft RPC must carry.
    #[arg(long, env = "TASKSWARM_CLUSTER_SECRET")]
    pub cluster_secret: String,
    /// How often the leader sends an empty AppendEntries to an idle follower.
    #[arg(long, env = "TASKSWARM_HEARTBEAT_MS", default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// The leader lease: a voter that heard from its leader this recently refuses to vote
    /// (pre-vote included), a leader without a quorum acknowledgement this long answers
    /// `no_quorum`, and a follower stands for election after at least this much silence.
    #[arg(long, env = "TASKSWARM_ELECTION_MIN_MS", default_value_t = 500)]
    pub election_min_ms: u64,
    /// A follower stands after a silence drawn from [election-min-ms, election-max-ms].
    #[arg(long, env = "TASKSWARM_ELECTION_MAX_MS", default_value_t = 800)]
    pub election_max_ms: u64,
    /// A write not committed in this time is answered `indeterminate`.
    #[arg(long, env = "TASKSWARM_WRITE_TIMEOUT_MS", default_value_t = 5_000)]
    pub write_timeout_ms: u64,
    /// Propose every command as its own Raft entry (for comparison benchmarks).
    #[arg(long, env = "TASKSWARM_NO_GROUP_COMMIT")]
    pub no_group_commit: bool,
    /// Send and serve AppendEntries as plain HTTP POSTs only, without the stream a leader
    /// opens to each follower by an HTTP upgrade on this port. For a network path between
    /// nodes that does not pass upgrades (some proxies and service meshes).
    #[arg(long, env = "TASKSWARM_NO_APPEND_STREAM")]
    pub no_append_stream: bool,
    /// Snapshot and purge the log after at least this many entries (see
    /// --snapshot-log-percent).
    #[arg(long, env = "TASKSWARM_SNAPSHOT_EVERY", default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Snapshot only once the log written since the last snapshot is at least this
    /// percentage of that snapshot's size, so that a large state is not re-encoded every
    /// few seconds. The log (on disk, and replayed at a restart) then grows up to this
    /// share of the state. 0: every --snapshot-every entries regardless.
    #[arg(long, env = "TASKSWARM_SNAPSHOT_LOG_PERCENT", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(0..=SNAPSHOT_LOG_PERCENT_MAX))]
    pub snapshot_log_percent: u64,
    /// Log entries kept behind a snapshot for lagging followers.
    #[arg(long, env = "TASKSWARM_SNAPSHOT_KEEP_LOGS", default_value_t = 1_000)]
    pub snapshot_keep_logs: u64,
    /// Tasks held at once, finished ones included, before enqueue answers queue_full.
    #[arg(long, env = "TASKSWARM_TASKS_MAX", default_value_t = taskswarm_state_machine::limits::DEFAULT_TASKS_MAX)]
    pub tasks_max: u64,
    /// How long finished tasks and idempotency keys are kept. The leader writes its
    /// setting into the log, so give every node the same value.
    #[arg(long, env = "TASKSWARM_RETENTION_MS", default_value_t = taskswarm_state_machine::limits::DEFAULT_RETENTION_MS)]
    pub retention_ms: u64,
    /// A follower forwards requests for the leader to it and returns the answer, instead
    /// of a 307 to the leader's advertised address. For clients that cannot reach that
    /// address (Docker published ports, NAT); costs one hop. A client can still ask for
    /// the 307 with the header `x-taskswarm-no-forward: 1`.
    #[arg(long, env = "TASKSWARM_FORWARD_TO_LEADER")]
    pub forward_to_leader: bool,
    /// The highest behaviour version this node accepts (default: its build's highest).
    /// While any member accepts less, the leader does not raise the cluster's version, so
    /// during a rolling upgrade the old build can still be rolled back to. A node refuses
    /// to start on a state above it. See deploy/README.md, "Rolling upgrade".
    #[arg(long, env = "TASKSWARM_BEHAVIOUR_VERSION_MAX", default_value_t = taskswarm_state_machine::BEHAVIOUR_VERSION_MAX)]
    pub behaviour_version_max: u32,
    /// Client writes are refused (`503 storage_full`, reads still work) while the data
    /// directory's file system has less than this free. Keep it above a snapshot's size.
    #[arg(long, env = "TASKSWARM_DISK_FREE_MIN_MB", default_value_t = taskswarm_coordinator::storage::disk_space::DISK_FREE_MIN_MB_DEFAULT)]
    pub disk_free_min_mb: u64,
    /// Never form a new cluster: wait to be added with `taskswarm cluster add-node`. For a
    /// node that replaces a dead one with an empty disk. (Without it, the lowest id in
    /// --peers forms a cluster on an empty disk unless a peer already serves one.)
    #[arg(long, env = "TASKSWARM_JOIN")]
    pub join: bool,
    /// Threads running the node's async work (HTTP, Raft, apply); 0 means one per core.
    /// Nodes sharing a machine should split its cores between them (`taskswarm dev` does):
    /// each one running a thread per core makes threads wake each other across nodes and
    /// then wait for a core (bench/README.md, "Where taskswarm's time goes").
    #[arg(long, env = "TASKSWARM_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
}

/// Most runtime worker threads a node may be given (`--worker-threads`).
pub const WORKER_THREADS_MAX: usize = 1024;

/// The runtime a command runs on: `worker_threads` threads, or one per core when 0.
pub fn runtime(worker_threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    if worker_threads > WORKER_THREADS_MAX {
        bail!("--worker-threads must be at most {WORKER_THREADS_MAX}, not {worker_threads}");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Secrets that appear in this project's examples (deploy/.env.example, older compose
/// files): a node refuses to start with them. `taskswarm dev` makes its own.
pub const EXAMPLE_SECRETS: [&str; 2] = ["change-me", "change-me-to-a-long-random-string"];

pub fn parse_peers(text: &str) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, url) = item
            .split_once('=')
            .with_context(|| format!("peer {item:?} is not ID=URL"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .with_context(|| format!("peer id {id:?} is not a number"))?;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            bail!("peer {id} url {url:?} must start with http:// or https://");
        }
        if peers
            .insert(id, url.trim_end_matches('/').to_owned())
            .is_some()
        {
            bail!("peer {id} is listed twice");
        }
    }
    if peers.is_empty() {
        bail!("--peers must list at least this node");
    }
    Ok(peers)
}

impl NodeArgs {
    pub fn config(&self) -> anyhow::Result<NodeConfig> {
        let peers = parse_peers(&self.peers)?;
        if self.id == 0 {
            bail!("--id must be positive");
        }
        let advertise = self
            .advertise
            .clone()
            .or_else(|| peers.get(&self.id).cloned())
            .unwrap_or_else(|| format!("http://{}", self.listen));
        if let Some(listed) = peers.get(&self.id) {
            if listed != advertise.trim_end_matches('/') {
                bail!(
                    "--peers lists node {} at {listed} but it advertises {advertise}",
                    self.id
                );
            }
        }
        if self.cluster_secret.is_empty() {
            bail!("--cluster-secret must not be empty");
        }
        if EXAMPLE_SECRETS.contains(&self.cluster_secret.as_str()) {
            bail!(
                "--cluster-secret is the example value {:?}: anyone who read the docs could join or \
                 drive this cluster's Raft; set a secret of your own (e.g. `openssl rand -hex 16`)",
                self.cluster_secret
            );
        }
        if self.heartbeat_ms == 0
            || self.election_min_ms < 2 * self.heartbeat_ms
            || self.election_max_ms <= self.election_min_ms
        {
            bail!("need 0 < 2 × heartbeat-ms <= election-min-ms < election-max-ms");
        }
        let build_max = taskswarm_state_machine::BEHAVIOUR_VERSION_MAX;
        if !(1..=build_max).contains(&self.behaviour_version_max) {
            bail!(
                "--behaviour-version-max {} is outside 1..={build_max} (this build's highest)",
                self.behaviour_version_max
            );
        }
        Ok(NodeConfig {
            id: self.id,
            advertise,
            data_dir: self.data_dir.clone(),
            peers,
            cluster_secret: self.cluster_secret.clone(),
            heartbeat_interval_ms: self.heartbeat_ms,
            election_timeout_min_ms: self.election_min_ms,
            election_timeout_max_ms: self.election_max_ms,
            write_timeout_ms: self.write_timeout_ms,
            group_commit: !self.no_group_commit,
            append_stream: !self.no_append_stream,
            snapshot_every_entries: self.snapshot_every,
            snapshot_log_percent: self.snapshot_log_percent,
            snapshot_keep_logs: self.snapshot_keep_logs,
            state: taskswarm_state_machine::Config {
                retention_ms: self.retention_ms,
                tasks_max: self.tasks_max,
            },
            behaviour_version_max: self.behaviour_version_max,
            disk_free_min_mb: self.disk_free_min_mb,
            join: self.join,
        })
    }
}

/// `api_token` (the global `--api-token`): when set, clients must send it as a bearer
/// token (health probes excepted).
pub async fn run(args: NodeArgs, api_token: Option<String>) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let span = tracing::info_span!("node", id = cfg.id);
    let _enter = span.enter();
    taskswarm_coordinator::server::serve(
        cfg,
        args.listen,
        api_token,
        args.forward_to_leader,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
