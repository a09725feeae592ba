//! One run of one workload against one driver: producers and workers in closed loops,
//! a warm-up, then the measured window with server CPU sampled at both ends. Every loop
//! is aborted at the end of the window, so a run always stops by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cpu;
use crate::drivers::{Driver, Producer, Worker};
use crate::payload;
use crate::recorder::{Op, Percentiles, Recorder};
use crate::workload::Workload;

/// Longest one enqueue, claim or complete may take before it counts as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an error, so a broken system is not hammered in a tight loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Longest the setup of all producers and workers may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub lifecycles: u64,
    pub lifecycles_per_s: f64,
    pub enqueued_tasks: u64,
    pub enqueue: Percentiles,
    pub end_to_end: Percentiles,
    pub claim: Percentiles,
    pub complete: Percentiles,
    /// Server CPU time over the window divided by the lifecycles in it.
    pub server_cpu_ms_per_lifecycle: f64,
    pub server_cpu_s: f64,
    /// Processes in the servers' trees at the end of the window.
    pub server_processes: usize,
    /// The load generator's own CPU per lifecycle (for reference).
    pub client_cpu_ms_per_lifecycle: f64,
    pub errors_enqueue: u64,
    pub errors_claim: u64,
    pub errors_complete: u64,
    /// Claims that returned no task (whole run, warm-up included).
    pub claims_empty: u64,
    pub measure_s: f64,
}

/// Runs `workload` against `driver`; `server_pids` are the roots of the server processes.
pub async fn run<D: Driver>(
    driver: Arc<D>,
    workload: &Workload,
    server_pids: &[u32],
) -> anyhow::Result<RunResult> {
    let _ = payload::epoch();
    let ticks_per_s = cpu::clock_ticks_per_s()?;
    // Permits are unfinished tasks: a producer takes one per task before it sends the
    // enqueue, a worker gives them back once the completion is acknowledged.
    let gate = Arc::new(Semaphore::new(workload.unfinished_max));

    let (producers, workers) = tokio::time::timeout(CONNECT_TIMEOUT, connect(&*driver, workload))
        .await
        .context("connecting producers and workers timed out")??;

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(workload.warmup_s);
    let window_end = window_start + Duration::from_secs_f64(workload.measure_s);
    let rec = Arc::new(Recorder::new(window_start, window_end));

    let mut loops = JoinSet::new();
    for producer in producers {
        let producer = Arc::new(producer);
        for slot in 0..workload.inflight {
            loops.spawn(producer_loop(
                producer.clone(),
                slot,
                workload.enqueue_batch,
                gate.clone(),
                rec.clone(),
            ));
        }
    }
    for worker in workers {
        loops.spawn(worker_loop(
            worker,
            workload.claim_max,
            gate.clone(),
            rec.clone(),
        ));
    }

    tokio::time::sleep_until(window_start.into()).await;
    let (cpu_before, self_before) = (cpu::sample(server_pids), cpu::self_ticks());
    tokio::time::sleep_until(window_end.into()).await;
    let (cpu_after, self_after) = (cpu::sample(server_pids), cpu::self_ticks());
    loops.shutdown().await;

    let lifecycles = rec.lifecycles();
    let server_cpu = cpu::ticks_to_duration(
        cpu_after.ticks.saturating_sub(cpu_before.ticks),
        ticks_per_s,
    );
    let client_cpu = cpu::ticks_to_duration(self_after.saturating_sub(self_before), ticks_per_s);
    let per_lifecycle_ms = |d: Duration| {
        if lifecycles == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1000.0 / lifecycles as f64
        }
    };
    Ok(RunResult {
        lifecycles,
        lifecycles_per_s: lifecycles as f64 / workload.measure_s,
        enqueued_tasks: rec.enqueued_tasks(),
        enqueue: rec.enqueue_latency(),
        end_to_end: rec.end_to_end_latency(),
        claim: rec.claim_latency(),
        complete: rec.complete_latency(),
        server_cpu_ms_per_lifecycle: per_lifecycle_ms(server_cpu),
        server_cpu_s: server_cpu.as_secs_f64(),
        server_processes: cpu_after.processes,
        client_cpu_ms_per_lifecycle: per_lifecycle_ms(client_cpu),
        errors_enqueue: rec.errors(Op::Enqueue),
        errors_claim: rec.errors(Op::Claim),
        errors_complete: rec.errors(Op::Complete),
        claims_empty: rec.claims_empty(),
        measure_s: workload.measure_s,
    })
}

