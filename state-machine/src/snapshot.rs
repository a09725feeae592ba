//! The snapshot: a versioned binary encoding of the whole state, and restore from it.
//!
//! Only the source of truth is written (settings, clocks, counters, tasks, paused queues,
//! broadcasts); every index is rebuilt on restore. All collections are ordered, so the
//! same state always encodes to the same bytes: replaying a log twice gives identical
//! snapshots, and two nodes can compare state by hash.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits;
use crate::machine::{BroadcastMessage, Config, StateMachine};
use crate::task::{Task, TaskId, TaskState, Token};
use crate::task_store::TaskStore;

const SNAPSHOT_MAGIC: &[u8; 8] = b"TSWSNAP\0";
/// Version of the snapshot encoding. Bump it when the format changes, keep decoding
/// every older version, and add its bytes to tests/fixtures.
///
/// 2: tasks carry `joined_keys` (idempotency keys of coalesced joiners).
/// 3: a task's `run_at_wall_ms` became `run_at`, present exactly while scheduled: a wall
///    time (an absolute `run_at`) or a cluster time (any relative delay, so that a wall
///    clock jump never stalls retries). Scheduled tasks of older snapshots wait for the
///    wall time they were written with. Builds from format 3 on also apply entries
///    differently (relative delays on cluster time): all nodes run the same build.
/// 4: the cluster's behaviour version follows the format version. A state at behaviour
///    version 1 is still written as format 3, byte for byte what builds before behaviour
///    versions write, so that a cluster of old and new builds (a rolling upgrade) sends
///    old nodes only snapshots they read, and all nodes hash equal states equally.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 4;

/// The format a state is written in: 3 until the behaviour version is raised.
fn format_for(behaviour: u32) -> u32 {
    if behaviour <= crate::behaviour::BEHAVIOUR_VERSION_FIRST {
        3
    } else {
        SNAPSHOT_FORMAT_VERSION
    }
}

/// A copy of everything a snapshot writes, taken in O(tasks / 64) time (the task store
/// shares its tasks with the machine, copy-on-write). The node takes it under its lock and
/// encodes it after letting go, so applies never wait for an encoding.
#[derive(Debug, Clone)]
pub struct SnapshotView {
    config: Config,
    behaviour: u32,
    last_applied: u64,
    wall_ms: u64,
    cluster_ms: u64,
    next_task_id: u64,
    next_ready_seq: u64,
    last_token: Token,
    last_broadcast_seq: u64,
    paused: BTreeSet<String>,
    broadcasts: VecDeque<BroadcastMessage>,
    tasks: TaskStore,
}

impl SnapshotView {
    /// The snapshot's bytes: exactly what [`StateMachine::snapshot`] gives for the state
    /// this view was taken from.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.tasks.len() * 128);
        let format = format_for(self.behaviour);
        w.raw(SNAPSHOT_MAGIC);
        w.u32(format);
        if format >= 4 {
            w.u32(self.behaviour);
        }
        w.u64(self.config.retention_ms);
        w.u64(self.config.tasks_max);
        w.u64(self.last_applied);
        w.u64(self.wall_ms);
        w.u64(self.cluster_ms);
        w.u64(self.next_task_id);
        w.u64(self.next_ready_seq);
        self.last_token.encode(&mut w);
        w.u64(self.last_broadcast_seq);
        w.len(self.paused.len());
        for q in &self.paused {
            w.str(q);
        }
        w.len(self.broadcasts.len());
        for m in &self.broadcasts {
            w.u64(m.seq);
            w.u64(m.wall_ms);
            w.str(&m.channel);
            w.str(&m.message);
        }
        w.len(self.tasks.len());
        for task in self.tasks.values() {
            task.encode(&mut w);
        }
        w.into_bytes()
    }

    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// See [`StateMachine::state_hash`].
    pub fn state_hash(&self) -> u64 {
        fnv1a(&self.encode())
    }
}

