//! taskswarm over its HTTP v1 API, through the repo's own Rust client
//! (`taskswarm-worker`'s `Client`, the API the README shows users): it tracks the leader,
//! follows 307 redirects, and puts an idempotency key on every enqueue, as a user's
//! producer would. Enqueue = `POST /v1/tasks` (batched: `POST /v1/tasks/batch`); claim =
//! `POST /v1/claim` long-polling up to `CLAIM_WAIT_MS`; complete =
//! `POST /v1/tasks/{id}/complete` with the fencing token; the batched workload sends a
//! claim's completes concurrently, or as one `POST /v1/complete` (opt-in below).
//!
//! Two newer client features are opt-in (`TaskswarmOptions`), so the default method stays
//! the one of the baseline and runs against binaries without them:
//! complete-and-claim (the completion also claims the worker's next task, in one request)
//! and the client's automatic enqueue batching (concurrent enqueues of one producer
//! travel together after a short linger).

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use taskswarm_api as api;
use taskswarm_worker::{Client, EnqueueBatcher};

use crate::workload::Workload;

pub const DURABILITY: &str = "quorum, fsync";

/// Longest a claim long-polls when the queue is empty.
const CLAIM_WAIT_MS: u64 = 1_000;
/// Lease of a claimed task: far longer than a completion takes.
const LEASE_MS: u64 = 30_000;
const KIND: &str = "bench";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TaskswarmOptions {
    /// taskswarm workers complete with `next`: the completion also claims the next task
    /// (needs a server with complete-and-claim).
    #[arg(long)]
    pub taskswarm_complete_and_claim: bool,
    /// taskswarm producers enqueue through the client's automatic batching with this
    /// linger (unbatched workload; the batched one already sends batches).
    #[arg(long)]
    pub taskswarm_enqueue_linger_ms: Option<u64>,
    /// taskswarm workers send a claim's other completes as one `POST /v1/complete`
    /// (batched workload; needs a server with batched completes).
    #[arg(long)]
    pub taskswarm_batch_complete: bool,
}

impl TaskswarmOptions {
    /// How the driver uses the client, for the table ("" for the baseline method).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.taskswarm_complete_and_claim {
            parts.push("complete-and-claim".to_owned());
        }
        if let Some(ms) = self.taskswarm_enqueue_linger_ms {
            parts.push(format!("enqueue batching, linger {ms} ms"));
        }
        if self.taskswarm_batch_complete {
            parts.push("batched completes".to_owned());
        }
        parts.join(", ")
    }
}

#[derive(Debug)]
pub struct Taskswarm {
    servers: Vec<String>,
    queue: String,
    options: TaskswarmOptions,
}

pub async fn setup(
    endpoints: &[String],
    _workload: &Workload,
    tag: &str,
    options: &TaskswarmOptions,
) -> anyhow::Result<Taskswarm> {
    let servers = endpoints.to_vec();
    let client = Client::new(servers.clone())?;
    let status = client
        .cluster()
        .await
        .context("asking the cluster for its status")?;
    if status.leader_id.is_none() {
        bail!("the cluster has no leader");
    }
    Ok(Taskswarm {
        servers,
        queue: format!("bench-{tag}"),
        options: options.clone(),
    })
}

pub struct Producer {
    client: Client,
    /// With automatic enqueue batching: the batcher single enqueues go through.
    batcher: Option<EnqueueBatcher>,
    queue: String,
}

pub struct Worker {
    client: Client,
    claim: api::ClaimRequest,
    complete_and_claim: bool,
    batch_complete: bool,
    /// Tasks a complete-and-claim already leased to this worker.
    claimed_ahead: Vec<api::ClaimedTask>,
}

impl super::Driver for Taskswarm {
    type Producer = Producer;
    type Worker = Worker;

    async fn producer(&self, _index: usize, _inflight: usize) -> anyhow::Result<Producer> {
        let client = Client::new(self.servers.clone())?;
        let batcher = self
            .options
            .taskswarm_enqueue_linger_ms
            .map(|ms| client.enqueue_batcher(Duration::from_millis(ms)));
        Ok(Producer {
            client,
            batcher,
            queue: self.queue.clone(),
        })
    }

