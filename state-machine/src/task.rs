//! A task, its lease, its error and its bounded event history.

use std::borrow::Cow;
use std::sync::Arc;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::history::History;
use crate::limits::TASK_EVENTS_MAX;

/// A task's id: assigned by the state machine, dense and increasing from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

/// A fencing token: `log_index * TOKEN_SLOTS_PER_ENTRY + n` for the n-th claim granted in
/// the entry at `log_index`. Strictly increasing over the life of the cluster, unique per
/// claim, so a downstream store can reject any writer holding a smaller one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a task is in its life. The last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    /// Waiting before it becomes ready: for an absolute `run_at` (a wall time) or a
    /// relative delay (a cluster time); see [`RunAt`].
    Scheduled,
    /// Ready to be claimed.
    Queued,
    /// Leased to a worker.
    Running,
    Succeeded,
    /// Attempts exhausted or not retryable: the dead-letter set.
    Failed,
    Cancelled,
    /// A timeout fired (`assign_timeout` or `deadline_exceeded`).
    Expired,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Scheduled,
        TaskState::Queued,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Expired,
    ];

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Expired
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Error codes the state machine itself assigns. A worker's own failure carries
/// `handler_error` unless the worker names a code.
pub mod error_code {
    pub const HANDLER_ERROR: &str = "handler_error";
    pub const LEASE_EXPIRED: &str = "lease_expired";
    /// `start_to_close_ms` passed: one attempt ran too long.
    pub const RUN_TIMEOUT: &str = "run_timeout";
    /// `schedule_to_start_ms` passed: nobody claimed the task in time.
    pub const ASSIGN_TIMEOUT: &str = "assign_timeout";
    /// `schedule_to_close_ms` passed: the whole task took too long.
    pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
    pub const CANCELLED: &str = "cancelled";
}

/// Why an attempt or a task ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

impl TaskError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Exponential retry backoff. The delay before retry n (n = attempts used so far) is
/// `min(max_ms, initial_ms * multiplier^(n-1))`, less a jitter of up to 20% derived from the
/// task id and attempt so that every node computes the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial_ms: u64,
    /// Thousandths: 2000 doubles the delay each attempt.
    pub multiplier_permille: u32,
    pub max_ms: u64,
}

impl Backoff {
    /// What an enqueue that names no backoff gets.
    pub const DEFAULT: Backoff = Backoff {
        initial_ms: crate::limits::DEFAULT_BACKOFF_INITIAL_MS,
        multiplier_permille: crate::limits::DEFAULT_BACKOFF_MULTIPLIER_PERMILLE,
        max_ms: crate::limits::DEFAULT_BACKOFF_MAX_MS,
    };

    pub fn delay_ms(&self, task: TaskId, attempt: u32) -> u64 {
        let mut delay = self.initial_ms.min(self.max_ms);
        for _ in 1..attempt {
            if delay >= self.max_ms {
                break;
            }
            delay =
                (delay.saturating_mul(u64::from(self.multiplier_permille)) / 1000).min(self.max_ms);
        }
        let jitter_permille = splitmix64(task.0 ^ (u64::from(attempt) << 40)) % 200;
        delay - delay * jitter_permille / 1000
    }
}

/// A fixed, well-mixed hash: deterministic jitter without a random number generator.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a scheduled task waits for.
///
/// Only an absolute `run_at` given by the user waits for the wall clock. Every relative
/// delay (enqueue `delay_ms`, retry backoff, `retry_after_ms`, release `delay_ms`) waits
/// for cluster time, which never jumps and stops without a leader: the state machine's
/// wall time is the largest any leader ever stamped, so one leader whose wall clock jumped
/// ahead (and came back) would otherwise stall every retry until real time caught up, and
/// a leader whose clock lags would freeze them. A wall clock jump must never stall retries.
/// A wrong wall clock can only fire an absolute `run_at` early or late, which is inherent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAt {
    /// Ready once the applied wall time reaches this (ms since the Unix epoch).
    Wall(u64),
    /// Ready once the applied cluster time reaches this.
    Cluster(u64),
}

