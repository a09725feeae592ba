//! `loadgen compare`: every system one after another (never two at once, so they never
//! share the CPU), each run on a freshly started cluster that runs every workload in turn
//! (each on its own new queue/stream/table), then the medians, the table, JSON and SVG.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cluster::Cluster;
use crate::drivers::taskswarm::TaskswarmOptions;
use crate::report;
use crate::stats::{self, Measurement};
use crate::system::{self, System};
use crate::workload::{Shape, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Systems to run, in this order [default: all; with --smoke: taskswarm,nats].
    #[arg(long, value_delimiter = ',')]
    pub systems: Option<Vec<System>>,
    #[arg(long, value_delimiter = ',', default_value = "unbatched,batched")]
    pub workloads: Vec<Shape>,
    /// Runs per system (a fresh cluster each); the table shows the medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 5.0)]
    pub warmup_s: f64,
    #[arg(long, default_value_t = 20.0)]
    pub measure_s: f64,
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// CI mode: 1 s warm-up, 3 s measured, 1 run, taskswarm and NATS unless --systems is
    /// given; fails if any system completed nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Where results.json, chart.svg and table.md go.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The peer scripts (`<system>.sh start|stop DIR`).
    #[arg(long, default_value = "peers")]
    pub peers_dir: PathBuf,
    /// Clusters' data directories are made under here (and removed after each run).
    #[arg(long, default_value = "/var/tmp/taskswarm-bench")]
    pub scratch: PathBuf,
    /// Keep each cluster's directory (data and logs) after its run.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub taskswarm: TaskswarmOptions,
    /// The taskswarm binary the cluster runs (`taskswarm dev`).
    #[arg(
        long,
        env = "TASKSWARM_BIN",
        default_value = "/var/tmp/taskswarm-target/release/taskswarm"
    )]
    pub taskswarm_bin: PathBuf,
}

/// Smoke mode's figures.
const SMOKE_WARMUP_S: f64 = 1.0;
const SMOKE_MEASURE_S: f64 = 3.0;
const SMOKE_SYSTEMS: [System; 2] = [System::Taskswarm, System::Nats];
const ALL_SYSTEMS: [System; 5] = [
    System::Taskswarm,
    System::Nats,
    System::Rabbitmq,
    System::Etcd,
    System::Postgres,
];
/// Longest a comparison may measure per run and workload (keeps every run bounded).
const MEASURE_S_MAX: f64 = 600.0;

/// Returns whether every system ran and completed work.
pub async fn run(mut args: CompareArgs) -> anyhow::Result<bool> {
    if args.smoke {
        args.warmup_s = SMOKE_WARMUP_S;
        args.measure_s = SMOKE_MEASURE_S;
        args.runs = 1;
    }
    let default_systems = if args.smoke {
        &SMOKE_SYSTEMS[..]
    } else {
        &ALL_SYSTEMS[..]
    };
    let systems = args
        .systems
        .clone()
        .unwrap_or_else(|| default_systems.to_vec());
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.measure_s > 0.0
            && args.measure_s <= MEASURE_S_MAX
            && args.warmup_s >= 0.0
            && args.warmup_s <= MEASURE_S_MAX,
        "--measure-s must be in (0, {MEASURE_S_MAX}] and --warmup-s in [0, {MEASURE_S_MAX}]"
    );
    anyhow::ensure!(
        args.producers >= 1 && args.workers >= 1,
        "at least one producer and one worker"
    );
    let workloads: Vec<Workload> = args
        .workloads
        .iter()
        .map(|&s| {
            Workload::new(
                s,
                args.producers,
                args.workers,
                args.warmup_s,
                args.measure_s,
            )
        })
        .collect();
    let env = vec![(
        "TASKSWARM_BIN".to_owned(),
        std::fs::canonicalize(&args.taskswarm_bin)
            .unwrap_or_else(|_| args.taskswarm_bin.clone())
            .to_string_lossy()
            .into_owned(),
    )];
    let peers_dir = std::fs::canonicalize(&args.peers_dir)
        .with_context(|| format!("finding the peer scripts in {}", args.peers_dir.display()))?;

    let mut measurements = Vec::new();
    let mut failures = Vec::new();
    for &system in &systems {
        for run in 0..args.runs {
            let ok = run_system(
                system,
                run,
                &args,
                &workloads,
                &peers_dir,
                &env,
                &mut measurements,
                &mut failures,
            )
            .await;
            if !ok {
                break;
            }
        }
    }

    let summaries = stats::summarize(&measurements, &systems, &args.workloads);
    failures.extend(stats::idle_systems(&summaries));
    let caption = caption(&args, cpu_cores());
    let table = format!(
        "{caption}\n{}",
        report::table::render(&summaries, &workloads, args.runs)
    );
    println!("{table}");
    if systems.contains(&System::Nats) {
        println!("NATS: Debian's nats-server 2.9 does not fsync each write; its acks are quorum-replicated but not on disk.");
    }
    for f in &failures {
        println!("FAILED: {f}");
    }
    report::write_all(
        &args.out,
        &table,
        &caption,
        &report::json::Report::new(
            args.smoke,
            args.runs,
            &workloads,
            &summaries,
            &measurements,
            &failures,
        ),
    )?;
    eprintln!(
        "loadgen: wrote {}/table.md, results.json, chart.svg",
        args.out.display()
    );
    Ok(failures.is_empty())
}

