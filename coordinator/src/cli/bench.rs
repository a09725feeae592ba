//! `taskswarm bench`: a closed-loop load generator against a running cluster. Producers
//! enqueue, workers claim and complete; it prints full-lifecycle tasks/s, latency
//! percentiles per operation, the cluster's commands per Raft entry, and the data disk's
//! fsync rate for reference. It measures; it asserts nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Longest a benchmark may run.
pub const BENCH_DURATION_S_MAX: u64 = 3_600;
/// Most concurrent producers or workers.
pub const BENCH_CLIENTS_MAX: usize = 1_024;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 16)]
    pub producers: usize,
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Tasks per claim.
    #[arg(long, default_value_t = 4)]
    pub claim_max: u32,
    #[arg(long, default_value_t = 128)]
    pub payload_bytes: usize,
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
    /// Directory on the data disk to measure fsyncs/s in (a temp file, removed after).
    #[arg(long, default_value = ".")]
    pub fsync_dir: PathBuf,
    #[arg(long, default_value = "bench")]
    pub queue: String,
    /// Instead of the load: this many enqueues one after another from one client,
    /// straight to the leader, and their latency percentiles (the idle write latency).
    #[arg(long)]
    pub sequential: Option<u64>,
    /// Instead of the load: a backlog of this many queued tasks, loaded in batches and
    /// drained; prints memory per queued task on each node and snapshot figures.
    #[arg(long)]
    pub backlog: Option<u64>,
    /// With --backlog: stop after loading and leave the tasks queued.
    #[arg(long, requires = "backlog")]
    pub backlog_keep: bool,
    /// Instead of the load: drain what is queued in --queue (a backlog kept by
    /// --backlog-keep, e.g. after a restart), with --workers claiming up to --claim-max.
    #[arg(long, conflicts_with = "backlog")]
    pub backlog_drain: bool,
}

struct Recorder {
    enqueue: Mutex<Histogram<u64>>,
    claim: Mutex<Histogram<u64>>,
    complete: Mutex<Histogram<u64>>,
    enqueued: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
}

/// Largest latency the benchmarks' histograms hold (µs); longer ones count as this.
pub const LATENCY_US_MAX: u64 = 600_000_000;