impl RunAt {
    /// When the task becomes ready, as a wall time for display: a wall time as it is; a
    /// cluster time as the wall time it is expected at, given a pair of current readings of
    /// both clocks (`wall + (at - cluster)`, like a lease's expiry estimate).
    pub fn wall_estimate_ms(self, wall_now_ms: u64, cluster_now_ms: u64) -> u64 {
        match self {
            Self::Wall(at) => at,
            Self::Cluster(at) if at >= cluster_now_ms => {
                wall_now_ms.saturating_add(at - cluster_now_ms)
            }
            Self::Cluster(at) => wall_now_ms.saturating_sub(cluster_now_ms - at),
        }
    }
}

/// The lease a running task is held under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub worker: String,
    pub token: Token,
    pub lease_ms: u64,
    /// Cluster time at which the lease ends unless renewed.
    pub expires_cluster_ms: u64,
    /// Cluster time the attempt started (for `start_to_close_ms`).
    pub started_cluster_ms: u64,
}

/// One line of a task's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The proposing leader's wall clock, for display.
    pub wall_ms: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Enqueued,
    /// A later enqueue with the same coalesce key joined this task.
    Joined,
    /// Waiting before it becomes ready (run_at, delay, backoff).
    Scheduled {
        /// For an absolute `run_at`, that wall time. For a relative delay, which runs on
        /// cluster time, an estimate for display: the wall time it was scheduled at plus the
        /// delay.
        run_at_wall_ms: u64,
    },
    Claimed {
        worker: String,
        token: Token,
        attempt: u32,
    },
    Progress {
        token: Token,
        progress: String,
    },
    Released {
        token: Token,
    },
    /// An attempt ended badly; the task will be retried (or see the next event).
    AttemptFailed {
        token: Token,
        error: TaskError,
    },
    Succeeded {
        token: Token,
    },
    /// Dead-lettered: attempts exhausted or not retryable.
    Failed {
        error: TaskError,
    },
    CancelRequested,
    Cancelled,
    Expired {
        error: TaskError,
    },
    /// Taken out of the dead-letter set and queued again.
    Requeued,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Joined => "joined",
            Self::Scheduled { .. } => "scheduled",
            Self::Claimed { .. } => "claimed",
            Self::Progress { .. } => "progress",
            Self::Released { .. } => "released",
            Self::AttemptFailed { .. } => "attempt_failed",
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::CancelRequested => "cancel_requested",
            Self::Cancelled => "cancelled",
            Self::Expired { .. } => "expired",
            Self::Requeued => "requeued",
        }
    }
}

/// Timeouts of a task, in cluster milliseconds. `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// From becoming ready (queued) to being claimed.
    pub schedule_to_start_ms: Option<u64>,
    /// From a claim to the end of that attempt.
    pub start_to_close_ms: Option<u64>,
    /// From enqueue to the end of the task.
    pub schedule_to_close_ms: Option<u64>,
}

/// A task as the state machine holds it.
///
/// Its fields are the ones every task uses; the ones most queued and running tasks leave
/// empty live in [`TaskRare`], behind one pointer (`rare`). A million queued tasks are the
/// state's common case, and those fields were half of a task's 472 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    /// Interned (`names.rs`): tasks of one queue share its name.
    pub queue: Arc<str>,
    pub kind: Arc<str>,
    /// JSON text, validated by the coordinator; opaque here. Boxed (no spare capacity).
    pub payload: Box<str>,
    pub priority: i32,
    pub state: TaskState,
    /// Attempts used: incremented by a claim, given back by a release.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Lease length used when a claim does not name one.
    pub lease_ms: u64,
    /// Shared with the idempotency index: one copy of the key's text.
    pub idempotency_key: Option<Arc<str>>,
    /// Also the time of the task's implied first event (`History`): changing it would
    /// change that event.
    pub created_wall_ms: u64,
    pub created_cluster_ms: u64,
    /// While `Queued`: the cluster time it became ready (for `schedule_to_start_ms`).
    pub ready_cluster_ms: u64,
    /// While `Queued`: its place in FIFO order among tasks of equal priority.
    pub ready_seq: u64,
    /// Boxed: most tasks are not running, and a `None` box costs 8 bytes, not 56.
    pub lease: Option<Box<Lease>>,
    /// The token of the most recent claim (read through [`Task::last_token`]), kept after
    /// the lease ends, to tell a repeated completion (`task_finished`) from a stale one
    /// (`lease_lost`). 0 before the first claim: a token is never 0 (the first entry's
    /// index is 1), so this is a `u64` and not an `Option<Token>`, 8 bytes a task less.
    pub(crate) last_token_or_zero: u64,
    /// Read through [`Task::events`]: the first `enqueued` is implied, not stored.
    pub history: History,
    pub rare: Rare,
}

