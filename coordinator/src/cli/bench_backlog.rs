//! `taskswarm bench --backlog N`: a backlog of N queued tasks, loaded and drained, and
//! what it costs each node: resident memory per queued task (beyond its payload), the
//! write latency while it loads and drains (snapshots of the whole state run meanwhile),
//! and each node's last snapshot build from its metrics. With `--backlog-keep` it stops
//! after loading, so a script can restart the cluster and time the restore, and
//! `--backlog-drain` drains it afterwards (bench/backlog.sh does both).
//!
//! Loads through the Rust client as a user would (batch enqueues, each task with its
//! idempotency key), drains with workers that claim up to `--claim-max` tasks and
//! complete them in one batched request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::json;
use taskswarm_api as api;
use taskswarm_worker::{Client, ClientError};

use super::bench::{fetch_metrics, histogram, leader_addr, metric, record, BenchArgs};

/// Most tasks in one backlog run.
pub const BACKLOG_TASKS_MAX: u64 = 10_000_000;
/// Tasks per batch enqueue (the state machine's own limit is 1,024).
const LOAD_BATCH: u64 = 1_024;
/// Batch enqueues in flight while loading.
const LOAD_CONCURRENCY: usize = 4;
/// The drain's lease: a task of a claim whose outcome was unknown comes back after it.
const DRAIN_LEASE_MS: u64 = 10_000;
/// Unknown outcomes in a row after which a drain worker gives up.
const DRAIN_UNKNOWN_IN_A_ROW_MAX: u32 = 10;
/// How long a drain worker that found the queue empty waits before it looks again.
const DRAIN_RECHECK: Duration = Duration::from_millis(200);
/// Longest wait for every node to apply what was loaded.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

fn print_latency(name: &str, h: &Mutex<Histogram<u64>>) {
    let h = h.lock().expect("histogram lock");
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  {name:<22} ms  p50 {:>7.2}   p99 {:>7.2}   max {:>8.2}   (n={})",
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    );
}

/// A node's figures from its `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct NodeFigures {
    rss_bytes: u64,
    log_memtable_bytes: u64,
    applied_index: u64,
    snapshot_builds: u64,
    snapshot_view_ms: u64,
    snapshot_encode_ms: u64,
    snapshot_write_ms: u64,
    snapshot_bytes: u64,
    snapshot_tasks: u64,
    restore_ms: u64,
}

async fn node_figures(http: &reqwest::Client, addr: &str) -> anyhow::Result<NodeFigures> {
    let text = fetch_metrics(http, addr).await?;
    let read = |name: &str| metric(&text, name);
    Ok(NodeFigures {
        rss_bytes: read("process_resident_memory_bytes"),
        log_memtable_bytes: read("taskswarm_log_memtable_bytes"),
        applied_index: read("taskswarm_raft_applied_index"),
        snapshot_builds: read("taskswarm_snapshot_builds_total"),
        snapshot_view_ms: read("taskswarm_snapshot_last_view_ms"),
        snapshot_encode_ms: read("taskswarm_snapshot_last_encode_ms"),
        snapshot_write_ms: read("taskswarm_snapshot_last_write_ms"),
        snapshot_bytes: read("taskswarm_snapshot_last_bytes"),
        snapshot_tasks: read("taskswarm_snapshot_last_tasks"),
        restore_ms: read("taskswarm_snapshot_restore_ms"),
    })
}

async fn all_figures(
    http: &reqwest::Client,
    members: &[(u64, String)],
) -> anyhow::Result<Vec<NodeFigures>> {
    let mut out = Vec::with_capacity(members.len());
    for (_, addr) in members {
        out.push(node_figures(http, addr).await?);
    }
    Ok(out)
}

