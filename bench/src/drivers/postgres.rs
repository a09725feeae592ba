//! PostgreSQL through tokio-postgres, the `FOR UPDATE SKIP LOCKED` queue: a tasks table,
//! enqueue = INSERT (batched: one multi-row INSERT of 64), claim = an UPDATE of the first
//! queued row(s) that other transactions have not locked (batched: LIMIT 16), complete =
//! DELETE by id (batched: all ids in one statement). Every statement autocommits; with
//! `synchronous_commit = on` and `fsync = on` a commit returns after its WAL is flushed on
//! this one node (no replica). Each in-flight enqueue has its own connection, as a pool
//! would give it. A worker that finds nothing polls again after a short, growing pause.

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::{Client, NoTls, Statement};

use crate::workload::Workload;

pub const DURABILITY: &str = "one node, fsync";

/// First pause of an idle worker before it polls again; doubles up to `IDLE_POLL_MAX`.
const IDLE_POLL_MIN: Duration = Duration::from_millis(1);
const IDLE_POLL_MAX: Duration = Duration::from_millis(8);

#[derive(Debug)]
pub struct Postgres {
    conninfo: String,
    table: String,
}

async fn connect(conninfo: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    // The connection task ends when the client is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub async fn setup(
    endpoints: &[String],
    _workload: &Workload,
    tag: &str,
) -> anyhow::Result<Postgres> {
    let conninfo = endpoints.first().context("no PostgreSQL endpoint")?.clone();
    let client = connect(&conninfo)
        .await
        .context("connecting to PostgreSQL")?;
    let table = format!("tasks_{}", tag.replace('-', "_"));
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (
                 id bigserial PRIMARY KEY,
                 state text NOT NULL DEFAULT 'queued',
                 payload bytea NOT NULL,
                 worker text,
                 claimed_at timestamptz
             );
             CREATE INDEX {table}_queued ON {table} (id) WHERE state = 'queued';"
        ))
        .await
        .context("creating the tasks table")?;
    Ok(Postgres { conninfo, table })
}

pub struct Producer {
    /// One connection per in-flight enqueue.
    slots: Vec<Slot>,
}

struct Slot {
    client: Client,
    insert_one: Statement,
    insert_many: Statement,
}

pub struct Worker {
    client: Client,
    name: String,
    claim_one: Statement,
    claim_many: Statement,
    complete: Statement,
    idle_pause: Duration,
}

impl super::Driver for Postgres {
    type Producer = Producer;
    type Worker = Worker;

    async fn producer(&self, _index: usize, inflight: usize) -> anyhow::Result<Producer> {
        let mut slots = Vec::with_capacity(inflight);
        for _ in 0..inflight {
            let client = connect(&self.conninfo).await?;
            let t = &self.table;
            let insert_one = client
                .prepare(&format!("INSERT INTO {t} (payload) VALUES ($1)"))
                .await?;
            let insert_many = client
                .prepare(&format!(
                    "INSERT INTO {t} (payload) SELECT unnest($1::bytea[])"
                ))
                .await?;
            slots.push(Slot {
                client,
                insert_one,
                insert_many,
            });
        }
        Ok(Producer { slots })
    }

    async fn worker(&self, index: usize) -> anyhow::Result<Worker> {
        let client = connect(&self.conninfo).await?;
        let t = &self.table;
        let claim_one = client
            .prepare(&format!(
                "UPDATE {t} SET state = 'running', worker = $1, claimed_at = now()
                 WHERE id = (SELECT id FROM {t} WHERE state = 'queued'
                             ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
                 RETURNING id, payload"
            ))
            .await?;
        let claim_many = client
            .prepare(&format!(
                "UPDATE {t} SET state = 'running', worker = $1, claimed_at = now()
                 WHERE id IN (SELECT id FROM {t} WHERE state = 'queued'
                              ORDER BY id FOR UPDATE SKIP LOCKED LIMIT $2)
                 RETURNING id, payload"
            ))
            .await?;
        let complete = client
            .prepare(&format!("DELETE FROM {t} WHERE id = ANY($1)"))
            .await?;
        Ok(Worker {
            client,
            name: format!("bench-worker-{index}"),
            claim_one,
            claim_many,
            complete,
            idle_pause: IDLE_POLL_MIN,
        })
    }
}

impl super::Producer for Producer {
    async fn enqueue(&self, slot: usize, bodies: Vec<Vec<u8>>) -> anyhow::Result<()> {
        let s = &self.slots[slot % self.slots.len()];
        if let [body] = bodies.as_slice() {
            s.client.execute(&s.insert_one, &[body]).await?;
        } else {
            s.client.execute(&s.insert_many, &[&bodies]).await?;
        }
        Ok(())
    }
}

impl super::Worker for Worker {
    type Task = (i64, Vec<u8>);

    async fn claim(&mut self, max: usize) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
        let rows = if max == 1 {
            self.client.query(&self.claim_one, &[&self.name]).await?
        } else {
            self.client
                .query(&self.claim_many, &[&self.name, &i64::try_from(max)?])
                .await?
        };
        if rows.is_empty() {
            tokio::time::sleep(self.idle_pause).await;
            self.idle_pause = (self.idle_pause * 2).min(IDLE_POLL_MAX);
            return Ok(Vec::new());
        }
        self.idle_pause = IDLE_POLL_MIN;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn complete(&mut self, tasks: Vec<(i64, Vec<u8>)>) -> anyhow::Result<()> {
        let ids: Vec<i64> = tasks.iter().map(|t| t.0).collect();
        self.client.execute(&self.complete, &[&ids]).await?;
        Ok(())
    }

    fn body(task: &(i64, Vec<u8>)) -> &[u8] {
        &task.1
    }
}
