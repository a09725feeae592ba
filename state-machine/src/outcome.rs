//! What applying an entry produced: one result per command, and the events it emitted.
//!
//! A rejection is a value, never an `Err` of `apply`: every node applies the same entry
//! and must reach the same state, so "this command was refused" is just another outcome.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::task::{Event, TaskId, TaskState, Token};

/// Why a command (or one item of a batch) was refused. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid {field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error("{field} is {bytes} bytes, more than the limit of {max}")]
    PayloadTooLarge { field: String, bytes: u64, max: u64 },
    #[error("{what} has {len} items, more than the limit of {max}")]
    BatchTooLarge { what: String, len: u64, max: u64 },
    #[error("task {0} not found")]
    NotFound(TaskId),
    #[error("the lease on task {task} with token {token} is no longer held")]
    LeaseLost { task: TaskId, token: Token },
    #[error("task {task} is already {state}", state = state.as_str())]
    TaskFinished { task: TaskId, state: TaskState },
    #[error("task {task} is {state} and cannot be requeued", state = state.as_str())]
    NotRequeueable { task: TaskId, state: TaskState },
    #[error("the cluster holds {max} tasks, its limit")]
    QueueFull { max: u64 },
    #[error("the cluster has {max} queues, its limit")]
    TooManyQueues { max: u64 },
}

impl Rejection {
    /// The stable, snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::NotFound(_) => "not_found",
            Self::LeaseLost { .. } => "lease_lost",
            Self::TaskFinished { .. } => "task_finished",
            Self::NotRequeueable { .. } => "not_requeueable",
            Self::QueueFull { .. } => "queue_full",
            Self::TooManyQueues { .. } => "too_many_queues",
        }
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The result of one enqueued task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: TaskId,
    /// False when an idempotency key or a coalesce key matched an existing task.
    pub created: bool,
    /// True when the task joined an unfinished one with the same coalesce key.
    pub coalesced: bool,
    pub state: TaskState,
}

/// A task handed to a worker by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    pub id: TaskId,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub priority: i32,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub token: Token,
    pub lease_ms: u64,
    pub expires_cluster_ms: u64,
    pub group: Option<String>,
}

/// A renewed lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAck {
    pub task: TaskId,
    pub expires_cluster_ms: u64,
    pub lease_ms: u64,
    /// The task was cancelled: the worker should stop and fail or release it.
    pub cancel_requested: bool,
}

/// What a tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickReport {
    pub leases_expired: u32,
    pub timeouts_fired: u32,
    pub promoted: u32,
    pub dropped: u32,
}

/// A successful command's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// One result per task, in order.
    Enqueued(Vec<Result<Enqueued, Rejection>>),
    Claimed(Vec<ClaimedTask>),
    /// One result per lease, in order.
    Heartbeats(Vec<Result<HeartbeatAck, Rejection>>),
    /// `duplicate`: the task had already succeeded with this same token (a retried
    /// complete), so nothing changed.
    Completed {
        duplicate: bool,
    },
    /// A `CompleteAndClaim` whose completion held: `duplicate` as for `Completed`, and the
    /// tasks the claim took (possibly none).
    CompletedAndClaimed {
        duplicate: bool,
        tasks: Vec<ClaimedTask>,
    },
    /// The task's state after the failure: queued or scheduled (will retry), failed
    /// (dead-lettered) or cancelled (a cancel was pending).
    FailRecorded {
        state: TaskState,
    },
    Released {
        state: TaskState,
    },
    /// `cancelled` or, for a running task, `running` with the request pending.
    CancelRecorded {
        state: TaskState,
    },
    Requeued,
    QueueUpdated,
    Broadcast {
        seq: u64,
    },
    Ticked(TickReport),
    Configured,
    /// The cluster's behaviour version after the command (never lower than before).
    BehaviourRaised {
        version: u32,
    },
}

pub type CommandResult = Result<Reply, Rejection>;

/// An event with the task it belongs to, as streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEvent {
    pub task: TaskId,
    pub queue: String,
    pub group: Option<String>,
    /// The task's state after the event.
    pub state: TaskState,
    pub event: Event,
}

/// Everything applying one entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// One per command of the entry, in order.
    pub results: Vec<CommandResult>,
    /// Lifecycle events, in the order they happened.
    pub events: Vec<TaskEvent>,
}