/// Waits until every node has applied the leader's last log index.
async fn wait_applied(
    http: &reqwest::Client,
    client: &Client,
    members: &[(u64, String)],
) -> anyhow::Result<()> {
    let target = client.cluster().await?.last_log_index;
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let figures = all_figures(http, members).await?;
        if figures.iter().all(|f| f.applied_index >= target) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nodes did not apply index {target} within {CATCH_UP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_snapshots(members: &[(u64, String)], figures: &[NodeFigures]) {
    for ((id, _), f) in members.iter().zip(figures) {
        if f.snapshot_builds == 0 {
            println!(
                "  node {id}: no snapshot built yet (restored at start in {} ms)",
                f.restore_ms
            );
            continue;
        }
        println!(
            "  node {id}: {} snapshot builds; last: {} tasks, {:.1} MiB, applies waited {} ms (view), encode {} ms, file write {} ms; restore at start {} ms",
            f.snapshot_builds,
            f.snapshot_tasks,
            f.snapshot_bytes as f64 / 1_048_576.0,
            f.snapshot_view_ms,
            f.snapshot_encode_ms,
            f.snapshot_write_ms,
            f.restore_ms
        );
    }
}

pub async fn run(
    http: &reqwest::Client,
    server: &str,
    args: &BenchArgs,
    count: u64,
) -> anyhow::Result<()> {
    if count == 0 || count > BACKLOG_TASKS_MAX {
        bail!("--backlog must be 1..={BACKLOG_TASKS_MAX}");
    }
    let leader = leader_addr(http, server).await?;
    let client = Client::new([leader.clone()])?;
    let status = client.cluster().await?;
    let members: Vec<(u64, String)> = status
        .members
        .iter()
        .map(|m| (m.id, m.addr.clone()))
        .collect();
    // The payload's JSON text is exactly `--payload-bytes` long: `{"data":"xx…"}`.
    let overhead = r#"{"data":""}"#.len();
    let payload_bytes = args.payload_bytes.max(overhead);
    let payload = json!({ "data": "x".repeat(payload_bytes - overhead) });
    let queued_before = queued(&client, &args.queue).await?;
    let before = all_figures(http, &members).await?;

    // ---- load ----
    let next_batch = Arc::new(AtomicU64::new(0));
    let load_latency = Arc::new(histogram());
    let batches = count.div_ceil(LOAD_BATCH);
    let started = Instant::now();
    let mut loaders = Vec::new();
    for _ in 0..LOAD_CONCURRENCY {
        let (client, next_batch, latency, payload, queue) = (
            client.clone(),
            next_batch.clone(),
            load_latency.clone(),
            payload.clone(),
            args.queue.clone(),
        );
        loaders.push(tokio::spawn(async move {
            loop {
                let b = next_batch.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let n = LOAD_BATCH.min(count - b * LOAD_BATCH);
                let tasks = (0..n)
                    .map(|_| api::EnqueueRequest {
                        queue: queue.clone(),
                        kind: "backlog".into(),
                        payload: payload.clone(),
                        ..Default::default()
                    })
                    .collect();
                let t = Instant::now();
                let results = client.enqueue_batch(tasks).await?;
                record(&latency, t);
                if let Some(refused) = results.iter().find(|r| !matches!(r, api::BatchItem::Ok(_)))
                {
                    bail!("an enqueue was refused: {refused:?}");
                }
            }
        }));
    }
    for l in loaders {
        l.await.context("a loader panicked")??;
    }
    let load_s = started.elapsed().as_secs_f64();
    wait_applied(http, &client, &members).await?;
    let loaded = all_figures(http, &members).await?;
    let queued_after = queued(&client, &args.queue).await?;

    println!(
        "taskswarm bench --backlog: {count} tasks of {payload_bytes} B payload into queue {:?} of {} nodes (leader {leader})",
        args.queue,
        members.len()
    );
    println!(
        "  load                     {:>10.0} tasks/s   ({count} in {load_s:.1} s, batches of {LOAD_BATCH}, {LOAD_CONCURRENCY} in flight; queued now {queued_after})",
        count as f64 / load_s
    );
    print_latency("batch enqueue latency", &load_latency);
    for (((id, _), b), a) in members.iter().zip(&before).zip(&loaded) {
        let per_task = a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / count as f64;
        println!(
            "  node {id}: RSS {:.0} -> {:.0} MiB: {per_task:.0} bytes per queued task, {:.0} beyond its payload (RocksDB memtables {:.0} -> {:.0} MiB)",
            b.rss_bytes as f64 / 1_048_576.0,
            a.rss_bytes as f64 / 1_048_576.0,
            per_task - payload_bytes as f64,
            b.log_memtable_bytes as f64 / 1_048_576.0,
            a.log_memtable_bytes as f64 / 1_048_576.0,
        );
    }
    print_snapshots(&members, &loaded);
    if args.backlog_keep {
        println!(
            "  kept the backlog (--backlog-keep): {} queued",
            queued_after
        );
        return Ok(());
    }

    // ---- drain ----
    let target = queued_before + count;
    drain(&client, args, target.min(queued_after)).await?;
    wait_applied(http, &client, &members).await?;
    print_snapshots(&members, &all_figures(http, &members).await?);
    Ok(())
}

/// `--backlog-drain`: drains what is queued now, then prints the snapshot figures.
pub async fn drain_only(
    http: &reqwest::Client,
    server: &str,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let leader = leader_addr(http, server).await?;
    let client = Client::new([leader.clone()])?;
    let members: Vec<(u64, String)> = client
        .cluster()
        .await?
        .members
        .iter()
        .map(|m| (m.id, m.addr.clone()))
        .collect();
    let count = queued(&client, &args.queue).await?;
    println!(
        "taskswarm bench --backlog-drain: {count} queued in {:?} (leader {leader})",
        args.queue
    );
    drain(&client, args, count).await?;
    wait_applied(http, &client, &members).await?;
    print_snapshots(&members, &all_figures(http, &members).await?);
    Ok(())
}

/// Counts an unknown outcome; too many in a row end the drain.
fn note_unknown(total: &AtomicU64, in_a_row: &mut u32) -> anyhow::Result<()> {
    total.fetch_add(1, Ordering::Relaxed);
    *in_a_row += 1;
    if *in_a_row >= DRAIN_UNKNOWN_IN_A_ROW_MAX {
        bail!("{in_a_row} claims or completions in a row had an unknown outcome");
    }
    Ok(())
}

/// Tasks in `queue` now in each of `states`, summed.
async fn count_in(client: &Client, queue: &str, states: &[api::TaskState]) -> anyhow::Result<u64> {
    let queues = client.queues().await?;
    Ok(queues
        .queues
        .iter()
        .find(|q| q.name == queue)
        .map(|q| states.iter().filter_map(|s| q.counts.get(s)).sum())
        .unwrap_or(0))
}

/// Queued tasks in `queue` now.
async fn queued(client: &Client, queue: &str) -> anyhow::Result<u64> {
    count_in(client, queue, &[api::TaskState::Queued]).await
}

/// Claims and completes `count` tasks with `--workers` workers, each claiming up to
/// `--claim-max` and completing them in one batched request.
///
/// A claim or a completion whose outcome is unknown (a timed-out write) is counted, and
/// the worker goes on:
/// - an unknown claim is not retried: a lease it may have got expires after
///   [`DRAIN_LEASE_MS`] and the task comes back (scheduled for its retry backoff, then
///   queued);
/// - an unknown completion is retried with the same tokens: one that had taken effect
///   answers `task_finished` and counts as done; `lease_lost` means the lease ran out
///   meanwhile and the task came back.
///
/// A worker that finds the queue empty stops only once nothing in it is running or
/// scheduled either, since such tasks may still come back. [`DRAIN_UNKNOWN_IN_A_ROW_MAX`]
/// unknown outcomes in a row (a cluster without quorum) end the drain with an error.
async fn drain(client: &Client, args: &BenchArgs, count: u64) -> anyhow::Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let unknown = Arc::new(AtomicU64::new(0));
    let claim_latency = Arc::new(histogram());
    let complete_latency = Arc::new(histogram());
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.workers.max(1) {
        let (client, done, unknown, claim_latency, complete_latency, queue, max) = (
            client.clone(),
            done.clone(),
            unknown.clone(),
            claim_latency.clone(),
            complete_latency.clone(),
            args.queue.clone(),
            args.claim_max.max(1),
        );
        workers.push(tokio::spawn(async move {
            let req = api::ClaimRequest {
                worker: format!("backlog-{w}"),
                queues: vec![queue.clone()],
                kinds: None,
                max,
                lease_ms: Some(DRAIN_LEASE_MS),
                wait_ms: 0,
                min_priority: None,
            };
            let mut unknown_in_a_row = 0u32;
            while done.load(Ordering::Relaxed) < count {
                let t = Instant::now();
                let claimed = client.claim(&req).await;
                record(&claim_latency, t);
                let tasks = match claimed {
                    Err(ClientError::Indeterminate(_)) => {
                        note_unknown(&unknown, &mut unknown_in_a_row)?;
                        continue;
                    }
                    other => other?,
                };
                unknown_in_a_row = 0;
                if tasks.is_empty() {
                    let left = [
                        api::TaskState::Queued,
                        api::TaskState::Running,
                        api::TaskState::Scheduled,
                    ];
                    if count_in(&client, &queue, &left).await? == 0 {
                        return anyhow::Ok(());
                    }
                    // Held by another worker, or by a lease of an unknown claim.
                    tokio::time::sleep(DRAIN_RECHECK).await;
                    continue;
                }
                let items: Vec<api::CompleteItem> = tasks
                    .iter()
                    .map(|c| api::CompleteItem {
                        task: c.id,
                        token: c.lease.token,
                        result: json!({"ok": true}),
                    })
                    .collect();
                let mut retried = false;
                let results = loop {
                    let t = Instant::now();
                    let answered = client.complete_batch(items.clone()).await;
                    record(&complete_latency, t);
                    match answered {
                        Err(ClientError::Indeterminate(_)) => {
                            note_unknown(&unknown, &mut unknown_in_a_row)?;
                            retried = true;
                        }
                        other => break other?,
                    }
                };
                unknown_in_a_row = 0;
                let mut completed = 0;
                for result in &results {
                    let kind = match result {
                        api::ItemResult::Ok(_) => {
                            completed += 1;
                            continue;
                        }
                        api::ItemResult::Err(body) => body.error.kind(),
                    };
                    match kind {
                        Some(api::ErrorCode::TaskFinished) if retried => completed += 1,
                        Some(api::ErrorCode::LeaseLost) if retried => {}
                        _ => bail!("a completion was refused: {result:?}"),
                    }
                }
                done.fetch_add(completed, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await.context("a worker panicked")??;
    }
    let s = started.elapsed().as_secs_f64();
    let drained = done.load(Ordering::Relaxed);
    println!(
        "  drain                    {:>10.0} tasks/s   ({drained} claimed and completed in {s:.1} s by {} workers claiming up to {})",
        drained as f64 / s,
        args.workers.max(1),
        args.claim_max.max(1)
    );
    let unknown = unknown.load(Ordering::Relaxed);
    if unknown > 0 {
        println!(
            "  outcome unknown          {unknown:>10} claims or batch completes (timed out: claims were left to expire, completions retried)"
        );
    }
    print_latency("claim latency", &claim_latency);
    print_latency("batch complete latency", &complete_latency);
    Ok(())
}
