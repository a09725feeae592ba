//! Commands: what a client asks of the state machine, one variant per operation.
//!
//! The leader batches many commands into one [`Entry`]; each gets its own result. Fields
//! that a client may leave out are `Option`s so that defaults live in one place (the
//! state machine), not in every client.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::task::{Backoff, TaskId, Timeouts, Token};

/// A task to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTask {
    pub queue: String,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    /// Higher runs first; FIFO within one priority.
    pub priority: i32,
    /// A repeat with the same key returns the first task (`created: false`) while that
    /// task is retained.
    pub idempotency_key: Option<String>,
    /// While an unfinished task in the same queue has this key, a new enqueue joins it.
    pub coalesce_key: Option<String>,
    /// Not before this wall time (ms since the Unix epoch): waits for the applied wall
    /// time, so a leader's wrong wall clock can fire it early or late.
    pub run_at_wall_ms: Option<u64>,
    /// Not before the entry's cluster time plus this: a relative delay, which no wall
    /// clock jump stretches or shortens. Ignored when `run_at_wall_ms` is set.
    pub delay_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<Backoff>,
    pub lease_ms: Option<u64>,
    pub timeouts: Timeouts,
    pub group: Option<String>,
}

/// Claim up to `max` ready tasks for a worker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claim {
    pub worker: String,
    pub queues: Vec<String>,
    /// Only these kinds; `None` takes any kind.
    pub kinds: Option<Vec<String>>,
    pub max: u32,
    /// Overrides each task's own lease length.
    pub lease_ms: Option<u64>,
    /// Skip tasks below this priority (keeps a worker's reserved slots for urgent work).
    pub min_priority: Option<i32>,
}

/// One lease to renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseBeat {
    pub task: TaskId,
    pub token: Token,
    /// JSON text; replaces the task's progress.
    pub progress: Option<String>,
    /// New lease length from now; `None` keeps the current length.
    pub lease_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Enqueue {
        tasks: Vec<NewTask>,
    },
    Claim(Claim),
    Heartbeat {
        worker: String,
        leases: Vec<LeaseBeat>,
    },
    Complete {
        task: TaskId,
        token: Token,
        result: String,
    },
    /// `Complete`, then — only if it succeeded — `Claim` for the same worker, in one
    /// command: a busy worker's next task costs no extra round trip or Raft commit (as
    /// BullMQ's `moveToCompleted` returns the next job). A stale token gets neither; an
    /// invalid claim refuses the whole command before anything changes.
    CompleteAndClaim {
        task: TaskId,
        token: Token,
        result: String,
        next: Claim,
    },
    Fail {
        task: TaskId,
        token: Token,
        /// Defaults to `handler_error`.
        code: Option<String>,
        message: String,
        retryable: bool,
        /// Overrides the task's backoff for this retry. Like the backoff, it runs on
        /// cluster time.
        retry_after_ms: Option<u64>,
    },
    /// Give the task back without using an attempt.
    Release {
        task: TaskId,
        token: Token,
        /// Ready again after this much cluster time.
        delay_ms: u64,
    },
    Cancel {
        task: TaskId,
    },
    /// Take a failed or expired task out of the dead-letter set, with fresh attempts.
    Requeue {
        task: TaskId,
    },
    Pause {
        queue: String,
    },
    Resume {
        queue: String,
    },
    Broadcast {
        channel: String,
        message: String,
    },
    /// Expire leases, fire timeouts, promote scheduled tasks, drop finished ones.
    Tick,
    /// Change the cluster-wide settings. They live in the log, not in each node's flags,
    /// so every replica applies the same retention and limits.
    Configure {
        retention_ms: u64,
        tasks_max: u64,
    },
    /// Move the cluster to a higher behaviour version (`behaviour.rs`). The leader
    /// proposes it once every member's build supports `version`.
    RaiseBehaviour {
        version: u32,
    },
}