/// A task's fields that most queued and running tasks leave at their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRare {
    /// Most tasks keep the default; a task's own costs it this box.
    pub backoff: Backoff,
    pub timeouts: Timeouts,
    pub group: Option<String>,
    /// Idempotency keys of enqueues that joined this task through its coalesce key: a
    /// retry of such an enqueue must find this task too. At most `JOIN_KEYS_MAX`.
    pub joined_keys: Vec<Arc<str>>,
    pub coalesce_key: Option<String>,
    /// Enqueues that joined this one through `coalesce_key`.
    pub joined: u32,
    /// What it waits for: present exactly while `Scheduled`.
    pub run_at: Option<RunAt>,
    pub cancel_requested: bool,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<Box<TaskError>>,
    pub finished_wall_ms: Option<u64>,
    pub finished_cluster_ms: Option<u64>,
    /// Events dropped from the front of `events` to keep it bounded.
    pub events_dropped: u64,
}

/// All of [`TaskRare`] at its defaults: what an absent box reads as.
static NO_RARE: TaskRare = TaskRare {
    backoff: Backoff::DEFAULT,
    timeouts: Timeouts {
        schedule_to_start_ms: None,
        start_to_close_ms: None,
        schedule_to_close_ms: None,
    },
    group: None,
    joined_keys: Vec::new(),
    coalesce_key: None,
    joined: 0,
    run_at: None,
    cancel_requested: false,
    progress: None,
    result: None,
    error: None,
    finished_wall_ms: None,
    finished_cluster_ms: None,
    events_dropped: 0,
};

impl Default for TaskRare {
    fn default() -> Self {
        NO_RARE.clone()
    }
}

/// A task's [`TaskRare`], allocated on the first change. An absent box and a box holding
/// the defaults are equal: equality (and the snapshot's bytes) depend on the values, never
/// on whether the box was made.
#[derive(Debug, Clone, Default)]
pub struct Rare(Option<Box<TaskRare>>);

impl Rare {
    pub fn new(rare: TaskRare) -> Self {
        if rare == NO_RARE {
            Self(None)
        } else {
            Self(Some(Box::new(rare)))
        }
    }

    pub fn get(&self) -> &TaskRare {
        self.0.as_deref().unwrap_or(&NO_RARE)
    }

    /// The fields to change, allocated now if they were all at their defaults.
    pub fn get_mut(&mut self) -> &mut TaskRare {
        self.0.get_or_insert_with(Box::default)
    }

    /// Changes the fields through `f`, the one way the state machine writes them: a change
    /// that leaves them all at their defaults (a released task's `run_at = None`) makes no
    /// box, and one that brings them back to their defaults (a scheduled task that became
    /// ready) frees it, so a queued or running task costs its pointer only.
    pub fn change<R>(&mut self, f: impl FnOnce(&mut TaskRare) -> R) -> R {
        match &mut self.0 {
            Some(rare) => {
                let out = f(rare);
                self.shrink();
                out
            }
            None => {
                let mut rare = TaskRare::default();
                let out = f(&mut rare);
                *self = Self::new(rare);
                out
            }
        }
    }

