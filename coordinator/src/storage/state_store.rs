//! The state machine as openraft sees it: apply committed entries, build and install
//! snapshots.
//!
//! The task state machine lives in memory; durability comes from the snapshot file plus
//! the log. At open the machine starts from the snapshot and openraft re-applies the
//! committed entries after it (the committed log id is saved by the log store). So
//! `apply` writes nothing to disk, and every snapshot, built or installed, is written
//! durably before it is reported.
//!
//! Locks: `shared` (the machine) is taken before `applied` (the last applied log id and
//! membership), and `applied` only changes while `shared` is write-locked. A reader holding
//! the read lock therefore sees a machine and an applied log id that belong together,
//! which is what a snapshot must capture.

use std::fmt;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use taskswarm_state_machine::{EventKind, Outcome, Reply, StateMachine, TaskEvent, TaskState};
use tokio::sync::{broadcast, watch};

use super::behaviour_guard;
use super::blocking;
use super::log_durable::LogMarks;
use super::shared_machine::{SharedMachine, WriteGuard};
use super::snapshot_dir::{Saved, SnapshotDir};
use super::snapshot_file::SnapshotFileError;
use super::snapshot_stats::{BuildFigures, SnapshotStats};
use crate::types::{
    LogId, RaftEntry, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// Where applied state is announced. Given to [`open`](super::open); the storage only
/// sends.
#[derive(Debug)]
pub struct ApplyHooks {
    /// Every task event, in apply order, after its entry is applied. Nobody listening is
    /// fine; a lagging receiver loses events (tokio's broadcast semantics).
    pub events: broadcast::Sender<Arc<TaskEvent>>,
    /// The index of the last applied entry (or installed snapshot): readers wait on it
    /// for read-your-writes.
    pub applied: watch::Sender<u64>,
    /// Bumped when an apply may have made a task claimable (a task became queued, a tick
    /// promoted some, a queue was resumed, a snapshot was installed). Claim long-polls
    /// wait on it instead of on every apply, so idle workers are not all woken by each
    /// heartbeat and complete.
    pub ready: watch::Sender<u64>,
    /// The state machine's cluster time after the last apply (or restore), published
    /// here so the batcher and the clock read it without the state lock.
    pub cluster_ms: Arc<AtomicU64>,
    /// The highest behaviour version this node accepts (`behaviour_guard.rs`).
    pub behaviour_max: u32,
}

/// The last applied log id and the membership in effect at it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub(crate) last: Option<LogId>,
    pub(crate) membership: StoredMembership,
}

/// openraft's state machine: the shared task state machine plus snapshots.
pub struct StateMachineStore {
    shared: Arc<SharedMachine>,
    applied: Arc<Mutex<Applied>>,
    snapshots: Arc<SnapshotDir>,
    hooks: ApplyHooks,
    stats: Arc<SnapshotStats>,
    /// What of this node's log is written and synced (`log_durable.rs`): an entry the log
    /// holds unsynced does not apply.
    durable: watch::Receiver<LogMarks>,
}

/// Builds a snapshot of the state at the time `build_snapshot` runs. openraft runs it
/// on its own task, concurrently with later applies.
pub struct StateSnapshotBuilder {
    shared: Arc<SharedMachine>,
    applied: Arc<Mutex<Applied>>,
    snapshots: Arc<SnapshotDir>,
    stats: Arc<SnapshotStats>,
}

impl fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("applied", &*lock_applied(&self.applied))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StateSnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSnapshotBuilder")
            .finish_non_exhaustive()
    }
}

impl StateMachineStore {
    pub(crate) fn new(
        machine: StateMachine,
        applied: Applied,
        snapshots: SnapshotDir,
        hooks: ApplyHooks,
        stats: Arc<SnapshotStats>,
        durable: watch::Receiver<LogMarks>,
    ) -> Self {
        hooks
            .applied
            .send_replace(applied.last.map_or(0, |l| l.index));
        hooks
            .cluster_ms
            .store(machine.cluster_ms(), Ordering::Release);
        Self {
            shared: Arc::new(SharedMachine::new(machine)),
            applied: Arc::new(Mutex::new(applied)),
            snapshots: Arc::new(snapshots),
            hooks,
            stats,
            durable,
        }
    }

    /// Figures of this node's snapshot builds and restore, for metrics.
    pub fn snapshot_stats(&self) -> Arc<SnapshotStats> {
        Arc::clone(&self.stats)
    }

    /// The task state machine, for reads. Hold the read lock briefly: applies wait on it.
    pub fn shared(&self) -> Arc<SharedMachine> {
        Arc::clone(&self.shared)
    }