impl Command {
    /// The operation's name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Enqueue { .. } => "enqueue",
            Self::Claim(_) => "claim",
            Self::Heartbeat { .. } => "heartbeat",
            Self::Complete { .. } => "complete",
            Self::CompleteAndClaim { .. } => "complete_and_claim",
            Self::Fail { .. } => "fail",
            Self::Release { .. } => "release",
            Self::Cancel { .. } => "cancel",
            Self::Requeue { .. } => "requeue",
            Self::Pause { .. } => "pause",
            Self::Resume { .. } => "resume",
            Self::Broadcast { .. } => "broadcast",
            Self::Tick => "tick",
            Self::Configure { .. } => "configure",
            Self::RaiseBehaviour { .. } => "raise_behaviour",
        }
    }
}

/// One Raft entry's worth of commands, stamped by the leader that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The leader's wall clock (ms since the Unix epoch): scheduling and display only.
    pub wall_ms: u64,
    /// Cluster time (ms): continues across leaders, stops while there is none. Leases and
    /// timeouts are measured in it.
    pub cluster_ms: u64,
    pub commands: Vec<Command>,
}

/// Version of the log-entry encoding. Bump it when the format changes, keep decoding
/// every older version, and add its bytes to tests/fixtures.
pub const ENTRY_FORMAT_VERSION: u8 = 1;

impl Entry {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(ENTRY_FORMAT_VERSION);
        w.u64(self.wall_ms);
        w.u64(self.cluster_ms);
        self.commands.encode(&mut w);
        w.into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("entry version")?;
        if version != ENTRY_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "log entry",
                found: u32::from(version),
                supported: u32::from(ENTRY_FORMAT_VERSION),
            });
        }
        let entry = Entry {
            wall_ms: r.u64("wall ms")?,
            cluster_ms: r.u64("cluster ms")?,
            commands: Decode::decode(&mut r)?,
        };
        r.finish()?;
        Ok(entry)
    }
}

// ---- binary encoding -------------------------------------------------------------------

