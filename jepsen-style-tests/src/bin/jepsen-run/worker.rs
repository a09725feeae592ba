//! `jepsen-run worker`: one worker process of a run (started by the harness, never by
//! hand). It runs `--count` workers, each a history process, records their operations to
//! `--events`, and stops when its stdin closes: the harness's signal that the drain is
//! over. Being a separate process is the point: the nemesis can SIGSTOP it.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args as ClapArgs;
use jepsen_style_tests::run::clients::{self, Ctx};
use jepsen_style_tests::run::recorder::Recorder;
use jepsen_style_tests::run::rng::Rng;
use jepsen_style_tests::run::wire::Wire;
use jepsen_style_tests::run::workload::{parse_workload, Params};

#[derive(Debug, Clone, ClapArgs)]
pub struct WorkerArgs {
    /// Node base URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub node_urls: Vec<String>,
    /// Q, L or R.
    #[arg(long, value_parser = parse_workload)]
    pub workload: jepsen_style_tests::history::Workload,
    #[arg(long)]
    pub seed: u64,
    /// History process id of the first worker; the others follow.
    #[arg(long)]
    pub first_process: u64,
    #[arg(long)]
    pub count: u64,
    /// Where to record (JSON lines of events).
    #[arg(long)]
    pub events: PathBuf,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let rec = Recorder::file(&args.events)
        .with_context(|| format!("creating {}", args.events.display()))?;
    let wire = Arc::new(Wire::new(args.node_urls.clone())?);
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        wire,
        rec,
        params: Params::of(args.workload),
        stop: stop.clone(),
    };
    // Stdin closing is the stop signal (a thread: tokio's stdin would block shutdown).
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        stop.store(true, Ordering::Relaxed);
    });
    let base = Rng::new(args.seed);
    let mut handles = Vec::new();
    for p in args.first_process..args.first_process + args.count {
        handles.push(tokio::spawn(clients::worker(ctx.clone(), p, base.fork(p))));
    }
    for h in handles {
        h.await.context("worker task")?;
    }
    Ok(())
}
