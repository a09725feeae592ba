//! The state machine: tasks, queues and the indexes that make claims and ticks cheap.
//!
//! Every index is a pure function of the tasks (plus the paused set): a mutation takes
//! the task out of all indexes (`unindex`), changes it, and puts it back (`index`). That
//! one pattern keeps the indexes right by construction, and `check_invariants` recomputes
//! them from scratch to prove it in tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::command::{Command, Entry};
use crate::limits::{self, TOKEN_SLOTS_PER_ENTRY};
use crate::names::Names;
use crate::outcome::{CommandResult, Outcome, Rejection, TaskEvent};
use crate::task::{Event, EventKind, RunAt, Task, TaskId, TaskState, Token};
use crate::task_store::TaskStore;

/// A Raft log index.
pub type LogIndex = u64;

/// How an emitted event is kept in its task's bounded history. The history stays
/// append-only: a task's event stream numbers events by their place in it.
#[derive(Clone, Copy)]
pub(crate) enum HistoryLine {
    Append,
    /// Streamed only.
    Skip,
}

/// Settings every node must share. They travel inside snapshots, so a node restored from
/// a snapshot uses the settings the cluster was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long finished tasks and their idempotency keys are kept (cluster ms).
    pub retention_ms: u64,
    /// Tasks held at once, finished ones included.
    pub tasks_max: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            retention_ms: limits::DEFAULT_RETENTION_MS,
            tasks_max: limits::DEFAULT_TASKS_MAX,
        }
    }
}

/// Counts of tasks by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts(pub [u64; 7]);

impl Counts {
    pub fn get(&self, state: TaskState) -> u64 {
        self.0[state.index()]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Tasks not yet finished.
    pub fn open(&self) -> u64 {
        TaskState::ALL
            .iter()
            .filter(|s| !s.is_finished())
            .map(|s| self.get(*s))
            .sum()
    }
    fn add(&mut self, state: TaskState) {
        self.0[state.index()] += 1;
    }
    fn sub(&mut self, state: TaskState) {
        let slot = &mut self.0[state.index()];
        assert!(*slot > 0, "count of {} would go negative", state.as_str());
        *slot -= 1;
    }
}

/// A queue: its counts and whether claims skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueInfo {
    pub paused: bool,
    pub counts: Counts,
}

/// A message sent to every subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastMessage {
    pub seq: u64,
    pub wall_ms: u64,
    pub channel: String,
    /// JSON text.
    pub message: String,
}

/// Which timeout a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Deadline {
    ScheduleToStart,
    StartToClose,
    ScheduleToClose,
}

/// Order of ready tasks: higher priority first, then FIFO, then id (a tie-break that
/// never happens since `ready_seq` is unique, kept so the order is total).
///
/// Priority and seq share one word, `(PRIORITY_MAX - priority) << READY_SEQ_BITS | seq`,
/// so a key is 16 bytes where three fields took 24: the ready index holds one key per
/// queued task. Priorities span 2,001 values (11 bits); seqs stay below
/// `limits::READY_SEQ_MAX` (2^53: 285 years of a million tasks a second becoming ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadyKey {
    order: u64,
    pub(crate) id: TaskId,
}

const READY_SEQ_BITS: u32 = limits::READY_SEQ_MAX.trailing_zeros();

impl ReadyKey {
    pub(crate) fn of(task: &Task) -> Self {
        assert!((limits::PRIORITY_MIN..=limits::PRIORITY_MAX).contains(&task.priority));
        assert!(task.ready_seq < limits::READY_SEQ_MAX);
        let rank = u64::from((limits::PRIORITY_MAX - task.priority).unsigned_abs());
        Self {
            order: rank << READY_SEQ_BITS | task.ready_seq,
            id: task.id,
        }
    }

    pub(crate) fn priority(&self) -> i32 {
        let rank = i32::try_from(self.order >> READY_SEQ_BITS).expect("11 bits");
        limits::PRIORITY_MAX - rank
    }

    /// The least key of the next lower priority.
    fn first_below(&self) -> Self {
        Self {
            order: ((self.order >> READY_SEQ_BITS) + 1) << READY_SEQ_BITS,
            id: TaskId(0),
        }
    }
}

