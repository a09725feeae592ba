//! Every limit and default of the worker runtime, named in one place.
//!
//! Several mirror a server limit (`state-machine/src/limits.rs`): the worker checks them
//! when it is built, so a misconfigured worker fails at start instead of having every
//! claim or heartbeat refused while it runs.

use std::time::Duration;

/// Most slots of one worker, reserved ones included. Equal to the server's heartbeat
/// batch limit, so one request always renews every lease the worker holds.
pub const SLOTS_MAX: usize = HEARTBEAT_BATCH_MAX;
/// Slots of a worker that does not say.
pub const SLOTS_DEFAULT: usize = 4;
/// Most leases in one heartbeat request (the server's `HEARTBEAT_BATCH_MAX`).
pub const HEARTBEAT_BATCH_MAX: usize = 1024;
/// Most kinds one worker registers: every claim names them all, and the server accepts at
/// most this many (`CLAIM_KINDS_MAX`).
pub const KINDS_MAX: usize = 64;
/// Most queues one worker serves (the server's `CLAIM_QUEUES_MAX`).
pub const QUEUES_MAX: usize = 32;
/// Most tasks one claim asks for (the server's `CLAIM_MAX`).
pub const CLAIM_MAX: usize = 64;
/// Longest queue name, kind or worker id, in bytes (the server's `NAME_BYTES_MAX`).
pub const NAME_BYTES_MAX: usize = 128;
/// Priorities the server accepts; a reserved band's `min_priority` must be one of them.
pub const PRIORITY_MIN: i32 = -1_000;
pub const PRIORITY_MAX: i32 = 1_000;
/// Largest progress value, in bytes of JSON text (the server's `PAYLOAD_BYTES_MAX`). A
/// larger one would get the whole lease's heartbeat refused, so `ctx.progress` refuses it.
pub const PROGRESS_BYTES_MAX: usize = 256 * 1024;

/// Lease asked for on every claim unless the worker says otherwise.
pub const LEASE_MS_DEFAULT: u64 = 30_000;
/// Lease bounds (the server's `LEASE_MS_MIN` / `LEASE_MS_MAX`).
pub const LEASE_MS_MIN: u64 = 100;
pub const LEASE_MS_MAX: u64 = 60 * 60 * 1000;

/// Heartbeats go out every `lease / HEARTBEAT_DIVISOR`: two beats may be lost before the
/// local deadline passes.
pub const HEARTBEAT_DIVISOR: u32 = 3;
/// Bounds of the derived heartbeat interval: not a busy loop for tiny leases, not silent
/// for minutes on huge ones (progress rides on heartbeats).
pub const HEARTBEAT_INTERVAL_MIN: Duration = Duration::from_millis(30);
pub const HEARTBEAT_INTERVAL_MAX: Duration = Duration::from_secs(10);

/// Longest claim long-poll. A claim's lease is counted from when it was *sent*, so the
/// poll is also capped at `lease / HEARTBEAT_DIVISOR`: a task handed out at the very end of
/// a poll still has two thirds of its lease before the worker's local deadline. A claim in
/// flight is never dropped, so this also bounds how long an idle worker takes to stop; an
/// empty poll costs the cluster no log entry.
pub const CLAIM_WAIT_MAX: Duration = Duration::from_secs(5);
/// Back-off after a failed claim, doubling up to the maximum.
pub const CLAIM_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
pub const CLAIM_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Time spent retrying a complete, fail or release whose outcome stays unknown (elections,
/// a dead leader) before the worker gives up and lets the lease expire.
pub const END_CALL_BUDGET: Duration = Duration::from_secs(120);
pub const END_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
pub const END_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How long running handlers may finish after a shutdown starts, unless the worker says.
pub const SHUTDOWN_GRACE_DEFAULT: Duration = Duration::from_secs(30);
/// After its cancellation token fires, how long a handler may take to return before it is
/// aborted (dropped at its next `.await`) and its slot freed.
pub const HANDLER_STOP_WAIT_DEFAULT: Duration = Duration::from_secs(5);
