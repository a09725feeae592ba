//! RabbitMQ through lapin (AMQP 0-9-1): a durable quorum queue (`x-queue-type: quorum`,
//! replicated on all three nodes), persistent messages, publisher confirms. Enqueue =
//! publish and await the broker's confirm (batched: 64 publishes in flight on the
//! channel, then every confirm). Claim = the next delivery of a consumer with manual
//! acks and prefetch 1 (batched: prefetch 16, taking what has arrived). Complete =
//! basic.ack (batched: one ack with `multiple`). AMQP acks get no answer, so a completion
//! counts as done once the ack is written to the socket.
//!
//! Every client connects to node 1, where the queue is declared and so where its leader
//! is placed (the `client-local` locator): the same as taskswarm's clients reaching the
//! Raft leader.

use std::time::Duration;

use anyhow::{bail, Context};
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use crate::workload::Workload;

pub const DURABILITY: &str = "quorum, fsync";

/// Longest one claim waits for a delivery.
const CLAIM_WAIT: Duration = Duration::from_secs(1);
/// AMQP delivery mode of a persistent message.
const PERSISTENT: u8 = 2;

#[derive(Debug)]
pub struct Rabbitmq {
    uri: String,
    queue: String,
    prefetch: u16,
    /// Kept open so the queue's declaring connection outlives the run.
    _setup: Connection,
}

pub async fn setup(
    endpoints: &[String],
    workload: &Workload,
    tag: &str,
) -> anyhow::Result<Rabbitmq> {
    let uri = endpoints.first().context("no RabbitMQ endpoint")?.clone();
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = conn.create_channel().await?;
    let queue = format!("bench-{tag}");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .context("declaring the quorum queue")?;
    Ok(Rabbitmq {
        uri,
        queue,
        prefetch: u16::try_from(workload.claim_max)?,
        _setup: conn,
    })
}

pub struct Producer {
    _conn: Connection,
    channel: Channel,
    queue: String,
}

pub struct Worker {
    _conn: Connection,
    consumer: Consumer,
}

impl super::Driver for Rabbitmq {
    type Producer = Producer;
    type Worker = Worker;

    async fn producer(&self, _index: usize, _inflight: usize) -> anyhow::Result<Producer> {
        let conn = Connection::connect(&self.uri, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Producer {
            _conn: conn,
            channel,
            queue: self.queue.clone(),
        })
    }

    async fn worker(&self, index: usize) -> anyhow::Result<Worker> {
        let conn = Connection::connect(&self.uri, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                format!("bench-worker-{index}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Worker {
            _conn: conn,
            consumer,
        })
    }
}

impl super::Producer for Producer {
    async fn enqueue(&self, _slot: usize, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
        let mut confirms = Vec::with_capacity(bodies.len());
        for body in &bodies {
            confirms.push(
                self.channel
                    .basic_publish(
                        "".into(),
                        self.queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        BasicProperties::default().with_delivery_mode(PERSISTENT),
                    )
                    .await?,
            );
        }
        for confirm in futures::future::join_all(confirms).await {
            if !confirm?.is_ack() {
                bail!("the broker nacked a publish");
            }
        }
        Ok(())
    }
}

impl super::Worker for Worker {
    type Task = lapin::message::Delivery;

    async fn claim(&mut self, max: usize) -> anyhow::Result<Vec<lapin::message::Delivery>> {
        let first = match tokio::time::timeout(CLAIM_WAIT, self.consumer.next()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => bail!("the consumer was cancelled"),
            Ok(Some(d)) => d?,
        };
        let mut tasks = vec![first];
        // Deliveries already in the prefetch buffer, without waiting.
        while tasks.len() < max {
            match self.consumer.next().now_or_never() {
                Some(Some(d)) => tasks.push(d?),
                _ => break,
            }
        }
        Ok(tasks)
    }

    async fn complete(&mut self, tasks: Vec<lapin::message::Delivery>) -> anyhow::Result<()> {
        // Deliveries on one channel arrive in tag order: acking the last with `multiple`
        // acks them all.
        let last = tasks.last().context("nothing to complete")?;
        let multiple = tasks.len() > 1;
        last.acker.ack(BasicAckOptions { multiple }).await?;
        Ok(())
    }

    fn body(task: &lapin::message::Delivery) -> &[u8] {
        &task.data
    }
}
