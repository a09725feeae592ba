//! The `taskswarm` binary (also the body of `taskswarm-canary`, src/bin/taskswarm-canary.rs).

mod cli;

/// mimalloc instead of glibc's malloc: allocation and free were ~16 % of a loaded leader's
/// CPU (profile and A/B runs in bench/README.md, "Where taskswarm's time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "taskswarm",
    version,
    about = "A Raft-replicated task coordinator"
)]
struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        global = true,
        env = "TASKSWARM_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: String,
    #[command(flatten)]
    client: cli::client_args::ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one coordinator node.
    Node(cli::node::NodeArgs),
    /// Run a local cluster on loopback (3 nodes by default) until Ctrl-C.
    Dev(cli::dev::DevArgs),
    /// Closed-loop load against a running cluster; prints tasks/s and latencies.
    Bench(cli::bench::BenchArgs),
    /// Run a shell command for each task: payload on stdin, result from stdout.
    Worker(cli::exec_worker::ExecWorkerArgs),
    /// Save a consistent copy of the cluster's state (taken by the leader) to a file.
    Backup(cli::backup::BackupArgs),
    /// Seed an empty data directory for one node of a new cluster from a backup (offline).
    Restore(cli::backup::RestoreArgs),
    #[command(flatten)]
    Task(cli::tasks::TaskCmd),
    #[command(flatten)]
    Admin(cli::admin::AdminCmd),
}

fn init_tracing(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(taskswarm_coordinator::raft::LOG_FILTER_DEFAULT)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "text" => builder.init(),
        "json" => builder.json().init(),
        other => anyhow::bail!("--log-format must be text or json, not {other:?}"),
    }
    Ok(())
}

pub(crate) fn main() {
    let cli = Cli::parse();
    // Only a node sizes its runtime (`--worker-threads`); every other command takes
    // tokio's default of one thread per core.
    let worker_threads = match &cli.command {
        Cmd::Node(args) => args.worker_threads,
        _ => 0,
    };
    let result = cli::node::runtime(worker_threads).and_then(|rt| rt.block_on(run(cli)));
    if let Err(e) = result {
        eprintln!("taskswarm: {e:#}");
        std::process::exit(1);
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    // An empty token (`TASKSWARM_API_TOKEN=` in an env file, compose's `${VAR:-}`) means
    // none, not a token that is the empty string.
    cli.client.api_token = cli.client.api_token.filter(|t| !t.is_empty());
    match init_tracing(&cli.log_format) {
        Ok(()) => match cli.command {
            Cmd::Node(args) => cli::node::run(args, cli.client.api_token.clone()).await,
            Cmd::Dev(args) => cli::dev::run(args).await,
            Cmd::Bench(args) => cli::bench::run(args, &cli.client.servers).await,
            Cmd::Worker(args) => cli::exec_worker::run(args, &cli.client).await,
            Cmd::Backup(args) => cli::backup::backup(args, &cli.client).await,
            Cmd::Restore(args) => cli::backup::restore(args, cli.client.json),
            Cmd::Task(cmd) => cli::tasks::run(cmd, &cli.client).await,
            Cmd::Admin(cmd) => cli::admin::run(cmd, &cli.client).await,
        },
        Err(e) => Err(e),
    }
}
