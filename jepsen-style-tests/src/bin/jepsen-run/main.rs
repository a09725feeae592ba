//! `jepsen-run`: the fault-injection harness.
//!
//! - `jepsen-run --nodes 5 --nemesis partition,kill,pause --time 120 --seed 42 --workload Q`
//!   runs real taskswarm nodes in private network namespaces, drives a workload while
//!   the seeded nemesis injects faults, then heals, drains, checks the recorded history
//!   and prints the report (see `test_run.rs`).
//! - `jepsen-run --smoke` checks that the environment's faults work (see `smoke.rs`).
//! - `jepsen-run worker ...` is one worker process of a run, started by the harness.
//!
//! Exit code: 0 valid, 1 anomalies found (or, with `--expect-anomaly`, not found), 2
//! harness error or inconclusive run, 3 valid but a recovery target missed (only with
//! `--expect-recovery`). The binary re-executes itself inside a sandbox
//! (fresh net, mount and pid namespaces), so it must run as root; nothing it creates
//! survives its exit except the run directory.

mod smoke;
mod test_run;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use jepsen_style_tests::checker::Verdict;
use jepsen_style_tests::env::sandbox;
use jepsen_style_tests::history::Workload;
use jepsen_style_tests::run::workload::parse_workload;

/// Exit codes, as for `jepsen-check`.
const EXIT_FAILED: u8 = 1;
const EXIT_HARNESS: u8 = 2;
/// A valid run that missed a recovery target (`--expect-recovery`).
const EXIT_SLOW: u8 = 3;
/// Where run directories go by default.
const RUN_ROOT: &str = "/var/tmp/taskswarm-jepsen";

#[derive(Debug, Parser)]
#[command(
    about = "Run taskswarm nodes in network namespaces, inject faults, check the history",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Smoke test of the environment: isolate the leader, heal, check convergence.
    #[arg(long)]
    pub smoke: bool,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Faults, comma-separated: isolate-leader, halves-leader-majority,
    /// halves-leader-minority, bridge, majorities-ring (5 nodes), packet-loss,
    /// kill-minority, kill-all, pause-leader, pause-worker, clock-skew, membership; or the
    /// groups partition, kill, pause, all (every fault). Also, by name only, the rolls
    /// (every node restarted once, one at a time, once per run): rolling-restart,
    /// rolling-upgrade (needs --upgrade-bin); and replace-node (3+ nodes: a follower
    /// killed, removed, its disk deleted, started empty and added back).
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Length of the fault phase in seconds (the drain comes after).
    #[arg(long, default_value_t = 60)]
    pub time: u64,
    /// Seed of the schedule and the workload's choices (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Q (enqueue, claim, complete), L (lease contention) or R (reads mixed with writes).
    #[arg(long, default_value = "Q", value_parser = parse_workload)]
    pub workload: Workload,
    /// Run the canary build (`taskswarm-canary`, which accepts stale tokens) instead.
    #[arg(long)]
    pub canary: bool,
    /// Succeed only if this property (e.g. `fencing`) reports an anomaly: for the canary.
    #[arg(long)]
    pub expect_anomaly: Option<String>,
    /// Also judge the recovery targets (failover and heal times, see `expect.rs`): a
    /// valid run that misses one exits 3.
    #[arg(long)]
    pub expect_recovery: bool,
    /// Longest wait for every acknowledged task to finish after the heal, seconds.
    #[arg(long, default_value_t = 90)]
    pub drain_timeout: u64,
    /// The taskswarm binary. Default: $CARGO_TARGET_DIR/release/taskswarm (or
    /// taskswarm-canary with --canary), else target/release/...
    #[arg(long)]
    pub taskswarm_bin: Option<PathBuf>,
    /// The binary rolling-upgrade restarts each node from, with the same flags and data
    /// directory (required by rolling-upgrade, refused without it).
    #[arg(long, value_name = "PATH")]
    pub upgrade_bin: Option<PathBuf>,
    /// Where data directories, node logs, the history and the report go. Default: a new
    /// directory under /var/tmp/taskswarm-jepsen/.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One worker process of a run (started by the harness).
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

impl Args {
    fn taskswarm_bin(&self) -> PathBuf {
        self.taskswarm_bin.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            let name = if self.canary {
                "taskswarm-canary"
            } else {
                "taskswarm"
            };
            target.join("release").join(name)
        })
    }

    /// `--run-dir`, or a new directory named after `what` and the time. Nanoseconds:
    /// inside the pid namespace every harness is pid 1, so the pid cannot tell runs apart.
    fn run_dir_or_new(&self, what: &str) -> PathBuf {
        self.run_dir.clone().unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            PathBuf::from(RUN_ROOT).join(format!("{what}-{nanos}"))
        })
    }
}

/// How a smoke run ended, apart from harness errors (which are `anyhow::Error`).
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("jepsen-run: tokio runtime: {e}");
        ExitCode::from(EXIT_HARNESS)
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Worker(w)) = &args.command {
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        return match rt.block_on(worker::run(w.clone())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("jepsen-run worker: {e:#}");
                ExitCode::from(EXIT_HARNESS)
            }
        };
    }
    // Outside the sandbox this execs `unshare` and never returns; the exit code is the
    // sandboxed copy's.
    if let Err(e) = sandbox::enter() {
        eprintln!("jepsen-run: entering the sandbox: {e}");
        return ExitCode::from(EXIT_HARNESS);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if args.smoke {
        return smoke_main(&rt, &args);
    }
    let result = rt.block_on(async {
        tokio::select! {
            r = test_run::run(&args) => r,
            sig = interrupted() => Err(anyhow::anyhow!("interrupted by {sig}")),
        }
    });
    match result {
        Ok(r) => verdict_exit(&args, &r),
        Err(e) => {
            eprintln!("jepsen-run: harness error: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn verdict_exit(args: &Args, r: &test_run::RunResult) -> ExitCode {
    let Some(expected) = &args.expect_anomaly else {
        println!(
            "jepsen-run: verdict {:?} ({})",
            r.verdict,
            r.run_dir.display()
        );
        let code = u8::try_from(r.verdict.exit_code()).unwrap_or(EXIT_HARNESS);
        if code == 0 && args.expect_recovery {
            let missed = r.recovery.iter().filter(|j| !j.met).count();
            if missed > 0 || r.recovery.is_empty() {
                println!("jepsen-run: {missed} recovery targets missed (or none judged)");
                return ExitCode::from(EXIT_SLOW);
            }
            println!("jepsen-run: every recovery target met");
        }
        return ExitCode::from(code);
    };
    let found = r
        .findings
        .iter()
        .any(|f| f.property == expected.as_str() && !f.anomalies.is_empty());
    if found {
        println!(
            "jepsen-run: expected anomaly in {expected} found: the checker caught the broken build"
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "jepsen-run: expected an anomaly in {expected}, none found (verdict {:?})",
            r.verdict
        );
        ExitCode::from(if r.verdict == Verdict::Unknown {
            EXIT_HARNESS
        } else {
            EXIT_FAILED
        })
    }
}

fn smoke_main(rt: &tokio::runtime::Runtime, args: &Args) -> ExitCode {
    let result = rt.block_on(async {
        tokio::select! {
            r = smoke::run(args) => r,
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