    fn publish(&self, outcomes: &[Outcome], last_index: Option<u64>) {
        for event in outcomes.iter().flat_map(|o| &o.events) {
            // An error only means nobody is subscribed right now.
            let _ = self.hooks.events.send(Arc::new(event.clone()));
        }
        if let Some(index) = last_index {
            self.hooks.applied.send_replace(index);
            if outcomes.is_empty() || outcomes.iter().any(may_ready) {
                self.hooks.ready.send_modify(|n| *n += 1);
            }
        }
    }
}

/// Whether an outcome may have made a task claimable. Events are emitted before a task
/// is put back in line (an attempt that failed, a release), so the kind decides, not the
/// state recorded with it.
fn may_ready(o: &Outcome) -> bool {
    o.events.iter().any(|e| {
        e.state == TaskState::Queued
            || matches!(
                e.event.kind,
                EventKind::Enqueued
                    | EventKind::Released { .. }
                    | EventKind::AttemptFailed { .. }
                    | EventKind::Requeued
            )
    }) || o.results.iter().any(|r| match r {
        Ok(Reply::Ticked(t)) => t.promoted > 0 || t.leases_expired > 0 || t.timeouts_fired > 0,
        Ok(Reply::QueueUpdated) => true,
        _ => false,
    })
}

/// Taking a snapshot view that holds applies back this long is logged (a million tasks
/// take about 5 ms).
const SNAPSHOT_SLOW_MS: u64 = 50;

fn read_machine(shared: &SharedMachine) -> parking_lot::RwLockReadGuard<'_, StateMachine> {
    shared.read()
}

fn write_machine(shared: &SharedMachine) -> WriteGuard<'_> {
    shared.write()
}

fn lock_applied(applied: &Mutex<Applied>) -> MutexGuard<'_, Applied> {
    applied
        .lock()
        .expect("applied state lock poisoned by a panic during apply")
}

/// Why an installed snapshot was refused.
#[derive(Debug, thiserror::Error)]
enum SnapshotRejected {
    #[error("snapshot state is at log index {state} but its metadata covers only {covered}")]
    AheadOfMeta { state: u64, covered: u64 },
    #[error("installing a snapshot older than the saved one")]
    Stale,
}

fn write_snapshot_error(meta: &SnapshotMeta, e: &SnapshotFileError) -> StorageError {
    StorageIOError::write_snapshot(Some(meta.signature()), e).into()
}

/// The blocking pool could not run the task (the runtime is shutting down).
fn blocking_error(e: &std::io::Error) -> StorageError {
    StorageIOError::read_state_machine(e).into()
}