/// When the leader should next propose a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NextDue {
    /// Earliest lease expiry, timeout, end of a relative delay (enqueue delay, retry
    /// backoff, release delay) or retention drop, in cluster ms.
    pub cluster_ms: Option<u64>,
    /// Earliest task scheduled at an absolute `run_at`, in wall ms.
    pub wall_ms: Option<u64>,
}

impl NextDue {
    /// Whether a tick at these clock readings would have work to do.
    pub fn is_due(&self, cluster_now_ms: u64, wall_now_ms: u64) -> bool {
        self.cluster_ms.is_some_and(|t| t <= cluster_now_ms)
            || self.wall_ms.is_some_and(|t| t <= wall_now_ms)
    }
}

/// The replicated task state machine. See the crate docs for its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachine {
    // ---- state that is snapshotted ----
    pub(crate) config: Config,
    /// The cluster's behaviour version (`behaviour.rs`): `apply` follows it, not the build.
    pub(crate) behaviour: u32,
    pub(crate) last_applied: LogIndex,
    /// The largest wall time seen in an entry.
    pub(crate) wall_ms: u64,
    /// The largest cluster time seen in an entry.
    pub(crate) cluster_ms: u64,
    pub(crate) next_task_id: u64,
    pub(crate) next_ready_seq: u64,
    pub(crate) last_token: Token,
    pub(crate) last_broadcast_seq: u64,
    pub(crate) tasks: TaskStore,
    pub(crate) paused: BTreeSet<String>,
    pub(crate) broadcasts: VecDeque<BroadcastMessage>,

    // ---- indexes, rebuilt from the tasks on restore ----
    pub(crate) queues: BTreeMap<Arc<str>, QueueInfo>,
    pub(crate) groups: BTreeMap<String, Counts>,
    /// Queued tasks by (queue, kind).
    pub(crate) ready: BTreeMap<(Arc<str>, Arc<str>), BTreeSet<ReadyKey>>,
    /// Scheduled tasks waiting for a wall time (an absolute `run_at`), by that time.
    pub(crate) scheduled: BTreeSet<(u64, TaskId)>,
    /// Scheduled tasks waiting for a cluster time (a relative delay), by that time.
    pub(crate) delayed: BTreeSet<(u64, TaskId)>,
    /// Running tasks by lease expiry (cluster ms).
    pub(crate) leases: BTreeSet<(u64, TaskId)>,
    /// Pending timeouts by cluster ms.
    pub(crate) deadlines: BTreeSet<(u64, TaskId, Deadline)>,
    /// Finished tasks by the cluster ms they are dropped at.
    pub(crate) retention: BTreeSet<(u64, TaskId)>,
    pub(crate) idempotency: BTreeMap<Arc<str>, TaskId>,
    /// Unfinished tasks by (queue, coalesce key).
    pub(crate) coalesce: BTreeMap<(String, String), TaskId>,

    /// Queue and kind names shared by the tasks (a cache, not state).
    pub(crate) names: Names,

    // ---- scratch for the entry being applied ----
    pub(crate) claims_in_entry: u64,
    pub(crate) emitted: Vec<TaskEvent>,
}