impl Encode for NewTask {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.queue);
        w.str(&self.kind);
        w.str(&self.payload);
        w.i32(self.priority);
        self.idempotency_key.encode(w);
        self.coalesce_key.encode(w);
        self.run_at_wall_ms.encode(w);
        self.delay_ms.encode(w);
        self.max_attempts.encode(w);
        self.backoff.encode(w);
        self.lease_ms.encode(w);
        self.timeouts.encode(w);
        self.group.encode(w);
    }
}
impl Decode for NewTask {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NewTask {
            queue: r.string("queue")?,
            kind: r.string("kind")?,
            payload: r.string("payload")?,
            priority: r.i32("priority")?,
            idempotency_key: Decode::decode(r)?,
            coalesce_key: Decode::decode(r)?,
            run_at_wall_ms: Decode::decode(r)?,
            delay_ms: Decode::decode(r)?,
            max_attempts: Decode::decode(r)?,
            backoff: Decode::decode(r)?,
            lease_ms: Decode::decode(r)?,
            timeouts: Decode::decode(r)?,
            group: Decode::decode(r)?,
        })
    }
}
impl Encode for LeaseBeat {
    fn encode(&self, w: &mut Writer) {
        self.task.encode(w);
        self.token.encode(w);
        self.progress.encode(w);
        self.lease_ms.encode(w);
    }
}
impl Decode for LeaseBeat {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LeaseBeat {
            task: Decode::decode(r)?,
            token: Decode::decode(r)?,
            progress: Decode::decode(r)?,
            lease_ms: Decode::decode(r)?,
        })
    }
}
impl Encode for Command {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Enqueue { tasks } => {
                w.u8(0);
                tasks.encode(w);
            }
            Self::Claim(c) => {
                w.u8(1);
                c.encode(w);
            }
            Self::Heartbeat { worker, leases } => {
                w.u8(2);
                w.str(worker);
                leases.encode(w);
            }
            Self::Complete {
                task,
                token,
                result,
            } => {
                w.u8(3);
                task.encode(w);
                token.encode(w);
                w.str(result);
            }
            Self::Fail {
                task,
                token,
                code,
                message,
                retryable,
                retry_after_ms,
            } => {
                w.u8(4);
                task.encode(w);
                token.encode(w);
                code.encode(w);
                w.str(message);
                w.bool(*retryable);
                retry_after_ms.encode(w);
            }
            Self::Release {
                task,
                token,
                delay_ms,
            } => {
                w.u8(5);
                task.encode(w);
                token.encode(w);
                w.u64(*delay_ms);
            }
            Self::Cancel { task } => {
                w.u8(6);
                task.encode(w);
            }
            Self::Requeue { task } => {
                w.u8(7);
                task.encode(w);
            }
            Self::Pause { queue } => {
                w.u8(8);
                w.str(queue);
            }
            Self::Resume { queue } => {
                w.u8(9);
                w.str(queue);
            }
            Self::Broadcast { channel, message } => {
                w.u8(10);
                w.str(channel);
                w.str(message);
            }
            Self::Tick => w.u8(11),
            Self::Configure {
                retention_ms,
                tasks_max,
            } => {
                w.u8(12);
                w.u64(*retention_ms);
                w.u64(*tasks_max);
            }
            Self::CompleteAndClaim {
                task,
                token,
                result,
                next,
            } => {
                w.u8(13);
                task.encode(w);
                token.encode(w);
                w.str(result);
                next.encode(w);
            }
            Self::RaiseBehaviour { version } => {
                w.u8(14);
                w.u32(*version);
            }
        }
    }
}
impl Encode for Claim {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.worker);
        self.queues.encode(w);
        self.kinds.encode(w);
        w.u32(self.max);
        self.lease_ms.encode(w);
        self.min_priority.encode(w);
    }
}
impl Decode for Claim {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Claim {
            worker: r.string("worker")?,
            queues: Decode::decode(r)?,
            kinds: Decode::decode(r)?,
            max: r.u32("max")?,
            lease_ms: Decode::decode(r)?,
            min_priority: Decode::decode(r)?,
        })
    }
}
impl Decode for Command {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("command")? {
            0 => Self::Enqueue {
                tasks: Decode::decode(r)?,
            },
            1 => Self::Claim(Decode::decode(r)?),
            2 => Self::Heartbeat {
                worker: r.string("worker")?,
                leases: Decode::decode(r)?,
            },
            3 => Self::Complete {
                task: Decode::decode(r)?,
                token: Decode::decode(r)?,
                result: r.string("result")?,
            },
            4 => Self::Fail {
                task: Decode::decode(r)?,
                token: Decode::decode(r)?,
                code: Decode::decode(r)?,
                message: r.string("message")?,
                retryable: r.bool("retryable")?,
                retry_after_ms: Decode::decode(r)?,
            },
            5 => Self::Release {
                task: Decode::decode(r)?,
                token: Decode::decode(r)?,
                delay_ms: r.u64("delay")?,
            },
            6 => Self::Cancel {
                task: Decode::decode(r)?,
            },
            7 => Self::Requeue {
                task: Decode::decode(r)?,
            },
            8 => Self::Pause {
                queue: r.string("queue")?,
            },
            9 => Self::Resume {
                queue: r.string("queue")?,
            },
            10 => Self::Broadcast {
                channel: r.string("channel")?,
                message: r.string("message")?,
            },
            11 => Self::Tick,
            12 => Self::Configure {
                retention_ms: r.u64("retention")?,
                tasks_max: r.u64("tasks max")?,
            },
            13 => Self::CompleteAndClaim {
                task: Decode::decode(r)?,
                token: Decode::decode(r)?,
                result: r.string("result")?,
                next: Decode::decode(r)?,
            },
            14 => Self::RaiseBehaviour {
                version: r.u32("behaviour version")?,
            },
            tag => {
                return Err(DecodeError::BadTag {
                    what: "command",
                    tag,
                })
            }
        })
    }
}
