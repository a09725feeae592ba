//! `jepsen-run --smoke`: runs taskswarm nodes in private network namespaces and checks
//! that the environment's faults work (see `smoke.rs`).
//! Exit code: 0 passed, 1 the cluster misbehaved, 2 harness error.
//!
//! The binary re-executes itself inside a sandbox (fresh net, mount and pid namespaces),
//! so it must run as root; nothing it creates survives its exit.

mod smoke;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jepsen_style_tests::env::sandbox;

/// Exit codes, as for `jepsen-check`.
const EXIT_FAILED: u8 = 1;
const EXIT_HARNESS: u8 = 2;

#[derive(Debug, Parser)]
#[command(about = "Run taskswarm nodes in network namespaces and inject faults")]
pub struct Args {
    /// Smoke test of the environment: isolate the leader, heal, check convergence.
    #[arg(long)]
    pub smoke: bool,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The taskswarm binary. Default: $CARGO_TARGET_DIR/release/taskswarm, else
    /// target/release/taskswarm.
    #[arg(long)]
    pub taskswarm_bin: Option<PathBuf>,
    /// Where data directories and node logs go. Default: a new directory under
    /// /var/tmp/taskswarm-jepsen/.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

impl Args {
    fn taskswarm_bin(&self) -> PathBuf {
        self.taskswarm_bin.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target.join("release").join("taskswarm")
        })
    }
}

/// How a run ended, apart from harness errors (which are `anyhow::Error`).
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.smoke {
        eprintln!("jepsen-run: only --smoke exists so far");
        return ExitCode::from(EXIT_HARNESS);
    }
    // Outside the sandbox this execs `unshare` and never returns; the exit code is the
    // sandboxed copy's.
    if let Err(e) = sandbox::enter() {
        eprintln!("jepsen-run: entering the sandbox: {e}");
        return ExitCode::from(EXIT_HARNESS);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jepsen-run: tokio runtime: {e}");
            return ExitCode::from(EXIT_HARNESS);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = smoke::run(&args) => r,
            sig = interrupted() => Err(anyhow::anyhow!("interrupted by {sig}")),
        }
    });
    match result {
        Ok(Outcome::Passed) => {
            println!("smoke: PASSED");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Failed(why)) => {
            println!("smoke: FAILED: {why}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("jepsen-run: harness error: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

/// SIGINT or SIGTERM. Needed because the sandboxed harness is pid 1 of its namespace: the
/// kernel drops signals the init process has no handler for, and the outer `unshare`
/// ignores SIGINT/SIGTERM while it waits. Returning from `main` then ends pid 1, and with
/// it every node and namespace.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // Without handlers the run still works; it just cannot be interrupted cleanly.
        _ => std::future::pending().await,
    }
}