pub(crate) fn histogram() -> Mutex<Histogram<u64>> {
    Mutex::new(Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds"))
}

/// Records the time since `since`, in µs.
pub(crate) fn record(h: &Mutex<Histogram<u64>>, since: Instant) {
    let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
    let _ = h
        .lock()
        .expect("histogram lock")
        .record(us.clamp(1, LATENCY_US_MAX));
}

/// A node's `/metrics` text.
pub(crate) async fn fetch_metrics(http: &reqwest::Client, addr: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{addr}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of an unlabelled metric line `NAME VALUE`; 0 when absent.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// `servers`: the global `--servers`; requests go to the first and follow redirects.
pub async fn run(args: BenchArgs, servers: &str) -> anyhow::Result<()> {
    if args.duration_s == 0 || args.duration_s > BENCH_DURATION_S_MAX {
        bail!("--duration-s must be 1..={BENCH_DURATION_S_MAX}");
    }
    if args.producers > BENCH_CLIENTS_MAX || args.workers > BENCH_CLIENTS_MAX || args.workers == 0 {
        bail!("--producers and --workers must be at most {BENCH_CLIENTS_MAX} (and at least one worker)");
    }
    let server = servers
        .split(',')
        .next()
        .context("--servers is empty")?
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    if let Some(count) = args.sequential {
        return super::bench_sequential::run(&http, &server, &args, count).await;
    }
    if let Some(count) = args.backlog {
        return super::bench_backlog::run(&http, &server, &args, count).await;
    }
    if args.backlog_drain {
        return super::bench_backlog::drain_only(&http, &server, &args).await;
    }
    let before = proposal_counters(&http, &server).await?;
    let fsyncs = measure_fsync(&args.fsync_dir).context("measuring fsync rate")?;

    let rec = Arc::new(Recorder {
        enqueue: histogram(),
        claim: histogram(),
        complete: histogram(),
        enqueued: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let payload = json!({ "data": "x".repeat(args.payload_bytes) });
    let run_id = self::run_id();
    let mut handles = Vec::new();
    for p in 0..args.producers {
        let (http, server, rec, stop, payload, queue, run_id) = (
            http.clone(),
            server.clone(),
            rec.clone(),
            stop.clone(),
            payload.clone(),
            args.queue.clone(),
            run_id.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"queue": queue, "kind": "bench", "payload": payload, "idempotency_key": format!("{run_id}-{p}-{n}")});
                let t = Instant::now();
                match http.post(format!("{server}/v1/tasks")).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        record(&rec.enqueue, t);
                        rec.enqueued.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        rec.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in 0..args.workers {
        let (http, server, rec, stop, queue, max) = (
            http.clone(),
            server.clone(),
            rec.clone(),
            stop.clone(),
            args.queue.clone(),
            args.claim_max,
        );
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"worker": format!("bench-{w}"), "queues": [queue], "max": max, "lease_ms": 30000, "wait_ms": 1000});
                let t = Instant::now();
                let tasks: Vec<Value> = match http.post(format!("{server}/v1/claim")).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        v["tasks"].as_array().cloned().unwrap_or_default()
                    }
                    _ => {
                        rec.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                if !tasks.is_empty() {
                    record(&rec.claim, t);
                }
                for task in tasks {
                    let body = json!({"token": task["lease"]["token"], "result": {"ok": true}});
                    let t = Instant::now();
                    match http.post(format!("{server}/v1/tasks/{}/complete", task["id"])).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            record(&rec.complete, t);
                            rec.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            rec.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration_s)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let completed = rec.completed.load(Ordering::Relaxed);
    let enqueued = rec.enqueued.load(Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    let after = proposal_counters(&http, &server).await?;
    let (entries, commands) = (
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
    );

    println!("taskswarm bench: {} producers, {} workers (claim max {}), payload {} B, {:.0} s against {server}",
        args.producers, args.workers, args.claim_max, args.payload_bytes, elapsed);
    println!("  full-lifecycle tasks/s   {:>10.0}   (completed {completed}, enqueued {enqueued}, errors {})",
        completed as f64 / elapsed, rec.errors.load(Ordering::Relaxed));
    println!(
        "  enqueue tasks/s          {:>10.0}",
        enqueued as f64 / elapsed
    );
    for (name, h) in [
        ("enqueue", &rec.enqueue),
        ("claim", &rec.claim),
        ("complete", &rec.complete),
    ] {
        let h = h.lock().expect("histogram lock");
        println!(
            "  {name:<9} latency ms     p50 {:>7.2}   p99 {:>7.2}   max {:>8.2}   (n={})",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            h.len()
        );
    }
    if entries > 0 {
        println!("  raft entries proposed    {entries:>10}   commands {commands}   ({:.1} commands per entry)", commands as f64 / entries as f64);
    }
    println!(
        "  disk fsyncs/s            {fsyncs:>10.0}   (4 KiB write + fdatasync, in {})",
        args.fsync_dir.display()
    );
    Ok(())
}

/// A prefix that keeps idempotency keys of separate runs apart.
pub fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("bench-{ms}-{}", std::process::id())
}

/// How long a benchmark waits for `server` to name a leader: a cluster that just started
/// may still be electing one (after a restart, a node that led does not resume its term).
const LEADER_WAIT_MS: u64 = 30_000;

/// The leader's address, as `server` sees it; waits up to `LEADER_WAIT_MS` for one.
pub async fn leader_addr(http: &reqwest::Client, server: &str) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match leader_addr_now(http, server).await {
            Ok(addr) => return Ok(addr),
            Err(e) if started.elapsed() >= Duration::from_millis(LEADER_WAIT_MS) => {
                return Err(e.context(format!("no leader after {LEADER_WAIT_MS} ms")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The leader's address, as `server` knows it now.
async fn leader_addr_now(http: &reqwest::Client, server: &str) -> anyhow::Result<String> {
    let status: Value = http
        .get(format!("{server}/v1/cluster"))
        .send()
        .await?
        .json()
        .await?;
    let leader = status["leader_id"].as_u64().context("no leader")?;
    Ok(status["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"].as_u64() == Some(leader)))
        .and_then(|m| m["addr"].as_str())
        .context("leader address")?
        .to_owned())
}

/// (entries, commands) proposed so far by the node's leader, from its metrics.
async fn proposal_counters(http: &reqwest::Client, server: &str) -> anyhow::Result<(u64, u64)> {
    let addr = leader_addr(http, server).await?;
    let text = fetch_metrics(http, &addr).await?;
    Ok((
        metric(&text, "taskswarm_entries_proposed_total"),
        metric(&text, "taskswarm_commands_proposed_total"),
    ))
}

/// Synchronous 4 KiB writes with fdatasync for one second: the rate Raft's log appends
/// are bounded by without group commit.
fn measure_fsync(dir: &std::path::Path) -> anyhow::Result<f64> {
    let h = fsync_latencies(dir, Duration::from_secs(1))?;
    Ok(h.len() as f64)
}

/// Latencies (µs) of synchronous 4 KiB writes with fdatasync for `span`, in `dir`.
pub fn fsync_latencies(dir: &std::path::Path, span: Duration) -> anyhow::Result<Histogram<u64>> {
    use std::io::Write;
    let path = dir.join(format!(".taskswarm-fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let block = vec![7u8; 4096];
    let start = Instant::now();
    let mut h = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds");
    while start.elapsed() < span {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        let _ = h.record(
            u64::try_from(t.elapsed().as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, LATENCY_US_MAX),
        );
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(h)
}
