//! `Worker`: the builder that checks a configuration, and the running worker (claim loops,
//! heartbeat loop, runners) with its handle and graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::claim::claim_loop;
use super::handler::{Handler, IntoHandler};
use super::heartbeat::heartbeat_loop;
use super::lease::{CancelReason, LeaseTable};
use super::limits::*;
use super::shared::{Config, Shared};
use super::slots::Slots;
use super::stats::{Counters, WorkerStats};
use crate::{Client, ClientError};

/// Configures a worker: `Worker::builder(client).queue("q").handler("kind", f).build()`.
#[derive(Debug)]
pub struct WorkerBuilder {
    client: Client,
    queues: Vec<String>,
    handlers: BTreeMap<String, Handler>,
    fallback: Option<Handler>,
    slots: usize,
    reserved: Vec<(i32, usize)>,
    lease_ms: u64,
    heartbeat_interval: Option<Duration>,
    claim_wait: Duration,
    grace: Duration,
    handler_stop_wait: Duration,
    claim_on_complete: bool,
    worker_id: Option<String>,
}

impl WorkerBuilder {
    /// Adds a queue to claim from (`default` when none is named).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }

    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues.extend(queues.into_iter().map(Into::into));
        self
    }

    /// Registers the handler of a kind (`async fn(TaskContext, Value) -> Result<Value,
    /// TaskError>`, a closure, or a `compose`d handler). A second one for a kind replaces
    /// the first.
    pub fn handler(mut self, kind: impl Into<String>, handler: impl IntoHandler) -> Self {
        self.handlers.insert(kind.into(), handler.into_handler());
        self
    }

    /// Runs tasks of every kind that has no handler of its own; claims then take any kind
    /// (the `--exec` worker of the command line is one).
    pub fn fallback(mut self, handler: impl IntoHandler) -> Self {
        self.fallback = Some(handler.into_handler());
        self
    }

    /// General slots: tasks of any priority run at once up to this many.
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = n;
        self
    }

    /// Adds `n` slots usable only by tasks with `priority >= min_priority`, on top of the
    /// general ones: a busy worker still takes urgent work.
    pub fn reserve(mut self, min_priority: i32, n: usize) -> Self {
        self.reserved.push((min_priority, n));
        self
    }

    /// The lease asked for on each claim. Heartbeats go out every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease_ms = lease.as_millis().min(u128::from(u64::MAX)) as u64;
        self
    }

    /// Overrides the heartbeat interval (a third of the lease by default). An interval
    /// longer than the lease lets every lease run out locally: only for tests of that path.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// Longest claim long-poll (capped at a third of the lease, see `CLAIM_WAIT_MAX`).
    pub fn claim_wait(mut self, wait: Duration) -> Self {
        self.claim_wait = wait;
        self
    }

    /// Grace period of `Worker::run`'s shutdown and of a dropped handle.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a cancelled handler may take to return before it is aborted.
    pub fn handler_stop_wait(mut self, wait: Duration) -> Self {
        self.handler_stop_wait = wait;
        self
    }

    /// Whether a completion also claims the slot's next task in the same request and Raft
    /// command (on by default): a busy worker then pays one round trip and one commit per
    /// task instead of two. The next lease is granted only if the completion held.
    pub fn claim_on_complete(mut self, on: bool) -> Self {
        self.claim_on_complete = on;
        self
    }

    /// The worker's name in leases and events (a unique one is made up otherwise).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Checks the configuration against the server's limits.
    pub fn build(mut self) -> Result<Worker, ClientError> {
        let bad = |m: String| Err(ClientError::InvalidArgument(m));
        if self.queues.is_empty() {
            self.queues.push(taskswarm_api::default_queue());
        }
        self.queues.sort();
        self.queues.dedup();
        if self.queues.len() > QUEUES_MAX {
            return bad(format!(
                "at most {QUEUES_MAX} queues, not {}",
                self.queues.len()
            ));
        }
        if self.handlers.is_empty() && self.fallback.is_none() {
            return bad("register at least one handler".into());
        }
        if self.handlers.len() > KINDS_MAX {
            return bad(format!(
                "at most {KINDS_MAX} kinds, not {}",
                self.handlers.len()
            ));
        }
        let worker_id = self.worker_id.unwrap_or_else(default_worker_id);
        for name in self
            .queues
            .iter()
            .chain(self.handlers.keys())
            .chain([&worker_id])
        {
            if name.is_empty() || name.len() > NAME_BYTES_MAX {
                return bad(format!("{name:?}: names are 1 to {NAME_BYTES_MAX} bytes"));
            }
        }
        for &(min, n) in &self.reserved {
            if !(PRIORITY_MIN..=PRIORITY_MAX).contains(&min) || n == 0 {
                return bad(format!("reserve({min}, {n}): min_priority must be {PRIORITY_MIN}..={PRIORITY_MAX} and n at least 1"));
            }
        }
        let total = self.slots + self.reserved.iter().map(|(_, n)| n).sum::<usize>();
        if !(1..=SLOTS_MAX).contains(&total) {
            return bad(format!(
                "slots (reserved included) must be 1..={SLOTS_MAX}, not {total}"
            ));
        }
        if !(LEASE_MS_MIN..=LEASE_MS_MAX).contains(&self.lease_ms) {
            return bad(format!(
                "lease must be {LEASE_MS_MIN}..={LEASE_MS_MAX} ms, not {}",
                self.lease_ms
            ));
        }
        let lease = Duration::from_millis(self.lease_ms);
        let heartbeat_interval = match self.heartbeat_interval {
            Some(i) if i < HEARTBEAT_INTERVAL_MIN => {
                return bad(format!(
                    "heartbeat interval must be at least {HEARTBEAT_INTERVAL_MIN:?}"
                ))
            }
            Some(i) => i,
            None => {
                (lease / HEARTBEAT_DIVISOR).clamp(HEARTBEAT_INTERVAL_MIN, HEARTBEAT_INTERVAL_MAX)
            }
        };
        let config = Config {
            worker_id,
            queues: self.queues,
            lease_ms: self.lease_ms,
            heartbeat_interval,
            claim_wait: self
                .claim_wait
                .min(CLAIM_WAIT_MAX)
                .min(lease / HEARTBEAT_DIVISOR),
            grace: self.grace,
            handler_stop_wait: self.handler_stop_wait,
            claim_on_complete: self.claim_on_complete,
        };
        Ok(Worker {
            client: self.client,
            config,
            handlers: self.handlers,
            fallback: self.fallback,
            slots: (self.slots, self.reserved),
        })
    }
}