    /// Frees the box once everything in it is back at its defaults (a scheduled task that
    /// became ready), so a queued task costs its pointer only.
    pub fn shrink(&mut self) {
        if self.0.as_deref() == Some(&NO_RARE) {
            self.0 = None;
        }
    }
}

impl std::ops::Deref for Rare {
    type Target = TaskRare;
    fn deref(&self) -> &TaskRare {
        self.get()
    }
}

impl PartialEq for Rare {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}
impl Eq for Rare {}

impl Task {
    pub fn last_token(&self) -> Option<Token> {
        (self.last_token_or_zero != 0).then_some(Token(self.last_token_or_zero))
    }

    pub(crate) fn set_last_token(&mut self, token: Token) {
        assert!(token.0 != 0, "token 0 is never issued");
        self.last_token_or_zero = token.0;
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        if self.history.push(event, self.created_wall_ms) {
            self.rare.change(|r| r.events_dropped += 1);
        }
    }

    /// The task's events, oldest first (at most `TASK_EVENTS_MAX`; `rare.events_dropped`
    /// older ones are gone).
    pub fn events(&self) -> impl Iterator<Item = Cow<'_, Event>> + '_ {
        self.history.iter(self.created_wall_ms)
    }

    pub fn events_len(&self) -> usize {
        self.history.len()
    }

    pub fn last_event(&self) -> Option<Cow<'_, Event>> {
        self.history.last(self.created_wall_ms)
    }
}

// ---- binary encoding -------------------------------------------------------------------

