//! The two workloads every system runs, with the parameters as defaults.

use serde::Serialize;

/// Enqueues in flight per producer (unbatched).
pub const UNBATCHED_INFLIGHT: usize = 16;
/// Producers pause while more tasks than this are unfinished (unbatched).
pub const UNBATCHED_UNFINISHED_MAX: usize = 128;
/// Tasks per batch enqueue (batched).
pub const BATCH_ENQUEUE_TASKS: usize = 64;
/// Most tasks one claim asks for (batched).
pub const BATCH_CLAIM_MAX: usize = 16;
/// Batch enqueues in flight per producer (batched).
pub const BATCHED_INFLIGHT: usize = 4;
/// Unfinished-task cap of the batched workload: room for every producer's batches in
/// flight (4 × 4 × 64 = 1,024) plus a backlog, so claims of 16 rarely come back short.
pub const BATCHED_UNFINISHED_MAX: usize = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// One task per enqueue, claim one, complete one.
    Unbatched,
    /// Batch enqueue of 64, claim up to 16, batched completes.
    Batched,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Unbatched => "unbatched",
            Shape::Batched => "batched",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub shape: Shape,
    pub producers: usize,
    /// Enqueue requests in flight per producer.
    pub inflight: usize,
    pub workers: usize,
    /// Tasks per enqueue request.
    pub enqueue_batch: usize,
    /// Most tasks per claim.
    pub claim_max: usize,
    /// Producers pause while more tasks than this are unfinished (enqueue sent, completion
    /// not yet acknowledged).
    pub unfinished_max: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
}

impl Workload {
    pub fn new(
        shape: Shape,
        producers: usize,
        workers: usize,
        warmup_s: f64,
        measure_s: f64,
    ) -> Self {
        let (inflight, enqueue_batch, claim_max, unfinished_max) = match shape {
            Shape::Unbatched => (UNBATCHED_INFLIGHT, 1, 1, UNBATCHED_UNFINISHED_MAX),
            Shape::Batched => (
                BATCHED_INFLIGHT,
                BATCH_ENQUEUE_TASKS,
                BATCH_CLAIM_MAX,
                BATCHED_UNFINISHED_MAX,
            ),
        };
        Workload {
            shape,
            producers,
            inflight,
            workers,
            enqueue_batch,
            claim_max,
            unfinished_max,
            warmup_s,
            measure_s,
        }
    }
}