impl Default for StateMachine {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl StateMachine {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            behaviour: crate::behaviour::BEHAVIOUR_VERSION_FIRST,
            last_applied: 0,
            wall_ms: 0,
            cluster_ms: 0,
            next_task_id: 1,
            next_ready_seq: 1,
            last_token: Token(0),
            last_broadcast_seq: 0,
            tasks: TaskStore::default(),
            paused: BTreeSet::new(),
            broadcasts: VecDeque::new(),
            queues: BTreeMap::new(),
            groups: BTreeMap::new(),
            ready: BTreeMap::new(),
            scheduled: BTreeSet::new(),
            delayed: BTreeSet::new(),
            leases: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            retention: BTreeSet::new(),
            idempotency: BTreeMap::new(),
            coalesce: BTreeMap::new(),
            names: Names::default(),
            claims_in_entry: 0,
            emitted: Vec::new(),
        }
    }

    /// Applies one log entry. Never fails: refusals are values in the outcome.
    ///
    /// `index` must grow from call to call (gaps are fine: openraft applies membership and
    /// blank entries without us).
    pub fn apply(&mut self, index: LogIndex, entry: &Entry) -> Outcome {
        assert!(
            index > self.last_applied,
            "log index {index} applied after {}",
            self.last_applied
        );
        assert!(
            index < u64::MAX / TOKEN_SLOTS_PER_ENTRY,
            "log index {index} too large for tokens"
        );
        assert!(self.emitted.is_empty());
        self.last_applied = index;
        // Time never goes back, whatever a leader's clock says.
        self.wall_ms = self.wall_ms.max(entry.wall_ms);
        self.cluster_ms = self.cluster_ms.max(entry.cluster_ms);
        self.claims_in_entry = 0;

        let results = if entry.commands.len() > limits::ENTRY_COMMANDS_MAX {
            let refusal = Rejection::BatchTooLarge {
                what: "entry".into(),
                len: entry.commands.len() as u64,
                max: limits::ENTRY_COMMANDS_MAX as u64,
            };
            entry
                .commands
                .iter()
                .map(|_| Err(refusal.clone()))
                .collect()
        } else {
            entry
                .commands
                .iter()
                .map(|c| self.apply_command(c))
                .collect()
        };
        // Scratch is reset so that a machine between entries equals its restored copy.
        self.claims_in_entry = 0;
        Outcome {
            results,
            events: std::mem::take(&mut self.emitted),
        }
    }

    fn apply_command(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::Enqueue { tasks } => self.enqueue(tasks),
            Command::Claim(claim) => self.claim(claim),
            Command::Heartbeat { worker, leases } => self.heartbeat(worker, leases),
            Command::Complete {
                task,
                token,
                result,
            } => self.complete(*task, *token, result),
            Command::CompleteAndClaim {
                task,
                token,
                result,
                next,
            } => self.complete_and_claim(*task, *token, result, next),
            Command::Fail {
                task,
                token,
                code,
                message,
                retryable,
                retry_after_ms,
            } => self.fail(
                *task,
                *token,
                code.as_deref(),
                message,
                *retryable,
                *retry_after_ms,
            ),
            Command::Release {
                task,
                token,
                delay_ms,
            } => self.release(*task, *token, *delay_ms),
            Command::Cancel { task } => self.cancel(*task),
            Command::Requeue { task } => self.requeue(*task),
            Command::Pause { queue } => self.set_paused(queue, true),
            Command::Resume { queue } => self.set_paused(queue, false),
            Command::Broadcast { channel, message } => self.broadcast(channel, message),
            Command::Tick => Ok(self.tick()),
            Command::Configure {
                retention_ms,
                tasks_max,
            } => self.configure(*retention_ms, *tasks_max),
            Command::RaiseBehaviour { version } => self.raise_behaviour(*version),
        }
    }

    // ---- reads ------------------------------------------------------------------------

    pub fn config(&self) -> Config {
        self.config
    }
    /// The cluster's behaviour version: how entries are applied (`behaviour.rs`).
    pub fn behaviour_version(&self) -> u32 {
        self.behaviour
    }
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }
    /// The largest cluster time applied so far: where a new leader's clock continues.
    pub fn cluster_ms(&self) -> u64 {
        self.cluster_ms
    }
    pub fn wall_ms(&self) -> u64 {
        self.wall_ms
    }
    pub fn last_token(&self) -> Token {
        self.last_token
    }
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(&id)
    }
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }
    /// Queues that hold tasks or are paused, by name.
    pub fn queues(&self) -> impl Iterator<Item = (&str, &QueueInfo)> {
        self.queues.iter().map(|(k, v)| (&**k, v))
    }
    pub fn queue(&self, name: &str) -> Option<&QueueInfo> {
        self.queues.get(name)
    }
    /// The cluster time at which the longest-waiting ready task of `queue` became ready
    /// (`None` when nothing is ready). Looks only at the head of each (kind, priority)
    /// run of the ready index, which is FIFO: a few entries, not a scan.
    pub fn oldest_ready_cluster_ms(&self, queue: &str) -> Option<u64> {
        let mut oldest: Option<u64> = None;
        let kinds = self
            .ready
            .range((Arc::<str>::from(queue), Arc::<str>::from(""))..)
            .take_while(|((q, _), _)| &**q == queue);
        for (_, set) in kinds {
            let mut next = set.first();
            while let Some(head) = next {
                let task = self.tasks.get(&head.id).expect("a ready task exists");
                oldest =
                    Some(oldest.map_or(task.ready_cluster_ms, |o| o.min(task.ready_cluster_ms)));
                // The first key of the next lower priority.
                next = set.range(head.first_below()..).next();
            }
        }
        oldest
    }
    /// Counts by state of a group's retained tasks.
    pub fn group(&self, id: &str) -> Option<&Counts> {
        self.groups.get(id)
    }
    /// Broadcast messages with a sequence number above `after_seq`, oldest first.
    pub fn broadcasts_after(&self, after_seq: u64) -> impl Iterator<Item = &BroadcastMessage> {
        self.broadcasts.iter().filter(move |m| m.seq > after_seq)
    }
    pub fn last_broadcast_seq(&self) -> u64 {
        self.last_broadcast_seq
    }

    /// When the next tick has work to do.
    pub fn next_due(&self) -> NextDue {
        let cluster = [
            self.leases.first().map(|e| e.0),
            self.delayed.first().map(|e| e.0),
            self.deadlines.first().map(|e| e.0),
            self.retention.first().map(|e| e.0),
        ]
        .into_iter()
        .flatten()
        .min();
        NextDue {
            cluster_ms: cluster,
            wall_ms: self.scheduled.first().map(|e| e.0),
        }
    }

    /// A page of tasks in id order, after `after`, optionally filtered. Scans at most
    /// `LIST_SCAN_MAX` tasks; `next` is where to continue (present while more may match).
    pub fn list(&self, filter: &ListFilter<'_>) -> ListPage<'_> {
        let limit = filter.limit.clamp(1, limits::LIST_LIMIT_MAX);
        let start = filter.after.map_or(0, |t| t.0.saturating_add(1));
        let mut tasks = Vec::new();
        let mut last_seen = None;
        for (scanned, (id, task)) in self.tasks.range(TaskId(start)..).enumerate() {
            if tasks.len() == limit || scanned == limits::LIST_SCAN_MAX {
                return ListPage {
                    tasks,
                    next: last_seen,
                };
            }
            last_seen = Some(*id);
            if filter.queue.is_some_and(|q| q != &*task.queue)
                || filter.state.is_some_and(|s| s != task.state)
                || filter.kind.is_some_and(|k| k != &*task.kind)
                || filter
                    .group
                    .is_some_and(|g| Some(g) != task.rare.group.as_deref())
            {
                continue;
            }
            tasks.push(task);
        }
        ListPage { tasks, next: None }
    }

    // ---- mutation helpers used by the commands ------------------------------------------

    pub(crate) fn alloc_token(&mut self) -> Token {
        assert!(
            self.claims_in_entry < TOKEN_SLOTS_PER_ENTRY,
            "too many claims in one entry"
        );
        let token = Token(self.last_applied * TOKEN_SLOTS_PER_ENTRY + self.claims_in_entry);
        self.claims_in_entry += 1;
        assert!(token > self.last_token, "fencing tokens must only grow");
        self.last_token = token;
        token
    }

    pub(crate) fn alloc_ready_seq(&mut self) -> u64 {
        let seq = self.next_ready_seq;
        assert!(seq < limits::READY_SEQ_MAX, "ready seqs ran out");
        self.next_ready_seq += 1;
        seq
    }

    /// Records an event on the task and in the outcome's stream.
    pub(crate) fn emit(&mut self, id: TaskId, kind: EventKind) {
        self.emit_with(id, kind, HistoryLine::Append);
    }

    /// Streams the event, and keeps it in the task's history as `line` says.
    pub(crate) fn emit_with(&mut self, id: TaskId, kind: EventKind, line: HistoryLine) {
        let event = Event {
            wall_ms: self.wall_ms,
            kind,
        };
        let task = self.tasks.get_mut(&id).expect("event for a known task");
        match line {
            HistoryLine::Append => task.push_event(event.clone()),
            HistoryLine::Skip => {}
        }
        self.emitted.push(TaskEvent {
            task: id,
            queue: task.queue.to_string(),
            group: task.rare.group.clone(),
            state: task.state,
            event,
        });
    }

    /// Changes a task with its indexes kept right: out of every index, change, back in.
    pub(crate) fn update<R>(&mut self, id: TaskId, change: impl FnOnce(&mut Task) -> R) -> R {
        self.unindex(id);
        let task = self.tasks.get_mut(&id).expect("update of a known task");
        let out = change(task);
        self.index(id);
        out
    }

    pub(crate) fn insert(&mut self, task: Task) {
        let id = task.id;
        for key in task.idempotency_key.iter().chain(&task.rare.joined_keys) {
            let previous = self.idempotency.insert(key.clone(), id);
            assert!(previous.is_none(), "idempotency key reused while retained");
        }
        let previous = self.tasks.insert(task);
        assert!(previous.is_none(), "task id reused");
        self.index(id);
    }

    pub(crate) fn remove(&mut self, id: TaskId) -> Task {
        self.unindex(id);
        let task = self.tasks.remove(&id).expect("removal of a known task");
        for key in task.idempotency_key.iter().chain(&task.rare.joined_keys) {
            let owner = self.idempotency.remove(key);
            assert_eq!(owner, Some(id));
        }
        task
    }

    /// Whether a new queue can be created (existing queues are always fine).
    pub(crate) fn queue_admits(&self, queue: &str) -> bool {
        self.queues.contains_key(queue) || self.queues.len() < limits::QUEUES_MAX
    }

    pub(crate) fn index(&mut self, id: TaskId) {
        let task = &self.tasks[&id];
        let info = self.queues.entry(task.queue.clone()).or_default();
        info.counts.add(task.state);
        info.paused = self.paused.contains(&*task.queue);
        if let Some(group) = &task.rare.group {
            self.groups
                .entry(group.clone())
                .or_default()
                .add(task.state);
        }
        for key in index_keys(task, self.config.retention_ms) {
            let fresh = match key {
                IndexKey::Ready(q, k, r) => self.ready.entry((q, k)).or_default().insert(r),
                IndexKey::Scheduled(at) => self.scheduled.insert((at, id)),
                IndexKey::Delayed(at) => self.delayed.insert((at, id)),
                IndexKey::Lease(at) => self.leases.insert((at, id)),
                IndexKey::Deadline(at, d) => self.deadlines.insert((at, id, d)),
                IndexKey::Retention(at) => self.retention.insert((at, id)),
                IndexKey::Coalesce(q, k) => self.coalesce.insert((q, k), id).is_none(),
            };
            assert!(fresh, "task {id} indexed twice");
        }
    }

    pub(crate) fn unindex(&mut self, id: TaskId) {
        let task = &self.tasks[&id];
        let info = self
            .queues
            .get_mut(&task.queue)
            .expect("queue of an indexed task");
        info.counts.sub(task.state);
        if info.counts.total() == 0 && !info.paused {
            self.queues.remove(&task.queue);
        }
        if let Some(group) = &task.rare.group {
            let counts = self
                .groups
                .get_mut(group)
                .expect("group of an indexed task");
            counts.sub(task.state);
            if counts.total() == 0 {
                self.groups.remove(group);
            }
        }
        for key in index_keys(task, self.config.retention_ms) {
            let found = match key {
                IndexKey::Ready(q, k, r) => {
                    let key = (q, k);
                    let set = self
                        .ready
                        .get_mut(&key)
                        .expect("ready set of a queued task");
                    let found = set.remove(&r);
                    if set.is_empty() {
                        self.ready.remove(&key);
                    }
                    found
                }
                IndexKey::Scheduled(at) => self.scheduled.remove(&(at, id)),
                IndexKey::Delayed(at) => self.delayed.remove(&(at, id)),
                IndexKey::Lease(at) => self.leases.remove(&(at, id)),
                IndexKey::Deadline(at, d) => self.deadlines.remove(&(at, id, d)),
                IndexKey::Retention(at) => self.retention.remove(&(at, id)),
                IndexKey::Coalesce(q, k) => self.coalesce.remove(&(q, k)) == Some(id),
            };
            assert!(found, "task {id} missing from an index");
        }
    }

    pub(crate) fn set_paused(&mut self, queue: &str, paused: bool) -> CommandResult {
        crate::validate::name("queue", queue)?;
        if paused {
            if !self.queue_admits(queue) {
                return Err(Rejection::TooManyQueues {
                    max: limits::QUEUES_MAX as u64,
                });
            }
            self.paused.insert(queue.to_owned());
            let name = self.names.intern(queue);
            self.queues.entry(name).or_default().paused = true;
        } else {
            self.paused.remove(queue);
            if let Some(info) = self.queues.get_mut(queue) {
                info.paused = false;
                if info.counts.total() == 0 {
                    self.queues.remove(queue);
                }
            }
        }
        Ok(crate::outcome::Reply::QueueUpdated)
    }
}