/// One run of `system`: a fresh cluster, every workload on it, the cluster stopped.
/// Returns false when the cluster did not start (later runs would fail the same way).
#[allow(clippy::too_many_arguments)]
async fn run_system(
    system: System,
    run: usize,
    args: &CompareArgs,
    workloads: &[Workload],
    peers_dir: &Path,
    env: &[(String, String)],
    measurements: &mut Vec<Measurement>,
    failures: &mut Vec<String>,
) -> bool {
    eprintln!(
        "loadgen: starting {} (run {}/{})",
        system.name(),
        run + 1,
        args.runs
    );
    let mut cluster = match Cluster::start(peers_dir, system, &args.scratch, env, args.keep).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            failures.push(format!("{}: {e:#}", system.name()));
            return false;
        }
    };
    for w in workloads {
        let tag = format!("{}-{run}", w.shape.name());
        match system::run_once(
            system,
            &cluster.endpoints,
            &cluster.pids,
            w,
            &tag,
            &args.taskswarm,
        )
        .await
        {
            Ok(result) => {
                eprintln!(
                    "loadgen: {} {} run {}: {:.0} lifecycles/s, enqueue p50 {:.2} ms, end-to-end p50 {:.2} ms, server CPU {:.3} ms/lifecycle, errors {}",
                    system.name(),
                    w.shape.name(),
                    run + 1,
                    result.lifecycles_per_s,
                    result.enqueue.p50_ms,
                    result.end_to_end.p50_ms,
                    result.server_cpu_ms_per_lifecycle,
                    result.errors_enqueue + result.errors_claim + result.errors_complete,
                );
                measurements.push(Measurement {
                    system,
                    shape: w.shape,
                    run,
                    version: cluster.version.clone(),
                    client: system.client_variant(&args.taskswarm),
                    result,
                });
            }
            Err(e) => {
                cluster.keep();
                let failure = format!(
                    "{} {}: {e:#} (cluster logs kept in {})",
                    system.name(),
                    w.shape.name(),
                    cluster.dir.display()
                );
                eprintln!("loadgen: {failure}");
                failures.push(failure);
            }
        }
    }
    if let Err(e) = cluster.stop() {
        failures.push(format!("{}: {e:#}", system.name()));
    }
    true
}

fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// One line saying what was run; a smoke run says its numbers are not results.
fn caption(args: &CompareArgs, cores: usize) -> String {
    let what = format!(
        "one machine, {cores} cores shared by every node and the load generator; {} s warm-up, {} s measured, median of {} run(s)",
        args.warmup_s, args.measure_s, args.runs
    );
    if args.smoke {
        format!("SMOKE RUN (CI check, not results): {what}")
    } else {
        what
    }
}