impl Encode for TaskId {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
}
impl Decode for TaskId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TaskId(r.u64("task id")?))
    }
}
impl Encode for Token {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
}
impl Decode for Token {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Token(r.u64("token")?))
    }
}
impl Encode for TaskState {
    fn encode(&self, w: &mut Writer) {
        w.u8(*self as u8);
    }
}
impl Decode for TaskState {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("task state")?;
        TaskState::ALL
            .get(usize::from(tag))
            .copied()
            .ok_or(DecodeError::BadTag {
                what: "task state",
                tag,
            })
    }
}
impl Encode for TaskError {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.code);
        w.str(&self.message);
    }
}
impl Decode for TaskError {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TaskError {
            code: r.string("error code")?,
            message: r.string("error message")?,
        })
    }
}
impl Encode for Backoff {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.initial_ms);
        w.u32(self.multiplier_permille);
        w.u64(self.max_ms);
    }
}
impl Decode for Backoff {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Backoff {
            initial_ms: r.u64("backoff initial")?,
            multiplier_permille: r.u32("backoff multiplier")?,
            max_ms: r.u64("backoff max")?,
        })
    }
}
impl Encode for Timeouts {
    fn encode(&self, w: &mut Writer) {
        self.schedule_to_start_ms.encode(w);
        self.start_to_close_ms.encode(w);
        self.schedule_to_close_ms.encode(w);
    }
}
impl Decode for Timeouts {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Timeouts {
            schedule_to_start_ms: Decode::decode(r)?,
            start_to_close_ms: Decode::decode(r)?,
            schedule_to_close_ms: Decode::decode(r)?,
        })
    }
}
impl Encode for Lease {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.worker);
        self.token.encode(w);
        w.u64(self.lease_ms);
        w.u64(self.expires_cluster_ms);
        w.u64(self.started_cluster_ms);
    }
}
impl Decode for Lease {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Lease {
            worker: r.string("lease worker")?,
            token: Token::decode(r)?,
            lease_ms: r.u64("lease ms")?,
            expires_cluster_ms: r.u64("lease expiry")?,
            started_cluster_ms: r.u64("lease start")?,
        })
    }
}
impl Encode for RunAt {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Wall(at) => {
                w.u8(0);
                w.u64(*at);
            }
            Self::Cluster(at) => {
                w.u8(1);
                w.u64(*at);
            }
        }
    }
}
impl Decode for RunAt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("run at kind")? {
            0 => Self::Wall(r.u64("run at wall")?),
            1 => Self::Cluster(r.u64("run at cluster")?),
            tag => {
                return Err(DecodeError::BadTag {
                    what: "run at kind",
                    tag,
                })
            }
        })
    }
}
impl Encode for EventKind {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Enqueued => w.u8(0),
            Self::Joined => w.u8(1),
            Self::Scheduled { run_at_wall_ms } => {
                w.u8(2);
                w.u64(*run_at_wall_ms);
            }
            Self::Claimed {
                worker,
                token,
                attempt,
            } => {
                w.u8(3);
                w.str(worker);
                token.encode(w);
                w.u32(*attempt);
            }
            Self::Progress { token, progress } => {
                w.u8(4);
                token.encode(w);
                w.str(progress);
            }
            Self::Released { token } => {
                w.u8(5);
                token.encode(w);
            }
            Self::AttemptFailed { token, error } => {
                w.u8(6);
                token.encode(w);
                error.encode(w);
            }
            Self::Succeeded { token } => {
                w.u8(7);
                token.encode(w);
            }
            Self::Failed { error } => {
                w.u8(8);
                error.encode(w);
            }
            Self::CancelRequested => w.u8(9),
            Self::Cancelled => w.u8(10),
            Self::Expired { error } => {
                w.u8(11);
                error.encode(w);
            }
            Self::Requeued => w.u8(12),
        }
    }
}
impl Decode for EventKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("event kind")? {
            0 => Self::Enqueued,
            1 => Self::Joined,
            2 => Self::Scheduled {
                run_at_wall_ms: r.u64("run at")?,
            },
            3 => Self::Claimed {
                worker: r.string("worker")?,
                token: Token::decode(r)?,
                attempt: r.u32("attempt")?,
            },
            4 => Self::Progress {
                token: Token::decode(r)?,
                progress: r.string("progress")?,
            },
            5 => Self::Released {
                token: Token::decode(r)?,
            },
            6 => Self::AttemptFailed {
                token: Token::decode(r)?,
                error: TaskError::decode(r)?,
            },
            7 => Self::Succeeded {
                token: Token::decode(r)?,
            },
            8 => Self::Failed {
                error: TaskError::decode(r)?,
            },
            9 => Self::CancelRequested,
            10 => Self::Cancelled,
            11 => Self::Expired {
                error: TaskError::decode(r)?,
            },
            12 => Self::Requeued,
            tag => {
                return Err(DecodeError::BadTag {
                    what: "event kind",
                    tag,
                })
            }
        })
    }
}
impl Encode for Event {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.wall_ms);
        self.kind.encode(w);
    }
}
impl Decode for Event {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Event {
            wall_ms: r.u64("event time")?,
            kind: EventKind::decode(r)?,
        })
    }
}
impl Encode for Task {
    fn encode(&self, w: &mut Writer) {
        let rare = self.rare.get();
        self.id.encode(w);
        w.str(&self.queue);
        w.str(&self.kind);
        w.str(&self.payload);
        w.i32(self.priority);
        self.state.encode(w);
        w.u32(self.attempt);
        w.u32(self.max_attempts);
        rare.backoff.encode(w);
        w.u64(self.lease_ms);
        rare.timeouts.encode(w);
        rare.group.encode(w);
        self.idempotency_key.encode(w);
        rare.joined_keys.encode(w);
        rare.coalesce_key.encode(w);
        w.u32(rare.joined);
        w.u64(self.created_wall_ms);
        w.u64(self.created_cluster_ms);
        rare.run_at.encode(w);
        w.u64(self.ready_cluster_ms);
        w.u64(self.ready_seq);
        self.lease.encode(w);
        self.last_token().encode(w);
        w.bool(rare.cancel_requested);
        rare.progress.encode(w);
        rare.result.encode(w);
        rare.error.encode(w);
        rare.finished_wall_ms.encode(w);
        rare.finished_cluster_ms.encode(w);
        self.history.encode(self.created_wall_ms, w);
        w.u64(rare.events_dropped);
    }
}
impl Decode for Task {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Task::decode_version(r, crate::snapshot::SNAPSHOT_FORMAT_VERSION)
    }
}