async fn connect<D: Driver>(
    driver: &D,
    workload: &Workload,
) -> anyhow::Result<(Vec<D::Producer>, Vec<D::Worker>)> {
    let mut producers = Vec::with_capacity(workload.producers);
    for p in 0..workload.producers {
        producers.push(
            driver
                .producer(p, workload.inflight)
                .await
                .with_context(|| format!("producer {p}"))?,
        );
    }
    let mut workers = Vec::with_capacity(workload.workers);
    for w in 0..workload.workers {
        workers.push(
            driver
                .worker(w)
                .await
                .with_context(|| format!("worker {w}"))?,
        );
    }
    Ok((producers, workers))
}

async fn producer_loop<P: Producer>(
    producer: Arc<P>,
    slot: usize,
    batch: usize,
    gate: Arc<Semaphore>,
    rec: Arc<Recorder>,
) {
    let permits = u32::try_from(batch).expect("batch fits u32");
    loop {
        let Ok(permit) = gate.acquire_many(permits).await else {
            return;
        };
        permit.forget();
        let sent = Instant::now();
        let bodies = (0..batch).map(|_| payload::make(sent)).collect();
        match tokio::time::timeout(OP_TIMEOUT, producer.enqueue(slot, bodies)).await {
            Ok(Ok(())) => rec.enqueued(sent, Instant::now(), batch),
            outcome => {
                log_error("enqueue", outcome);
                rec.error(Op::Enqueue);
                gate.add_permits(batch);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
}

async fn worker_loop<W: Worker>(
    mut worker: W,
    claim_max: usize,
    gate: Arc<Semaphore>,
    rec: Arc<Recorder>,
) {
    loop {
        let sent = Instant::now();
        let tasks = match tokio::time::timeout(OP_TIMEOUT, worker.claim(claim_max)).await {
            Ok(Ok(tasks)) => tasks,
            outcome => {
                log_error("claim", outcome);
                rec.error(Op::Claim);
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        if tasks.is_empty() {
            rec.claimed_nothing();
            continue;
        }
        rec.claimed(sent, Instant::now());
        let n = tasks.len();
        let enqueue_sent: Vec<Option<Instant>> =
            tasks.iter().map(|t| payload::sent_at(W::body(t))).collect();
        let sent = Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, worker.complete(tasks)).await {
            Ok(Ok(())) => rec.completed(sent, Instant::now(), enqueue_sent.into_iter()),
            outcome => {
                log_error("complete", outcome);
                rec.error(Op::Complete);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
        // Completed or given up on: either way the producers may send more.
        gate.add_permits(n);
    }
}

/// Prints the first errors of a run; later ones are only counted.
fn log_error<T>(op: &str, outcome: Result<anyhow::Result<T>, tokio::time::error::Elapsed>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    /// Errors printed per process.
    const ERRORS_PRINTED_MAX: u32 = 10;
    static PRINTED: AtomicU32 = AtomicU32::new(0);
    if PRINTED.fetch_add(1, Ordering::Relaxed) >= ERRORS_PRINTED_MAX {
        return;
    }
    match outcome {
        Ok(Err(e)) => eprintln!("loadgen: {op} failed: {e:#}"),
        Err(_) => eprintln!("loadgen: {op} timed out after {OP_TIMEOUT:?}"),
        Ok(Ok(_)) => {}
    }
}