/// Filter and page bounds of [`StateMachine::list`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    pub queue: Option<&'a str>,
    pub state: Option<TaskState>,
    pub kind: Option<&'a str>,
    pub group: Option<&'a str>,
    pub after: Option<TaskId>,
    pub limit: usize,
}

/// One page of [`StateMachine::list`].
#[derive(Debug)]
pub struct ListPage<'a> {
    pub tasks: Vec<&'a Task>,
    /// Continue after this id; `None` when the scan reached the end.
    pub next: Option<TaskId>,
}

enum IndexKey {
    Ready(Arc<str>, Arc<str>, ReadyKey),
    /// Waiting for a wall time.
    Scheduled(u64),
    /// Waiting for a cluster time.
    Delayed(u64),
    Lease(u64),
    Deadline(u64, Deadline),
    Retention(u64),
    Coalesce(String, String),
}

/// The index entries a task belongs in, a pure function of the task.
fn index_keys(task: &Task, retention_ms: u64) -> Vec<IndexKey> {
    let mut keys = Vec::with_capacity(3);
    let t = &task.rare.timeouts;
    match task.state {
        TaskState::Scheduled => keys.push(
            match task.rare.run_at.expect("a scheduled task has a run_at") {
                RunAt::Wall(at) => IndexKey::Scheduled(at),
                RunAt::Cluster(at) => IndexKey::Delayed(at),
            },
        ),
        TaskState::Queued => {
            keys.push(IndexKey::Ready(
                task.queue.clone(),
                task.kind.clone(),
                ReadyKey::of(task),
            ));
            if let Some(ms) = t.schedule_to_start_ms {
                keys.push(IndexKey::Deadline(
                    task.ready_cluster_ms.saturating_add(ms),
                    Deadline::ScheduleToStart,
                ));
            }
        }
        TaskState::Running => {
            let lease = task.lease.as_ref().expect("a running task has a lease");
            keys.push(IndexKey::Lease(lease.expires_cluster_ms));
            if let Some(ms) = t.start_to_close_ms {
                keys.push(IndexKey::Deadline(
                    lease.started_cluster_ms.saturating_add(ms),
                    Deadline::StartToClose,
                ));
            }
        }
        TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Expired => {
            let finished = task
                .rare
                .finished_cluster_ms
                .expect("a finished task has a finish time");
            keys.push(IndexKey::Retention(finished.saturating_add(retention_ms)));
        }
    }
    if !task.state.is_finished() {
        if let Some(ms) = t.schedule_to_close_ms {
            keys.push(IndexKey::Deadline(
                task.created_cluster_ms.saturating_add(ms),
                Deadline::ScheduleToClose,
            ));
        }
        if let Some(key) = &task.rare.coalesce_key {
            keys.push(IndexKey::Coalesce(task.queue.to_string(), key.clone()));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(priority: i32, seq: u64, id: u64) -> ReadyKey {
        let mut task = crate::test_support::task(id);
        task.priority = priority;
        task.ready_seq = seq;
        ReadyKey::of(&task)
    }

    /// The packed key orders exactly as (higher priority, lower seq, lower id) did.
    #[test]
    fn a_ready_key_orders_by_priority_then_seq_then_id() {
        let (lo, hi) = (limits::PRIORITY_MIN, limits::PRIORITY_MAX);
        let seqs = [0, 1, 2, 1 << 40, limits::READY_SEQ_MAX - 1];
        let mut keys = Vec::new();
        for priority in [lo, lo + 1, -1, 0, 1, hi - 1, hi] {
            for seq in seqs {
                for id in [1, 2] {
                    keys.push(((-i64::from(priority), seq, id), key(priority, seq, id)));
                }
            }
        }
        for (a, ka) in &keys {
            assert_eq!(ka.priority(), -i32::try_from(a.0).unwrap());
            for (b, kb) in &keys {
                assert_eq!(a.cmp(b), ka.cmp(kb), "{a:?} against {b:?}");
            }
        }
        let below = key(5, 7, 3).first_below();
        assert!(key(4, 0, 1) >= below && key(5, limits::READY_SEQ_MAX - 1, 9) < below);
    }
}