impl Task {
    /// Decodes a task as written by snapshot format `version` (1 had no `joined_keys`; 1
    /// and 2 had a wall time `run_at_wall_ms` where 3 has `run_at`).
    pub(crate) fn decode_version(r: &mut Reader<'_>, version: u32) -> Result<Self, DecodeError> {
        // Read in the encoding's order; the rare fields are interleaved with the others.
        let id = TaskId::decode(r)?;
        // Not shared yet: the snapshot's decoder interns them as it inserts the task.
        let queue: Arc<str> = r.string("queue")?.into();
        let kind: Arc<str> = r.string("kind")?.into();
        let payload = r.string("payload")?.into();
        let priority = r.i32("priority")?;
        let state = TaskState::decode(r)?;
        let attempt = r.u32("attempt")?;
        let max_attempts = r.u32("max attempts")?;
        let backoff = Backoff::decode(r)?;
        let lease_ms = r.u64("lease ms")?;
        let timeouts = Timeouts::decode(r)?;
        let group = Decode::decode(r)?;
        let idempotency_key = Decode::decode(r)?;
        let joined_keys = if version >= 2 {
            Decode::decode(r)?
        } else {
            Vec::new()
        };
        let coalesce_key = Decode::decode(r)?;
        let joined = r.u32("joined")?;
        let created_wall_ms = r.u64("created wall")?;
        let created_cluster_ms = r.u64("created cluster")?;
        let mut run_at = if version >= 3 {
            Decode::decode(r)?
        } else {
            // Before format 3 every scheduled task waited for a wall time, relative
            // delays included; they keep waiting the way they were scheduled.
            Some(RunAt::Wall(r.u64("run at")?))
        };
        if version < 3 && state != TaskState::Scheduled {
            // Formats 1 and 2 kept a stale `run_at_wall_ms` (or 0) on tasks not scheduled.
            run_at = None;
        }
        let ready_cluster_ms = r.u64("ready at")?;
        let ready_seq = r.u64("ready seq")?;
        let lease = Decode::decode(r)?;
        let last_token: Option<Token> = Decode::decode(r)?;
        if last_token == Some(Token(0)) {
            return Err(DecodeError::Inconsistent("a task with token 0"));
        }
        let cancel_requested = r.bool("cancel requested")?;
        let progress = Decode::decode(r)?;
        let result = Decode::decode(r)?;
        let error = Decode::decode(r)?;
        let finished_wall_ms = Decode::decode(r)?;
        let finished_cluster_ms = Decode::decode(r)?;
        let events: Vec<Event> = Decode::decode(r)?;
        if events.len() > TASK_EVENTS_MAX {
            return Err(DecodeError::Inconsistent("too many events on a task"));
        }
        let history = History::from_events(events, created_wall_ms);
        let events_dropped = r.u64("events dropped")?;
        let task = Task {
            id,
            queue,
            kind,
            payload,
            priority,
            state,
            attempt,
            max_attempts,
            lease_ms,
            idempotency_key,
            created_wall_ms,
            created_cluster_ms,
            ready_cluster_ms,
            ready_seq,
            lease,
            last_token_or_zero: last_token.map_or(0, |t| t.0),
            history,
            rare: Rare::new(TaskRare {
                backoff,
                timeouts,
                group,
                joined_keys,
                coalesce_key,
                joined,
                run_at,
                cancel_requested,
                progress,
                result,
                error,
                finished_wall_ms,
                finished_cluster_ms,
                events_dropped,
            }),
        };
        if (task.state == TaskState::Running) != task.lease.is_some() {
            return Err(DecodeError::Inconsistent(
                "a task has a lease exactly while running",
            ));
        }
        if (task.state == TaskState::Scheduled) != task.rare.run_at.is_some() {
            return Err(DecodeError::Inconsistent(
                "a task has a run_at exactly while scheduled",
            ));
        }
        if task.state.is_finished() != task.rare.finished_cluster_ms.is_some() {
            return Err(DecodeError::Inconsistent(
                "a task has a finish time exactly while finished",
            ));
        }
        if task.rare.joined_keys.len() > crate::limits::JOIN_KEYS_MAX {
            return Err(DecodeError::Inconsistent("too many joined keys on a task"));
        }
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_deterministically() {
        let b = Backoff {
            initial_ms: 1000,
            multiplier_permille: 2000,
            max_ms: 5000,
        };
        let d1 = b.delay_ms(TaskId(7), 1);
        let d2 = b.delay_ms(TaskId(7), 2);
        let d5 = b.delay_ms(TaskId(7), 5);
        assert!((800..=1000).contains(&d1), "{d1}");
        assert!((1600..=2000).contains(&d2), "{d2}");
        assert!((4000..=5000).contains(&d5), "{d5}");
        assert_eq!(d2, b.delay_ms(TaskId(7), 2), "same inputs, same delay");
        let distinct: std::collections::BTreeSet<u64> =
            (1..50).map(|id| b.delay_ms(TaskId(id), 1)).collect();
        assert!(
            distinct.len() > 10,
            "jitter spreads retries of different tasks"
        );
    }

    #[test]
    fn backoff_does_not_overflow_at_the_limits() {
        let b = Backoff {
            initial_ms: u64::MAX / 2,
            multiplier_permille: 100_000,
            max_ms: u64::MAX,
        };
        let _ = b.delay_ms(TaskId(1), 1000);
    }

    /// A task lives in an `Arc` (two 8-byte counters before it). The allocators' size
    /// classes around it are 160, 192, 224 and 256 bytes: one field too many moves every
    /// task of a million-task backlog up a class, 32 MiB more.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_shared_task_fits_in_192_bytes() {
        assert!(
            16 + std::mem::size_of::<Task>() <= 192,
            "Task is {} bytes",
            std::mem::size_of::<Task>()
        );
    }

