//! The systems compared, and the one place that picks a driver for a system.

use std::sync::Arc;

use serde::Serialize;

use crate::drivers::taskswarm::TaskswarmOptions;
use crate::drivers::{etcd, nats, postgres, rabbitmq, taskswarm};
use crate::harness::{self, RunResult};
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Taskswarm,
    Nats,
    Rabbitmq,
    Etcd,
    Postgres,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Taskswarm => "taskswarm",
            System::Nats => "nats",
            System::Rabbitmq => "rabbitmq",
            System::Etcd => "etcd",
            System::Postgres => "postgres",
        }
    }

    /// How the system is set up, for the table.
    pub fn setup(self) -> &'static str {
        match self {
            System::Taskswarm => "taskswarm, 3 nodes (`taskswarm dev`)",
            System::Nats => "NATS JetStream, R3 work-queue stream",
            System::Rabbitmq => "RabbitMQ quorum queue, 3 nodes",
            System::Etcd => "etcd v3 (txns on keys), 3 members",
            System::Postgres => "PostgreSQL SKIP LOCKED, one node",
        }
    }

    /// What an acknowledged enqueue survives.
    pub fn durability(self) -> &'static str {
        match self {
            System::Taskswarm => taskswarm::DURABILITY,
            System::Nats => nats::DURABILITY,
            System::Rabbitmq => rabbitmq::DURABILITY,
            System::Etcd => etcd::DURABILITY,
            System::Postgres => postgres::DURABILITY,
        }
    }

    /// How the driver used the system's client, when not the default way.
    pub fn client_variant(self, taskswarm_options: &TaskswarmOptions) -> String {
        match self {
            System::Taskswarm => taskswarm_options.describe(),
            _ => String::new(),
        }
    }

    /// The peer script (in the peers directory) that starts and stops its cluster.
    pub fn script(self) -> String {
        format!("{}.sh", self.name())
    }
}

/// Sets the system up for `workload` (a fresh queue, stream or table named after `tag`)
/// and runs it once. `server_pids` are the roots of the server processes.
pub async fn run_once(
    system: System,
    endpoints: &[String],
    server_pids: &[u32],
    workload: &Workload,
    tag: &str,
    taskswarm_options: &TaskswarmOptions,
) -> anyhow::Result<RunResult> {
    match system {
        System::Taskswarm => {
            let d = taskswarm::setup(endpoints, workload, tag, taskswarm_options).await?;
            harness::run(Arc::new(d), workload, server_pids).await
        }
        System::Nats => {
            let d = nats::setup(endpoints, workload, tag).await?;
            harness::run(Arc::new(d), workload, server_pids).await
        }
        System::Rabbitmq => {
            let d = rabbitmq::setup(endpoints, workload, tag).await?;
            harness::run(Arc::new(d), workload, server_pids).await
        }
        System::Etcd => {
            let d = etcd::setup(endpoints, workload, tag).await?;
            harness::run(Arc::new(d), workload, server_pids).await
        }
        System::Postgres => {
            let d = postgres::setup(endpoints, workload, tag).await?;
            harness::run(Arc::new(d), workload, server_pids).await
        }
    }
}