    async fn worker(&self, index: usize) -> anyhow::Result<Worker> {
        // From JSON rather than a struct literal: optional fields the wire type gains
        // later keep their defaults instead of breaking this build.
        let claim = serde_json::from_value(json!({
            "worker": format!("bench-worker-{index}"),
            "queues": [self.queue],
            "max": 1,
            "lease_ms": LEASE_MS,
            "wait_ms": CLAIM_WAIT_MS,
        }))?;
        Ok(Worker {
            client: Client::new(self.servers.clone())?,
            claim,
            complete_and_claim: self.options.taskswarm_complete_and_claim,
            batch_complete: self.options.taskswarm_batch_complete,
            claimed_ahead: Vec::new(),
        })
    }
}

impl Producer {
    fn request(&self, body: Vec<u8>) -> anyhow::Result<api::EnqueueRequest> {
        Ok(api::EnqueueRequest {
            queue: self.queue.clone(),
            kind: KIND.to_owned(),
            payload: Value::String(String::from_utf8(body).context("payload is ASCII")?),
            ..Default::default()
        })
    }
}

impl super::Producer for Producer {
    async fn enqueue(&self, _slot: usize, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
        let mut tasks = bodies
            .into_iter()
            .map(|b| self.request(b))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if tasks.len() == 1 {
            let task = tasks.pop().expect("one task");
            match &self.batcher {
                Some(batcher) => batcher.enqueue(task).await?,
                None => self.client.enqueue(task).await?,
            };
            return Ok(());
        }
        for item in self.client.enqueue_batch(tasks).await? {
            if let api::ItemResult::Err(e) = item {
                bail!("batch item refused: {} {}", e.error.code, e.error.message);
            }
        }
        Ok(())
    }
}

impl super::Worker for Worker {
    type Task = api::ClaimedTask;

    async fn claim(&mut self, max: usize) -> anyhow::Result<Vec<api::ClaimedTask>> {
        if !self.claimed_ahead.is_empty() {
            let n = max.min(self.claimed_ahead.len());
            return Ok(self.claimed_ahead.drain(..n).collect());
        }
        self.claim.max = u32::try_from(max)?;
        Ok(self.client.claim(&self.claim).await?)
    }

    async fn complete(&mut self, tasks: Vec<api::ClaimedTask>) -> anyhow::Result<()> {
        let client = &self.client;
        let (fused, plain) = match tasks.split_last() {
            Some((last, rest)) if self.complete_and_claim => (Some(last), rest),
            _ => (None, tasks.as_slice()),
        };
        // The next claim does not long-poll: the completion's answer must not wait for
        // new work (an empty `next` falls back to an ordinary claim).
        let mut next = self.claim.clone();
        next.max = u32::try_from(tasks.len())?;
        next.wait_ms = 0;
        let fused_call = async {
            match fused {
                Some(t) => client
                    .complete_and_claim(t.id, t.lease.token, Value::Null, &next)
                    .await
                    .map(|r| r.next.unwrap_or_default()),
                None => Ok(Vec::new()),
            }
        };
        let plain_calls = async {
            if self.batch_complete && plain.len() > 1 {
                let items = plain
                    .iter()
                    .map(|t| api::CompleteItem {
                        task: t.id,
                        token: t.lease.token,
                        result: Value::Null,
                    })
                    .collect();
                for item in client.complete_batch(items).await? {
                    if let api::CompleteItemResult::Err(e) = item {
                        bail!("complete refused: {}", e.error.code);
                    }
                }
                return anyhow::Ok(());
            }
            let answers = futures::future::join_all(
                plain
                    .iter()
                    .map(|t| client.complete(t.id, t.lease.token, Value::Null)),
            )
            .await;
            for r in answers {
                r?;
            }
            anyhow::Ok(())
        };
        let (claimed, completed) = futures::join!(fused_call, plain_calls);
        completed?;
        self.claimed_ahead.extend(claimed?);
        Ok(())
    }

    fn body(task: &api::ClaimedTask) -> &[u8] {
        task.payload.as_str().map_or(&[], str::as_bytes)
    }
}