    #[test]
    fn event_history_is_bounded() {
        let mut t = crate::test_support::task(1);
        t.history.clear();
        for i in 0..(TASK_EVENTS_MAX as u64 + 10) {
            t.push_event(Event {
                wall_ms: i,
                kind: EventKind::Joined,
            });
        }
        assert_eq!(t.events_len(), TASK_EVENTS_MAX);
        assert_eq!(t.rare.events_dropped, 10);
        assert_eq!(t.events().next().unwrap().wall_ms, 10);
    }

    #[test]
    fn rare_fields_cost_a_pointer_until_set_and_equal_whether_boxed_or_not() {
        let plain = crate::test_support::task(1);
        assert!(
            plain.rare.0.is_none(),
            "a new task without rare fields has no box"
        );
        let mut boxed = plain.clone();
        boxed.rare.get_mut();
        assert!(boxed.rare.0.is_some());
        // Equality and the encoding see values only.
        assert_eq!(plain, boxed);
        let (mut a, mut b) = (Writer::new(), Writer::new());
        plain.encode(&mut a);
        boxed.encode(&mut b);
        assert_eq!(a.into_bytes(), b.into_bytes());
        // A decoded task boxes only what is set.
        let mut w = Writer::new();
        boxed.encode(&mut w);
        let bytes = w.into_bytes();
        let decoded = Task::decode(&mut Reader::new(&bytes)).unwrap();
        assert!(decoded.rare.0.is_none());
        // Back at the defaults, shrink frees the box; a set field keeps it.
        boxed.rare.shrink();
        assert!(boxed.rare.0.is_none());
        boxed.rare.get_mut().progress = Some("1/2".into());
        boxed.rare.shrink();
        assert_eq!(boxed.rare.progress.as_deref(), Some("1/2"));
        assert_ne!(plain, boxed);
    }
}