/// A configured worker. `start` runs it in the background; `run` until a signal.
#[derive(Debug)]
pub struct Worker {
    client: Client,
    config: Config,
    handlers: BTreeMap<String, Handler>,
    fallback: Option<Handler>,
    slots: (usize, Vec<(i32, usize)>),
}

impl Worker {
    pub fn builder(client: Client) -> WorkerBuilder {
        WorkerBuilder {
            client,
            queues: Vec::new(),
            handlers: BTreeMap::new(),
            fallback: None,
            slots: SLOTS_DEFAULT,
            reserved: Vec::new(),
            lease_ms: LEASE_MS_DEFAULT,
            heartbeat_interval: None,
            claim_wait: CLAIM_WAIT_MAX,
            grace: SHUTDOWN_GRACE_DEFAULT,
            handler_stop_wait: HANDLER_STOP_WAIT_DEFAULT,
            claim_on_complete: true,
            worker_id: None,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.config.worker_id
    }

    /// Starts claiming (inside a tokio runtime) and returns the handle that stops it.
    pub fn start(self) -> WorkerHandle {
        let slots = Slots::new(self.slots.0, &self.slots.1);
        let bands = slots.bands();
        let grace = self.config.grace;
        let shared = Arc::new(Shared {
            client: self.client,
            config: self.config,
            handlers: self.handlers,
            fallback: self.fallback,
            leases: LeaseTable::default(),
            slots,
            stats: Counters::default(),
            stop_claiming: CancellationToken::new(),
        });
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), heartbeat_stop.clone()));
        let claimers: Vec<JoinHandle<()>> = bands
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity > 0)
            .map(|(i, b)| tokio::spawn(claim_loop(shared.clone(), i, b.min_priority)))
            .collect();
        let (shutdown, requested) = watch::channel(None);
        let supervisor = tokio::spawn(supervise(
            shared.clone(),
            claimers,
            heartbeat,
            heartbeat_stop,
            requested,
        ));
        tracing::info!(worker = %shared.config.worker_id, "worker started");
        WorkerHandle {
            shared,
            shutdown,
            supervisor: Some(supervisor),
            grace,
        }
    }

    /// Runs until `shutdown` completes (e.g. `tokio::signal::ctrl_c()`), then shuts down
    /// gracefully with the configured grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> WorkerStats {
        let grace = self.config.grace;
        let handle = self.start();
        shutdown.await;
        handle.shutdown(grace).await
    }
}

