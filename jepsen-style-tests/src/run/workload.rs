//! What each workload does, as numbers: how many producers, workers and readers, how
//! fast, how long leases are and how long work takes. One table, so a reader sees at a
//! glance what "workload L" means.

use crate::history::Workload;

/// The queue every workload uses.
pub const QUEUE: &str = "jepsen";
/// The task kind.
pub const KIND: &str = "work";
/// Long-poll time of a claim: a worker waits this long for a task before asking again.
pub const CLAIM_WAIT_MS: u64 = 1_000;
/// Attempts per task: high, so that lease expiries under faults never dead-letter a task
/// (the lost checker demands every acknowledged task succeed).
pub const MAX_ATTEMPTS: u32 = 1_000;
/// Retry backoff of a failed or expired attempt: short, so the drain stays short.
pub const BACKOFF_INITIAL_MS: u64 = 50;
pub const BACKOFF_MAX_MS: u64 = 1_000;
/// How often an unknown-outcome enqueue is retried (same idempotency key) before the
/// producer moves on and leaves it unknown.
pub const ENQUEUE_RETRIES_MAX: u32 = 3;
/// How often an unknown-outcome complete is retried with the same token.
pub const COMPLETE_RETRIES_MAX: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub producers: usize,
    /// Pause between two enqueues of one producer, ms (uniform in the range).
    pub enqueue_pause_ms: (u64, u64),
    pub worker_procs: usize,
    pub workers_per_proc: usize,
    pub claim_max: u32,
    pub lease_ms: u64,
    /// Simulated work per task, ms.
    pub work_ms: (u64, u64),
    /// Heartbeat this often while working (`None`: never).
    pub heartbeat_every_ms: Option<u64>,
    /// Chance (%) a due heartbeat is skipped: the lease then runs out mid-work.
    pub heartbeat_skip_percent: u64,
    /// Chance (%) a worker that lost its lease still tries to complete: a stale attempt
    /// the cluster must refuse.
    pub stale_complete_percent: u64,
    /// Chance (%) a task is failed (retryable) or released instead of completed.
    pub fail_percent: u64,
    pub release_percent: u64,
    pub readers: usize,
    pub read_pause_ms: (u64, u64),
    /// Chance (%) a reader cancels the task instead of reading it.
    pub cancel_percent: u64,
}

impl Params {
    pub fn of(workload: Workload) -> Params {
        match workload {
            Workload::Q => Params {
                producers: 3,
                enqueue_pause_ms: (20, 60),
                worker_procs: 2,
                workers_per_proc: 3,
                claim_max: 2,
                lease_ms: 2_000,
                work_ms: (5, 40),
                heartbeat_every_ms: None,
                heartbeat_skip_percent: 0,
                stale_complete_percent: 100,
                fail_percent: 3,
                release_percent: 2,
                readers: 0,
                read_pause_ms: (0, 0),
                cancel_percent: 0,
            },
            // Few tasks, many workers, leases about as long as the work.
            Workload::L => Params {
                producers: 1,
                enqueue_pause_ms: (150, 350),
                worker_procs: 3,
                workers_per_proc: 4,
                claim_max: 1,
                lease_ms: 1_000,
                work_ms: (300, 1_500),
                heartbeat_every_ms: Some(400),
                heartbeat_skip_percent: 35,
                stale_complete_percent: 100,
                fail_percent: 0,
                release_percent: 0,
                readers: 0,
                read_pause_ms: (0, 0),
                cancel_percent: 0,
            },
            Workload::R => Params {
                producers: 2,
                enqueue_pause_ms: (30, 80),
                worker_procs: 2,
                workers_per_proc: 2,
                claim_max: 2,
                lease_ms: 2_000,
                work_ms: (20, 200),
                heartbeat_every_ms: Some(500),
                heartbeat_skip_percent: 0,
                stale_complete_percent: 100,
                fail_percent: 3,
                release_percent: 2,
                readers: 3,
                read_pause_ms: (10, 40),
                cancel_percent: 3,
            },
        }
    }
}

pub fn parse_workload(s: &str) -> Result<Workload, String> {
    match s {
        "Q" | "q" => Ok(Workload::Q),
        "L" | "l" => Ok(Workload::L),
        "R" | "r" => Ok(Workload::R),
        other => Err(format!("unknown workload {other:?} (Q, L or R)")),
    }
}
