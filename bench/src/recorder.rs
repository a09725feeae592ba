//! What a run measures: latencies and counts of operations that finished inside the
//! measured window (warm-up excluded), and errors over the whole run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency a histogram holds, in microseconds (longer ones are clamped).
const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant digits kept by the histograms.
const HISTOGRAM_DIGITS: u8 = 3;

#[derive(Debug, Clone, Copy)]
pub enum Op {
    Enqueue,
    Claim,
    Complete,
}

#[derive(Debug)]
pub struct Recorder {
    window_start: Instant,
    window_end: Instant,
    enqueue: Mutex<Histogram<u64>>,
    claim: Mutex<Histogram<u64>>,
    complete: Mutex<Histogram<u64>>,
    end_to_end: Mutex<Histogram<u64>>,
    /// Tasks whose enqueue was acknowledged in the window.
    enqueued: AtomicU64,
    /// Tasks whose completion was acknowledged in the window: the lifecycles.
    lifecycles: AtomicU64,
    errors: [AtomicU64; 3],
    /// Claims that returned nothing (empty queue, or for etcd a lost race), whole run.
    claims_empty: AtomicU64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub count: u64,
}

fn histogram() -> Mutex<Histogram<u64>> {
    Mutex::new(
        Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_DIGITS)
            .expect("valid histogram bounds"),
    )
}

fn record(h: &Mutex<Histogram<u64>>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let _ = h
        .lock()
        .expect("histogram lock")
        .record(us.clamp(1, LATENCY_US_MAX));
}

fn percentiles(h: &Mutex<Histogram<u64>>) -> Percentiles {
    let h = h.lock().expect("histogram lock");
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        count: h.len(),
    }
}

impl Recorder {
    pub fn new(window_start: Instant, window_end: Instant) -> Self {
        Recorder {
            window_start,
            window_end,
            enqueue: histogram(),
            claim: histogram(),
            complete: histogram(),
            end_to_end: histogram(),
            enqueued: AtomicU64::new(0),
            lifecycles: AtomicU64::new(0),
            errors: Default::default(),
            claims_empty: AtomicU64::new(0),
        }
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.window_end
    }

    /// An enqueue request of `tasks` tasks, sent at `sent`, acknowledged at `acked`.
    pub fn enqueued(&self, sent: Instant, acked: Instant, tasks: usize) {
        if self.in_window(acked) {
            record(&self.enqueue, acked - sent);
            self.enqueued.fetch_add(tasks as u64, Ordering::Relaxed);
        }
    }

    /// A claim that returned at least one task.
    pub fn claimed(&self, sent: Instant, answered: Instant) {
        if self.in_window(answered) {
            record(&self.claim, answered - sent);
        }
    }

    /// A completion request acknowledged at `acked`; `sent_at` holds each task's enqueue
    /// send time (from its payload).
    pub fn completed(
        &self,
        sent: Instant,
        acked: Instant,
        sent_at: impl Iterator<Item = Option<Instant>>,
    ) {
        if !self.in_window(acked) {
            return;
        }
        record(&self.complete, acked - sent);
        let mut e2e = self.end_to_end.lock().expect("histogram lock");
        let mut n = 0;
        for enqueue_sent in sent_at {
            n += 1;
            if let Some(t) = enqueue_sent {
                let us = u64::try_from((acked - t).as_micros()).unwrap_or(u64::MAX);
                let _ = e2e.record(us.clamp(1, LATENCY_US_MAX));
            }
        }
        self.lifecycles.fetch_add(n, Ordering::Relaxed);
    }

    pub fn claimed_nothing(&self) {
        self.claims_empty.fetch_add(1, Ordering::Relaxed);
    }

    pub fn claims_empty(&self) -> u64 {
        self.claims_empty.load(Ordering::Relaxed)
    }

    pub fn error(&self, op: Op) {
        self.errors[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn lifecycles(&self) -> u64 {
        self.lifecycles.load(Ordering::Relaxed)
    }

    pub fn enqueued_tasks(&self) -> u64 {
        self.enqueued.load(Ordering::Relaxed)
    }

    pub fn errors(&self, op: Op) -> u64 {
        self.errors[op as usize].load(Ordering::Relaxed)
    }

    pub fn enqueue_latency(&self) -> Percentiles {
        percentiles(&self.enqueue)
    }

    pub fn claim_latency(&self) -> Percentiles {
        percentiles(&self.claim)
    }

    pub fn complete_latency(&self) -> Percentiles {
        percentiles(&self.complete)
    }

    pub fn end_to_end_latency(&self) -> Percentiles {
        percentiles(&self.end_to_end)
    }
}
