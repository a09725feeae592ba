//! NATS JetStream through async-nats: an R3 work-queue stream (retention WorkQueue, 3
//! replicas, file storage) and one durable pull consumer with explicit acks shared by
//! all workers, as JetStream's docs build a work queue. Enqueue = publish and await the
//! stream's ack (batched: 64 publishes in flight, then every ack awaited). Claim =
//! fetch one (a pull request of 1 that waits up to `CLAIM_WAIT`); batched: the
//! consumer's continuous pull stream, 16 messages per pull, taking what has arrived.
//! Complete = double ack (the ack and the server's confirmation of it), so a completion is
//! acknowledged like every other system's.
//!
//! Debian's nats-server 2.9 does not fsync each write: the ack means the message is in
//! memory (and the OS page cache) on a majority of replicas, not on disk.

use std::time::Duration;

use anyhow::Context;
use std::future::IntoFuture;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, stream};
use futures::{FutureExt, StreamExt};

use crate::workload::{Shape, Workload};

pub const DURABILITY: &str = "quorum, no fsync (2.9)";

const REPLICAS: usize = 3;
/// Longest one claim waits for a message.
const CLAIM_WAIT: Duration = Duration::from_secs(1);
/// The stream may be created before the servers elected a JetStream meta leader: retry.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
const CREATE_RETRY: Duration = Duration::from_millis(250);
const CONSUMER: &str = "workers";

#[derive(Debug)]
pub struct Nats {
    servers: Vec<String>,
    stream: String,
    subject: String,
    shape: Shape,
    claim_max: usize,
}

pub async fn setup(endpoints: &[String], workload: &Workload, tag: &str) -> anyhow::Result<Nats> {
    let client = async_nats::connect(endpoints)
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(client);
    let name = format!("BENCH_{}", tag.replace('-', "_"));
    let subject = format!("bench.{tag}");
    let config = stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: REPLICAS,
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    let created = loop {
        match js.create_stream(config.clone()).await {
            Ok(s) => break s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(CREATE_RETRY).await;
            }
            Err(e) => return Err(e).context("creating the stream"),
        }
    };
    created
        .create_consumer(pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("creating the consumer")?;
    Ok(Nats {
        servers: endpoints.to_vec(),
        stream: name,
        subject,
        shape: workload.shape,
        claim_max: workload.claim_max,
    })
}

pub struct Producer {
    js: jetstream::Context,
    subject: String,
}

pub struct Worker {
    consumer: PullConsumer,
    /// Batched workload: the consumer's continuous pull stream.
    messages: Option<pull::Stream>,
}

impl super::Driver for Nats {
    type Producer = Producer;
    type Worker = Worker;

    async fn producer(&self, _index: usize, _inflight: usize) -> anyhow::Result<Producer> {
        let client = async_nats::connect(&self.servers).await?;
        Ok(Producer {
            js: jetstream::new(client),
            subject: self.subject.clone(),
        })
    }

    async fn worker(&self, _index: usize) -> anyhow::Result<Worker> {
        let client = async_nats::connect(&self.servers).await?;
        let js = jetstream::new(client);
        let consumer: PullConsumer = js
            .get_stream(&self.stream)
            .await?
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let messages = match self.shape {
            Shape::Unbatched => None,
            Shape::Batched => Some(
                consumer
                    .stream()
                    .max_messages_per_batch(self.claim_max)
                    .messages()
                    .await?,
            ),
        };
        Ok(Worker { consumer, messages })
    }
}

impl super::Producer for Producer {
    async fn enqueue(&self, _slot: usize, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
        // Every publish first (they pipeline on the connection), then every ack.
        let mut acks = Vec::with_capacity(bodies.len());
        for body in bodies {
            acks.push(self.js.publish(self.subject.clone(), body.into()).await?);
        }
        for ack in futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await {
            ack?;
        }
        Ok(())
    }
}

impl super::Worker for Worker {
    type Task = jetstream::Message;

    async fn claim(&mut self, max: usize) -> anyhow::Result<Vec<jetstream::Message>> {
        let Some(messages) = &mut self.messages else {
            let mut batch = self
                .consumer
                .batch()
                .max_messages(max)
                .expires(CLAIM_WAIT)
                .messages()
                .await?;
            let mut tasks = Vec::with_capacity(max);
            while let Some(m) = batch.next().await {
                tasks.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
            }
            return Ok(tasks);
        };
        let first = match tokio::time::timeout(CLAIM_WAIT, messages.next()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => anyhow::bail!("the pull stream ended"),
            Ok(Some(m)) => m.map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        let mut tasks = vec![first];
        // Whatever else has already arrived, without waiting.
        while tasks.len() < max {
            match messages.next().now_or_never() {
                Some(Some(m)) => tasks.push(m.map_err(|e| anyhow::anyhow!("{e}"))?),
                _ => break,
            }
        }
        Ok(tasks)
    }

    async fn complete(&mut self, tasks: Vec<jetstream::Message>) -> anyhow::Result<()> {
        for r in futures::future::join_all(tasks.iter().map(|m| m.double_ack())).await {
            r.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }

    fn body(task: &jetstream::Message) -> &[u8] {
        &task.payload
    }
}