impl StateMachine {
    /// A copy of the snapshotted state to encode later ([`SnapshotView::encode`]).
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            config: self.config,
            behaviour: self.behaviour,
            last_applied: self.last_applied,
            wall_ms: self.wall_ms,
            cluster_ms: self.cluster_ms,
            next_task_id: self.next_task_id,
            next_ready_seq: self.next_ready_seq,
            last_token: self.last_token,
            last_broadcast_seq: self.last_broadcast_seq,
            paused: self.paused.clone(),
            broadcasts: self.broadcasts.clone(),
            tasks: self.tasks.clone(),
        }
    }

    /// The whole state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_view().encode()
    }

    /// Rebuilds a state machine from [`StateMachine::snapshot`] bytes. Corrupt or
    /// inconsistent bytes are an error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.raw(SNAPSHOT_MAGIC.len(), "snapshot magic")? != SNAPSHOT_MAGIC {
            return Err(DecodeError::BadMagic("snapshot"));
        }
        let version = r.u32("snapshot version")?;
        if !(1..=SNAPSHOT_FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "snapshot",
                found: version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        let behaviour = if version >= 4 {
            let behaviour = r.u32("behaviour version")?;
            if behaviour <= crate::behaviour::BEHAVIOUR_VERSION_FIRST {
                // Format 3 holds every state at version 1: another encoding of the same
                // state would hash differently.
                return Err(DecodeError::Inconsistent(
                    "format 4 with behaviour version 1",
                ));
            }
            behaviour
        } else {
            crate::behaviour::BEHAVIOUR_VERSION_FIRST
        };
        let config = Config {
            retention_ms: r.u64("retention")?,
            tasks_max: r.u64("tasks max")?,
        };
        let mut sm = StateMachine::new(config);
        sm.behaviour = behaviour;
        sm.last_applied = r.u64("last applied")?;
        sm.wall_ms = r.u64("wall ms")?;
        sm.cluster_ms = r.u64("cluster ms")?;
        sm.next_task_id = r.u64("next task id")?;
        sm.next_ready_seq = r.u64("next ready seq")?;
        if sm.next_ready_seq > limits::READY_SEQ_MAX {
            return Err(DecodeError::Inconsistent("ready seq beyond its limit"));
        }
        sm.last_token = Token::decode(&mut r)?;
        sm.last_broadcast_seq = r.u64("broadcast seq")?;
        for _ in 0..r.len("paused")? {
            let q = r.string("paused queue")?;
            let name = sm.names.intern(&q);
            sm.queues.entry(name).or_default().paused = true;
            sm.paused.insert(q);
        }
        for _ in 0..r.len("broadcasts")? {
            sm.broadcasts.push_back(BroadcastMessage {
                seq: r.u64("broadcast seq")?,
                wall_ms: r.u64("broadcast time")?,
                channel: r.string("channel")?,
                message: r.string("message")?,
            });
        }
        // Tasks are written in id order: each is checked against what is already restored
        // (the machine's own indexes) and inserted at once, with no second copy of the
        // state on the way.
        let count = r.len("tasks")?;
        let mut last_id = TaskId(0);
        for _ in 0..count {
            let mut task = Task::decode_version(&mut r, version)?;
            if task.id.0 == 0 || task.id.0 >= sm.next_task_id {
                return Err(DecodeError::Inconsistent(
                    "task id outside the allocated range",
                ));
            }
            if !(limits::PRIORITY_MIN..=limits::PRIORITY_MAX).contains(&task.priority) {
                return Err(DecodeError::Inconsistent("a task priority out of range"));
            }
            if task.state == TaskState::Queued && task.ready_seq >= sm.next_ready_seq {
                return Err(DecodeError::Inconsistent(
                    "a queued task's ready seq not yet allocated",
                ));
            }
            if task.id <= last_id {
                return Err(DecodeError::Inconsistent(
                    "task ids out of order or repeated",
                ));
            }
            last_id = task.id;
            if task.last_token().is_some_and(|t| t > sm.last_token) {
                return Err(DecodeError::Inconsistent(
                    "a task token above the last token",
                ));
            }
            let keys: Vec<&Arc<str>> = task
                .idempotency_key
                .iter()
                .chain(&task.rare.joined_keys)
                .collect();
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() != keys.len()
                || keys.iter().any(|k| sm.idempotency.contains_key(&***k))
            {
                return Err(DecodeError::Inconsistent(
                    "idempotency key held by two tasks",
                ));
            }
            if !task.state.is_finished() {
                if let Some(k) = &task.rare.coalesce_key {
                    if sm
                        .coalesce
                        .contains_key(&(task.queue.to_string(), k.clone()))
                    {
                        return Err(DecodeError::Inconsistent(
                            "coalesce key held by two open tasks",
                        ));
                    }
                }
            }
            task.queue = sm.names.intern(&task.queue);
            task.kind = sm.names.intern(&task.kind);
            sm.insert(task);
        }
        r.finish()?;
        Ok(sm)
    }

    /// A 64-bit FNV-1a hash of the snapshot: equal on two nodes exactly when their states
    /// are equal (up to hash collisions). Cheap to compare across the cluster.
    pub fn state_hash(&self) -> u64 {
        self.snapshot_view().state_hash()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