/// Version of the outcome encoding.
pub const OUTCOME_FORMAT_VERSION: u8 = 1;

impl Outcome {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(OUTCOME_FORMAT_VERSION);
        self.results.encode(&mut w);
        self.events.encode(&mut w);
        w.into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("outcome version")?;
        if version != OUTCOME_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "outcome",
                found: u32::from(version),
                supported: u32::from(OUTCOME_FORMAT_VERSION),
            });
        }
        let out = Outcome {
            results: Decode::decode(&mut r)?,
            events: Decode::decode(&mut r)?,
        };
        r.finish()?;
        Ok(out)
    }
}

// ---- binary encoding -------------------------------------------------------------------

impl Encode for Rejection {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::InvalidRequest { field, reason } => {
                w.u8(0);
                w.str(field);
                w.str(reason);
            }
            Self::PayloadTooLarge { field, bytes, max } => {
                w.u8(1);
                w.str(field);
                w.u64(*bytes);
                w.u64(*max);
            }
            Self::BatchTooLarge { what, len, max } => {
                w.u8(2);
                w.str(what);
                w.u64(*len);
                w.u64(*max);
            }
            Self::NotFound(id) => {
                w.u8(3);
                id.encode(w);
            }
            Self::LeaseLost { task, token } => {
                w.u8(4);
                task.encode(w);
                token.encode(w);
            }
            Self::TaskFinished { task, state } => {
                w.u8(5);
                task.encode(w);
                state.encode(w);
            }
            Self::NotRequeueable { task, state } => {
                w.u8(6);
                task.encode(w);
                state.encode(w);
            }
            Self::QueueFull { max } => {
                w.u8(7);
                w.u64(*max);
            }
            Self::TooManyQueues { max } => {
                w.u8(8);
                w.u64(*max);
            }
        }
    }
}
impl Decode for Rejection {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("rejection")? {
            0 => Self::InvalidRequest {
                field: r.string("field")?,
                reason: r.string("reason")?,
            },
            1 => Self::PayloadTooLarge {
                field: r.string("field")?,
                bytes: r.u64("bytes")?,
                max: r.u64("max")?,
            },
            2 => Self::BatchTooLarge {
                what: r.string("what")?,
                len: r.u64("len")?,
                max: r.u64("max")?,
            },
            3 => Self::NotFound(Decode::decode(r)?),
            4 => Self::LeaseLost {
                task: Decode::decode(r)?,
                token: Decode::decode(r)?,
            },
            5 => Self::TaskFinished {
                task: Decode::decode(r)?,
                state: Decode::decode(r)?,
            },
            6 => Self::NotRequeueable {
                task: Decode::decode(r)?,
                state: Decode::decode(r)?,
            },
            7 => Self::QueueFull { max: r.u64("max")? },
            8 => Self::TooManyQueues { max: r.u64("max")? },
            tag => {
                return Err(DecodeError::BadTag {
                    what: "rejection",
                    tag,
                })
            }
        })
    }
}
impl<T: Encode> Encode for Result<T, Rejection> {
    fn encode(&self, w: &mut Writer) {
        match self {
            Ok(v) => {
                w.u8(0);
                v.encode(w);
            }
            Err(e) => {
                w.u8(1);
                e.encode(w);
            }
        }
    }
}
impl<T: Decode> Decode for Result<T, Rejection> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("result")? {
            0 => Ok(Ok(T::decode(r)?)),
            1 => Ok(Err(Rejection::decode(r)?)),
            tag => Err(DecodeError::BadTag {
                what: "result",
                tag,
            }),
        }
    }
}
impl Encode for Enqueued {
    fn encode(&self, w: &mut Writer) {
        self.id.encode(w);
        w.bool(self.created);
        w.bool(self.coalesced);
        self.state.encode(w);
    }
}
impl Decode for Enqueued {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Enqueued {
            id: Decode::decode(r)?,
            created: r.bool("created")?,
            coalesced: r.bool("coalesced")?,
            state: Decode::decode(r)?,
        })
    }
}
impl Encode for ClaimedTask {
    fn encode(&self, w: &mut Writer) {
        self.id.encode(w);
        w.str(&self.queue);
        w.str(&self.kind);
        w.str(&self.payload);
        w.i32(self.priority);
        w.u32(self.attempt);
        w.u32(self.max_attempts);
        self.token.encode(w);
        w.u64(self.lease_ms);
        w.u64(self.expires_cluster_ms);
        self.group.encode(w);
    }
}
impl Decode for ClaimedTask {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ClaimedTask {
            id: Decode::decode(r)?,
            queue: r.string("queue")?,
            kind: r.string("kind")?,
            payload: r.string("payload")?,
            priority: r.i32("priority")?,
            attempt: r.u32("attempt")?,
            max_attempts: r.u32("max attempts")?,
            token: Decode::decode(r)?,
            lease_ms: r.u64("lease ms")?,
            expires_cluster_ms: r.u64("expires")?,
            group: Decode::decode(r)?,
        })
    }
}
impl Encode for HeartbeatAck {
    fn encode(&self, w: &mut Writer) {
        self.task.encode(w);
        w.u64(self.expires_cluster_ms);
        w.u64(self.lease_ms);
        w.bool(self.cancel_requested);
    }
}
impl Decode for HeartbeatAck {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HeartbeatAck {
            task: Decode::decode(r)?,
            expires_cluster_ms: r.u64("expires")?,
            lease_ms: r.u64("lease ms")?,
            cancel_requested: r.bool("cancel requested")?,
        })
    }
}
impl Encode for Reply {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Enqueued(v) => {
                w.u8(0);
                v.encode(w);
            }
            Self::Claimed(v) => {
                w.u8(1);
                v.encode(w);
            }
            Self::Heartbeats(v) => {
                w.u8(2);
                v.encode(w);
            }
            Self::Completed { duplicate } => {
                w.u8(3);
                w.bool(*duplicate);
            }
            Self::FailRecorded { state } => {
                w.u8(4);
                state.encode(w);
            }
            Self::Released { state } => {
                w.u8(5);
                state.encode(w);
            }
            Self::CancelRecorded { state } => {
                w.u8(6);
                state.encode(w);
            }
            Self::Requeued => w.u8(7),
            Self::QueueUpdated => w.u8(8),
            Self::Broadcast { seq } => {
                w.u8(9);
                w.u64(*seq);
            }
            Self::Configured => w.u8(11),
            Self::BehaviourRaised { version } => {
                w.u8(13);
                w.u32(*version);
            }
            Self::CompletedAndClaimed { duplicate, tasks } => {
                w.u8(12);
                w.bool(*duplicate);
                tasks.encode(w);
            }
            Self::Ticked(t) => {
                w.u8(10);
                w.u32(t.leases_expired);
                w.u32(t.timeouts_fired);
                w.u32(t.promoted);
                w.u32(t.dropped);
            }
        }
    }
}
impl Decode for Reply {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("reply")? {
            0 => Self::Enqueued(Decode::decode(r)?),
            1 => Self::Claimed(Decode::decode(r)?),
            2 => Self::Heartbeats(Decode::decode(r)?),
            3 => Self::Completed {
                duplicate: r.bool("duplicate")?,
            },
            4 => Self::FailRecorded {
                state: Decode::decode(r)?,
            },
            5 => Self::Released {
                state: Decode::decode(r)?,
            },
            6 => Self::CancelRecorded {
                state: Decode::decode(r)?,
            },
            7 => Self::Requeued,
            8 => Self::QueueUpdated,
            9 => Self::Broadcast { seq: r.u64("seq")? },
            10 => Self::Ticked(TickReport {
                leases_expired: r.u32("expired")?,
                timeouts_fired: r.u32("timeouts")?,
                promoted: r.u32("promoted")?,
                dropped: r.u32("dropped")?,
            }),
            11 => Self::Configured,
            12 => Self::CompletedAndClaimed {
                duplicate: r.bool("duplicate")?,
                tasks: Decode::decode(r)?,
            },
            13 => Self::BehaviourRaised {
                version: r.u32("behaviour version")?,
            },
            tag => return Err(DecodeError::BadTag { what: "reply", tag }),
        })
    }
}
impl Encode for TaskEvent {
    fn encode(&self, w: &mut Writer) {
        self.task.encode(w);
        w.str(&self.queue);
        self.group.encode(w);
        self.state.encode(w);
        self.event.encode(w);
    }
}
impl Decode for TaskEvent {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TaskEvent {
            task: Decode::decode(r)?,
            queue: r.string("queue")?,
            group: Decode::decode(r)?,
            state: Decode::decode(r)?,
            event: Decode::decode(r)?,
        })
    }
}
