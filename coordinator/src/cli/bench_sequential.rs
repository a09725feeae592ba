//! `taskswarm bench --sequential N`: the latency of one write on an otherwise idle
//! cluster. One client sends N enqueues one after another straight to the leader (no
//! redirect hop) on one kept-alive connection, and prints percentiles next to the data
//! disk's fdatasync latency: the floor a replicated, fsynced write is measured against.

use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use serde_json::json;

use super::bench::{fsync_latencies, leader_addr, run_id, BenchArgs, LATENCY_US_MAX};

/// Writes sent before measuring: connection set-up and first allocations.
const WARMUP_WRITES: u64 = 50;
/// Most sequential writes in one run.
pub const SEQUENTIAL_WRITES_MAX: u64 = 1_000_000;

pub async fn run(
    http: &reqwest::Client,
    server: &str,
    args: &BenchArgs,
    count: u64,
) -> anyhow::Result<()> {
    if count == 0 || count > SEQUENTIAL_WRITES_MAX {
        bail!("--sequential must be 1..={SEQUENTIAL_WRITES_MAX}");
    }
    let leader = leader_addr(http, server).await?;
    let payload = json!({ "data": "x".repeat(args.payload_bytes) });
    let run_id = run_id();
    let mut h = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3)?;
    let started = Instant::now();
    for n in 0..WARMUP_WRITES + count {
        let body = json!({"queue": args.queue, "kind": "bench", "payload": payload,
            "idempotency_key": format!("{run_id}-{n}")});
        let t = Instant::now();
        let r = http
            .post(format!("{leader}/v1/tasks"))
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "enqueue {n} answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let _ = r.bytes().await?;
        if n >= WARMUP_WRITES {
            let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
            h.record(us.clamp(1, LATENCY_US_MAX))?;
        }
    }
    let elapsed = started.elapsed();
    let fsync = fsync_latencies(&args.fsync_dir, Duration::from_secs(1))?;
    let ms = |us: u64| us as f64 / 1000.0;
    println!("taskswarm bench --sequential: {count} enqueues one at a time to the leader {leader}, payload {} B", args.payload_bytes);
    println!(
        "  write latency ms   p50 {:>6.3}   p90 {:>6.3}   p99 {:>6.3}   max {:>7.3}   ({:.0} writes/s)",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        (WARMUP_WRITES + count) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  fdatasync ms       p50 {:>6.3}   p90 {:>6.3}   p99 {:>6.3}   (4 KiB, in {})",
        ms(fsync.value_at_quantile(0.5)),
        ms(fsync.value_at_quantile(0.9)),
        ms(fsync.value_at_quantile(0.99)),
        args.fsync_dir.display()
    );
    Ok(())
}
