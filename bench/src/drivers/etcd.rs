//! etcd v3 through etcd-client, tasks as keys (the usual recipe for a queue on etcd):
//! enqueue = put `PREFIX/q/<send time>-<producer>-<n>` (batched: one txn of 64 puts).
//! Claim = range the first queued keys, then a txn that succeeds only if the chosen keys'
//! `mod_revision` is unchanged and moves them to `PREFIX/r/...` under the worker's lease
//! (a conflict with another worker is retried: it claims nothing). A worker with nothing
//! to take waits for a watch event on the queued prefix. Complete = a txn that deletes the
//! running keys if they are still under the worker's lease (batched: one txn for all).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::payload;
use crate::workload::Workload;

pub const DURABILITY: &str = "quorum, fsync";

/// Longest an idle worker waits for a watch event before ranging again.
const CLAIM_WAIT: Duration = Duration::from_secs(1);
/// A worker's lease outlives any run by far; it is kept alive anyway.
const LEASE_TTL_S: i64 = 60;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
/// A worker ranges this many queued keys per wanted task and picks among them by its
/// index, so workers mostly go for different keys instead of all for the first.
const RANGE_PER_TASK: usize = 4;

#[derive(Debug)]
pub struct Etcd {
    endpoints: Vec<String>,
    queued: String,
    running: String,
}

pub async fn setup(endpoints: &[String], _workload: &Workload, tag: &str) -> anyhow::Result<Etcd> {
    let mut client = Client::connect(endpoints, None)
        .await
        .context("connecting to etcd")?;
    client
        .status()
        .await
        .context("asking etcd for its status")?;
    Ok(Etcd {
        endpoints: endpoints.to_vec(),
        queued: format!("bench/{tag}/q/"),
        running: format!("bench/{tag}/r/"),
    })
}

pub struct Producer {
    client: Client,
    index: usize,
    queued: String,
    next: AtomicU64,
}

pub struct Worker {
    client: Client,
    index: usize,
    lease: i64,
    queued: String,
    running: String,
    /// Woken by the watch on the queued prefix.
    wake: Arc<Notify>,
    background: Vec<JoinHandle<()>>,
}

pub struct Task {
    key: Vec<u8>,
    body: Vec<u8>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl super::Driver for Etcd {
    type Producer = Producer;
    type Worker = Worker;

    async fn producer(&self, index: usize, _inflight: usize) -> anyhow::Result<Producer> {
        Ok(Producer {
            client: Client::connect(&self.endpoints, None).await?,
            index,
            queued: self.queued.clone(),
            next: AtomicU64::new(0),
        })
    }

    async fn worker(&self, index: usize) -> anyhow::Result<Worker> {
        let mut client = Client::connect(&self.endpoints, None).await?;
        let lease = client.lease_grant(LEASE_TTL_S, None).await?.id();
        let (mut keeper, mut keepalive_answers) = client.lease_keep_alive(lease).await?;
        let keepalive = tokio::spawn(async move {
            loop {
                if keeper.keep_alive().await.is_err() || keepalive_answers.message().await.is_err()
                {
                    return;
                }
                tokio::time::sleep(KEEPALIVE_EVERY).await;
            }
        });
        let mut events = client
            .watch(
                self.queued.as_str(),
                Some(WatchOptions::new().with_prefix()),
            )
            .await?;
        let wake = Arc::new(Notify::new());
        let waker = wake.clone();
        let watch = tokio::spawn(async move {
            while let Some(Ok(_)) = events.next().await {
                waker.notify_one();
            }
        });
        Ok(Worker {
            client,
            index,
            lease,
            queued: self.queued.clone(),
            running: self.running.clone(),
            wake,
            background: vec![keepalive, watch],
        })
    }
}

impl super::Producer for Producer {
    async fn enqueue(&self, _slot: usize, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
        let mut kv = self.client.kv_client();
        // Keys sort by the body's send-time stamp first, so ranging gives FIFO order.
        let key = |body: &[u8]| {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let stamp = payload::stamp(body);
            format!("{}{stamp}-{:03}-{n:010}", self.queued, self.index)
        };
        if bodies.len() == 1 {
            kv.put(key(&bodies[0]), bodies[0].clone(), None).await?;
            return Ok(());
        }
        let puts: Vec<TxnOp> = bodies
            .iter()
            .map(|b| TxnOp::put(key(b), b.clone(), None))
            .collect();
        kv.txn(Txn::new().and_then(puts)).await?;
        Ok(())
    }
}

impl Worker {
    fn running_key(&self, queued_key: &[u8]) -> Vec<u8> {
        let suffix = &queued_key[self.queued.len()..];
        [self.running.as_bytes(), suffix].concat()
    }
}

impl super::Worker for Worker {
    type Task = Task;

    async fn claim(&mut self, max: usize) -> anyhow::Result<Vec<Task>> {
        let range = max * RANGE_PER_TASK;
        let resp = self
            .client
            .get(
                self.queued.as_str(),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_limit(i64::try_from(range)?),
                ),
            )
            .await?;
        let kvs = resp.kvs();
        if kvs.is_empty() {
            let _ = tokio::time::timeout(CLAIM_WAIT, self.wake.notified()).await;
            return Ok(Vec::new());
        }
        let take = max.min(kvs.len());
        let start = (self.index * max) % kvs.len();
        let chosen: Vec<_> = (0..take).map(|i| &kvs[(start + i) % kvs.len()]).collect();
        let compares: Vec<Compare> = chosen
            .iter()
            .map(|kv| Compare::mod_revision(kv.key(), CompareOp::Equal, kv.mod_revision()))
            .collect();
        let lease = PutOptions::new().with_lease(self.lease);
        let mut moves = Vec::with_capacity(take * 2);
        for kv in &chosen {
            moves.push(TxnOp::delete(kv.key(), None));
            moves.push(TxnOp::put(
                self.running_key(kv.key()),
                kv.value(),
                Some(lease.clone()),
            ));
        }
        let txn = self
            .client
            .txn(Txn::new().when(compares).and_then(moves))
            .await?;
        if !txn.succeeded() {
            // Another worker took one of them first.
            return Ok(Vec::new());
        }
        Ok(chosen
            .iter()
            .map(|kv| Task {
                key: self.running_key(kv.key()),
                body: kv.value().to_vec(),
            })
            .collect())
    }

    async fn complete(&mut self, tasks: Vec<Task>) -> anyhow::Result<()> {
        let still_ours: Vec<Compare> = tasks
            .iter()
            .map(|t| Compare::lease(t.key.clone(), CompareOp::Equal, self.lease))
            .collect();
        let deletes: Vec<TxnOp> = tasks
            .iter()
            .map(|t| TxnOp::delete(t.key.clone(), None))
            .collect();
        let txn = self
            .client
            .txn(Txn::new().when(still_ours).and_then(deletes))
            .await?;
        if !txn.succeeded() {
            bail!("a task's lease was lost before its completion");
        }
        Ok(())
    }

    fn body(task: &Task) -> &[u8] {
        &task.body
    }
}
