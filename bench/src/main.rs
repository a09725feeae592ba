//! `loadgen`: the comparison harness of issue 9. `loadgen compare` starts each system's
//! cluster with its peer script, runs the workloads, and prints/writes the comparison;
//! `loadgen run` runs one system once against a cluster a peer script already started.
//! See README.md for the method.

mod cluster;
mod compare;
mod cpu;
mod drivers;
mod harness;
mod payload;
mod recorder;
mod report;
mod stats;
mod system;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Compares taskswarm with NATS JetStream, RabbitMQ, etcd and PostgreSQL on one workload"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start each system in turn, run the workloads, print the table, write JSON and SVG.
    Compare(compare::CompareArgs),
    /// Run one system once against a cluster started with `peers/<system>.sh start DIR`;
    /// prints the run's figures as JSON.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long)]
    system: system::System,
    /// The directory the peer script started the cluster in (holds `endpoints`, `pids`).
    #[arg(long)]
    cluster_dir: PathBuf,
    #[arg(long, default_value = "unbatched")]
    workload: workload::Shape,
    #[arg(long, default_value_t = 5.0)]
    warmup_s: f64,
    #[arg(long, default_value_t = 20.0)]
    measure_s: f64,
    #[arg(long, default_value_t = 4)]
    producers: usize,
    #[arg(long, default_value_t = 8)]
    workers: usize,
    #[command(flatten)]
    taskswarm: drivers::taskswarm::TaskswarmOptions,
    /// Names the queue/stream/table; use a new one for each run against one cluster.
    #[arg(long, default_value = "manual")]
    tag: String,
}

async fn run_one(args: RunArgs) -> anyhow::Result<bool> {
    let read = |name: &str| -> anyhow::Result<Vec<String>> {
        let path = args.cluster_dir.join(name);
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
            .collect())
    };
    let endpoints = read("endpoints")?;
    let pids: Vec<u32> = read("pids")?
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let w = workload::Workload::new(
        args.workload,
        args.producers,
        args.workers,
        args.warmup_s,
        args.measure_s,
    );
    let result = system::run_once(
        args.system,
        &endpoints,
        &pids,
        &w,
        &args.tag,
        &args.taskswarm,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(result.lifecycles > 0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let work = async {
        match cli.command {
            Command::Compare(args) => compare::run(args).await,
            Command::Run(args) => run_one(args).await,
        }
    };
    // Ctrl-C drops the work, and with it any running cluster (its Drop stops it).
    let outcome = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