/// A running worker. Dropping it starts a graceful shutdown in the background.
#[derive(Debug)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    shutdown: watch::Sender<Option<Duration>>,
    supervisor: Option<JoinHandle<WorkerStats>>,
    grace: Duration,
}

impl WorkerHandle {
    pub fn worker_id(&self) -> &str {
        &self.shared.config.worker_id
    }

    pub fn stats(&self) -> WorkerStats {
        self.shared.stats.snapshot()
    }

    /// Stops claiming, lets running handlers finish for up to `grace`, then cancels the
    /// rest (their tokens fire with `CancelReason::Shutdown`) and releases their tasks
    /// without using an attempt. Returns the final counters.
    pub async fn shutdown(mut self, grace: Duration) -> WorkerStats {
        self.shutdown.send_replace(Some(grace));
        match self.supervisor.take() {
            Some(supervisor) => supervisor
                .await
                .unwrap_or_else(|_| self.shared.stats.snapshot()),
            None => self.shared.stats.snapshot(),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            self.shutdown.send_if_modified(|g| {
                g.get_or_insert(self.grace);
                true
            });
        }
    }
}

async fn supervise(
    shared: Arc<Shared>,
    claimers: Vec<JoinHandle<()>>,
    heartbeat: JoinHandle<()>,
    heartbeat_stop: CancellationToken,
    mut requested: watch::Receiver<Option<Duration>>,
) -> WorkerStats {
    let grace = match requested.wait_for(Option::is_some).await {
        Ok(g) => g.expect("waited for Some"),
        // The handle is gone without asking: shut down with no grace.
        Err(_) => Duration::ZERO,
    };
    let deadline = Instant::now() + grace;
    tracing::info!(worker = %shared.config.worker_id, ?grace, "worker shutting down");
    shared.stop_claiming.cancel();
    // Claims in flight hold slots too, so idle means: no claim out, no handler running.
    // Heartbeats go on meanwhile: the leases of running handlers must stay alive.
    if tokio::time::timeout_at(deadline, shared.slots.wait_idle())
        .await
        .is_err()
    {
        let left = shared.leases.all();
        tracing::info!(
            running = left.len(),
            "shutdown grace over: cancelling and releasing the rest"
        );
        for lease in left {
            lease.cancel(CancelReason::Shutdown);
        }
        shared.slots.wait_idle().await;
    }
    futures::future::join_all(claimers).await;
    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    let stats = shared.stats.snapshot();
    tracing::info!(worker = %shared.config.worker_id, ?stats, "worker stopped");
    stats
}

/// A name unique enough across processes: pid and a randomly keyed hash of the time.
fn default_worker_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    format!("worker-{}-{:08x}", std::process::id(), h.finish() as u32)
}