/// A snapshot id unique to this node: the log id it covers, when it was built, and a
/// counter for builds within one millisecond.
fn snapshot_id(last: Option<LogId>) -> String {
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let build = BUILDS.fetch_add(1, Ordering::Relaxed);
    match last {
        Some(id) => format!(
            "{}-{}-{}-{millis}-{build}",
            id.leader_id.term, id.leader_id.node_id, id.index
        ),
        None => format!("empty-{millis}-{build}"),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = lock_applied(&self.applied);
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        if let Some(last) = entries.last() {
            // Rule 1 of `log_durable.rs`: a node applies nothing its own log holds unsynced.
            // Only a leader ever waits here, for its own fsync, which overlapped the
            // followers' and has usually finished by the time they have answered.
            let (log_id, index) = (last.log_id, last.log_id.index);
            if !self.durable.borrow().may_apply(index) {
                self.durable
                    .wait_for(|marks| marks.may_apply(index))
                    .await
                    .map_err(|e| StorageIOError::apply(log_id, &e))?;
            }
        }
        let mut outcomes = Vec::new();
        let mut last_index = None;
        for entry in entries {
            // One entry per lock hold, so reads interleave with a long batch.
            let mut machine = write_machine(&self.shared);
            let mut applied = lock_applied(&self.applied);
            assert!(
                applied
                    .last
                    .is_none_or(|last| last.index < entry.log_id.index),
                "entry {} applied after {:?}",
                entry.log_id,
                applied.last
            );
            let outcome = match entry.payload {
                EntryPayload::Normal(ref payload) => machine.apply(entry.log_id.index, payload),
                EntryPayload::Blank => Outcome::default(),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Outcome::default()
                }
            };
            // A raise past what this node accepts: stop before anything applies under it.
            if let Err(why) =
                behaviour_guard::check(machine.behaviour_version(), self.hooks.behaviour_max)
            {
                behaviour_guard::stop(why);
            }
            applied.last = Some(entry.log_id);
            self.hooks
                .cluster_ms
                .store(machine.cluster_ms(), Ordering::Release);
            last_index = Some(entry.log_id.index);
            outcomes.push(outcome);
        }
        // Announced after the locks are released, so a subscriber woken here can read the
        // state that produced the event.
        self.publish(&outcomes, last_index);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateSnapshotBuilder {
            shared: Arc::clone(&self.shared),
            applied: Arc::clone(&self.applied),
            snapshots: Arc::clone(&self.snapshots),
            stats: Arc::clone(&self.stats),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// The data is the state machine's own snapshot bytes (what `build_snapshot` ships).
    /// It is restored and saved durably before the in-memory machine is replaced: a crash
    /// in between restarts from the new snapshot, never from a mix.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let state = snapshot.into_inner();
        let owned_meta = meta.clone();
        let snapshots = Arc::clone(&self.snapshots);
        let behaviour_max = self.hooks.behaviour_max;
        let restored = blocking::run(move || -> Result<StateMachine, StorageError> {
            let machine = StateMachine::restore(&state).map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(
                    Some(owned_meta.signature()),
                    &e,
                ))
            })?;
            // Stop before the snapshot replaces anything on disk.
            if let Err(why) = behaviour_guard::check(machine.behaviour_version(), behaviour_max) {
                behaviour_guard::stop(why);
            }
            let covered = owned_meta.last_log_id.map_or(0, |l| l.index);
            if machine.last_applied() > covered {
                let e = SnapshotRejected::AheadOfMeta {
                    state: machine.last_applied(),
                    covered,
                };
                return Err(StorageIOError::read_snapshot(Some(owned_meta.signature()), &e).into());
            }
            match snapshots
                .save(&owned_meta, &state)
                .map_err(|e| write_snapshot_error(&owned_meta, &e))?
            {
                Saved::Replaced => Ok(machine),
                Saved::KeptNewer => Err(StorageIOError::write_snapshot(
                    Some(owned_meta.signature()),
                    &SnapshotRejected::Stale,
                )
                .into()),
            }
        })
        .await
        .map_err(|e| blocking_error(&e))??;

        {
            let mut machine = write_machine(&self.shared);
            let mut applied = lock_applied(&self.applied);
            *machine = restored;
            self.hooks
                .cluster_ms
                .store(machine.cluster_ms(), Ordering::Release);
            *applied = Applied {
                last: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
        }
        self.publish(&[], Some(meta.last_log_id.map_or(0, |l| l.index)));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let snapshots = Arc::clone(&self.snapshots);
        let loaded = blocking::run(move || snapshots.load())
            .await
            .map_err(|e| blocking_error(&e))?;
        let loaded =
            loaded.map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        Ok(loaded.map(|(meta, state)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(state)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateSnapshotBuilder {
    /// Takes a copy-on-write view of the machine under the read lock (about 5 ms for
    /// a million tasks; applies wait only for that), encodes it without the lock, then
    /// writes the snapshot file durably.
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let shared = Arc::clone(&self.shared);
        let applied = Arc::clone(&self.applied);
        let snapshots = Arc::clone(&self.snapshots);
        let stats = Arc::clone(&self.stats);
        blocking::run(move || {
            let (view, applied, view_ms) = {
                let started = std::time::Instant::now();
                let machine = read_machine(&shared);
                let applied = lock_applied(&applied).clone();
                let view = machine.snapshot_view();
                drop(machine);
                let held_ms = started.elapsed().as_millis() as u64;
                if held_ms >= SNAPSHOT_SLOW_MS {
                    tracing::info!(
                        held_ms,
                        tasks = view.task_count(),
                        "snapshot view taken; applies waited for it"
                    );
                }
                (view, applied, held_ms)
            };
            // Encoded without the lock: the view shares the tasks copy-on-write, so applies
            // go on meanwhile and copy only what they change.
            let started = std::time::Instant::now();
            let state = view.encode();
            let tasks = view.task_count() as u64;
            drop(view);
            let encode_ms = started.elapsed().as_millis() as u64;
            let started = std::time::Instant::now();
            let meta = SnapshotMeta {
                last_log_id: applied.last,
                last_membership: applied.membership,
                snapshot_id: snapshot_id(applied.last),
            };
            // `KeptNewer`: an install overtook this build; this snapshot is still a valid
            // (older) one to return.
            snapshots
                .save(&meta, &state)
                .map_err(|e| write_snapshot_error(&meta, &e))?;
            stats.record_build(BuildFigures {
                view_ms,
                encode_ms,
                write_ms: started.elapsed().as_millis() as u64,
                bytes: state.len() as u64,
                tasks,
            });
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(state)),
            })
        })
        .await
        .map_err(|e| blocking_error(&e))?
    }
}
