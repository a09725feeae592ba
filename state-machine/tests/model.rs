//! Random command sequences checked against a small reference model, and against the
//! state machine's invariants after every apply.
//!
//! The model is deliberately naive (linear scans, no indexes) so that it is easy to
//! believe; the state machine must agree with it on every result and every task's state.
//! Timeouts and jittered backoff are left to the wide test in determinism.rs and the unit
//! tests; here retries are immediate or explicitly delayed.
//!
//! Leaders' wall clocks are sometimes wrong (an hour ahead, or behind), cluster time never
//! is: an absolute `run_at` waits for the applied wall time (the largest stamped), every
//! relative delay (enqueue delay, retry_after, release delay) for cluster time.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::generate::{self as gen, GenEntry};
use proptest::prelude::*;
use taskswarm_state_machine::*;

const RETENTION_MS: u64 = 2_000;

#[derive(Debug, Clone)]
struct MTask {
    queue: String,
    kind: String,
    priority: i32,
    state: TaskState,
    attempt: u32,
    max_attempts: u32,
    lease: Option<(Token, u64, u64)>, // token, expires, lease_ms
    last_token: Option<Token>,
    seq: u64,
    /// What it waits for while scheduled.
    run_at: Option<RunAt>,
    idem: Option<String>,
    /// Keys of enqueues that joined through the coalesce key.
    joined_keys: Vec<String>,
    coalesce: Option<String>,
    cancel: bool,
    finished_at: Option<u64>,
}

#[derive(Debug, Default)]
struct Model {
    tasks: BTreeMap<u64, MTask>,
    next_id: u64,
    next_seq: u64,
    paused: BTreeSet<String>,
    /// The largest wall time stamped so far (leaders' clocks may be wrong).
    wall: u64,
    cluster: u64,
    index: u64,
    claims_in_entry: u64,
    last_token: u64,
    retention_ms: u64,
    tasks_max: u64,
}

/// A result reduced to what the model can predict.
#[derive(Debug, Clone, PartialEq, Eq)]
enum R {
    Refused(&'static str),
    Enqueued(Vec<Result<(u64, bool, bool), &'static str>>),
    Claimed(Vec<(u64, u64)>),
    Beats(Vec<Result<(u64, bool), &'static str>>),
    Completed(bool),
    CompletedAndClaimed(bool, Vec<(u64, u64)>),
    State(TaskState),
    Done,
}

fn reduce(r: &CommandResult) -> R {
    match r {
        Err(e) => R::Refused(e.code()),
        Ok(Reply::Enqueued(v)) => R::Enqueued(
            v.iter()
                .map(|x| {
                    x.as_ref()
                        .map(|e| (e.id.0, e.created, e.coalesced))
                        .map_err(Rejection::code)
                })
                .collect(),
        ),
        Ok(Reply::Claimed(v)) => R::Claimed(v.iter().map(|c| (c.id.0, c.token.0)).collect()),
        Ok(Reply::Heartbeats(v)) => R::Beats(
            v.iter()
                .map(|x| {
                    x.as_ref()
                        .map(|a| (a.expires_cluster_ms, a.cancel_requested))
                        .map_err(Rejection::code)
                })
                .collect(),
        ),
        Ok(Reply::Completed { duplicate }) => R::Completed(*duplicate),
        Ok(Reply::CompletedAndClaimed { duplicate, tasks }) => R::CompletedAndClaimed(
            *duplicate,
            tasks.iter().map(|c| (c.id.0, c.token.0)).collect(),
        ),
        Ok(
            Reply::FailRecorded { state }
            | Reply::Released { state }
            | Reply::CancelRecorded { state },
        ) => R::State(*state),
        Ok(
            Reply::Requeued
            | Reply::QueueUpdated
            | Reply::Broadcast { .. }
            | Reply::Ticked(_)
            | Reply::Configured
            | Reply::BehaviourRaised { .. },
        ) => R::Done,
    }
}

impl Model {
    fn new() -> Self {
        Self {
            next_id: 1,
            next_seq: 1,
            retention_ms: RETENTION_MS,
            tasks_max: Config::default().tasks_max,
            ..Self::default()
        }
    }

    /// Waits for `run_at` when there is one, else is ready now.
    fn wait_or_ready(&mut self, id: u64, run_at: Option<RunAt>) {
        let seq = self.next_seq;
        let t = self.tasks.get_mut(&id).unwrap();
        t.lease = None;
        t.run_at = run_at;
        if run_at.is_some() {
            t.state = TaskState::Scheduled;
        } else {
            t.state = TaskState::Queued;
            t.seq = seq;
            self.next_seq += 1;
        }
    }

    /// A relative delay: cluster time.
    fn make_ready(&mut self, id: u64, delay: u64) {
        let run_at = (delay > 0).then_some(RunAt::Cluster(self.cluster + delay));
        self.wait_or_ready(id, run_at);
    }

    fn finish(&mut self, id: u64, state: TaskState) {
        let t = self.tasks.get_mut(&id).unwrap();
        t.state = state;
        t.lease = None;
        t.run_at = None;
        t.finished_at = Some(self.cluster);
    }

    fn attempt_failed(&mut self, id: u64, retryable: bool, delay: u64) -> TaskState {
        let t = &self.tasks[&id];
        if t.cancel {
            self.finish(id, TaskState::Cancelled);
        } else if retryable && t.attempt < t.max_attempts {
            self.make_ready(id, delay);
        } else {
            self.finish(id, TaskState::Failed);
        }
        self.tasks[&id].state
    }

    fn expire_if_due(&mut self, id: u64) {
        let t = &self.tasks[&id];
        if let Some((_, exp, _)) = t.lease {
            if exp <= self.cluster {
                self.attempt_failed(id, true, 0);
            }
        }
    }

    /// Ok when `token` holds the lease; the rejection code otherwise.
    fn check(&mut self, id: u64, token: Token) -> Result<(), &'static str> {
        if !self.tasks.contains_key(&id) {
            return Err("not_found");
        }
        self.expire_if_due(id);
        let t = &self.tasks[&id];
        match t.lease {
            Some((held, _, _)) if held == token => Ok(()),
            _ if t.state.is_finished() && t.last_token == Some(token) => Err("task_finished"),
            _ => Err("lease_lost"),
        }
    }

    fn claim(&mut self, c: &Claim) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while out.len() < c.max as usize {
            let best = self
                .tasks
                .iter()
                .filter(|(_, t)| t.state == TaskState::Queued)
                .filter(|(_, t)| c.queues.contains(&t.queue) && !self.paused.contains(&t.queue))
                .filter(|(_, t)| c.kinds.as_ref().is_none_or(|k| k.contains(&t.kind)))
                .filter(|(_, t)| c.min_priority.is_none_or(|m| t.priority >= m))
                .min_by_key(|(_, t)| (-t.priority, t.seq))
                .map(|(id, _)| *id);
            let Some(id) = best else { break };
            let token = Token(self.index * limits::TOKEN_SLOTS_PER_ENTRY + self.claims_in_entry);
            self.claims_in_entry += 1;
            assert!(token.0 > self.last_token, "tokens only grow");
            self.last_token = token.0;
            let cluster = self.cluster;
            let t = self.tasks.get_mut(&id).unwrap();
            let lease_ms = c.lease_ms.unwrap_or(1_000);
            t.state = TaskState::Running;
            t.attempt += 1;
            t.lease = Some((token, cluster + lease_ms, lease_ms));
            t.last_token = Some(token);
            out.push((id, token.0));
        }
        out
    }

    fn complete(&mut self, task: TaskId, token: Token) -> R {
        match self.check(task.0, token) {
            Ok(()) => {
                self.finish(task.0, TaskState::Succeeded);
                R::Completed(false)
            }
            Err("task_finished") if self.tasks[&task.0].state == TaskState::Succeeded => {
                R::Completed(true)
            }
            Err(e) => R::Refused(e),
        }
    }

    fn apply(&mut self, c: &Command) -> R {
        match c {
            Command::Enqueue { tasks } => {
                R::Enqueued(tasks.iter().map(|t| self.enqueue(t)).collect())
            }
            Command::Claim(c) => R::Claimed(self.claim(c)),
            Command::Heartbeat { leases, .. } => R::Beats(
                leases
                    .iter()
                    .map(|b| {
                        self.check(b.task.0, b.token)?;
                        let cluster = self.cluster;
                        let t = self.tasks.get_mut(&b.task.0).unwrap();
                        let (tok, exp, mut ms) = t.lease.unwrap();
                        if let Some(new) = b.lease_ms {
                            ms = new;
                        }
                        let exp = exp.max(cluster + ms);
                        t.lease = Some((tok, exp, ms));
                        Ok((exp, t.cancel))
                    })
                    .collect(),
            ),
            Command::Complete { task, token, .. } => self.complete(*task, *token),
            // The claim only when the completion held: a refusal takes nothing.
            Command::CompleteAndClaim {
                task, token, next, ..
            } => match self.complete(*task, *token) {
                R::Completed(duplicate) => R::CompletedAndClaimed(duplicate, self.claim(next)),
                refused => refused,
            },
            Command::Fail {
                task,
                token,
                retryable,
                retry_after_ms,
                ..
            } => match self.check(task.0, *token) {
                Ok(()) => {
                    R::State(self.attempt_failed(task.0, *retryable, retry_after_ms.unwrap_or(0)))
                }
                Err(e) => R::Refused(e),
            },
            Command::Release {
                task,
                token,
                delay_ms,
            } => match self.check(task.0, *token) {
                Ok(()) => {
                    if self.tasks[&task.0].cancel {
                        self.finish(task.0, TaskState::Cancelled);
                    } else {
                        self.tasks.get_mut(&task.0).unwrap().attempt -= 1;
                        self.make_ready(task.0, *delay_ms);
                    }
                    R::State(self.tasks[&task.0].state)
                }
                Err(e) => R::Refused(e),
            },
            Command::Cancel { task } => {
                if !self.tasks.contains_key(&task.0) {
                    return R::Refused("not_found");
                }
                self.expire_if_due(task.0);
                let state = self.tasks[&task.0].state;
                match state {
                    s if s.is_finished() => R::Refused("task_finished"),
                    TaskState::Running => {
                        self.tasks.get_mut(&task.0).unwrap().cancel = true;
                        R::State(TaskState::Running)
                    }
                    _ => {
                        self.finish(task.0, TaskState::Cancelled);
                        R::State(TaskState::Cancelled)
                    }
                }
            }
            Command::Requeue { task } => {
                let Some(t) = self.tasks.get(&task.0) else {
                    return R::Refused("not_found");
                };
                if !matches!(t.state, TaskState::Failed | TaskState::Expired) {
                    return R::Refused("not_requeueable");
                }
                let (queue, key) = (t.queue.clone(), t.coalesce.clone());
                let taken = key.is_some()
                    && self
                        .tasks
                        .values()
                        .any(|o| !o.state.is_finished() && o.queue == queue && o.coalesce == key);
                let t = self.tasks.get_mut(&task.0).unwrap();
                if taken {
                    t.coalesce = None;
                }
                t.state = TaskState::Queued;
                t.attempt = 0;
                t.cancel = false;
                t.finished_at = None;
                t.seq = self.next_seq;
                self.next_seq += 1;
                R::Done
            }
            Command::Pause { queue } => {
                self.paused.insert(queue.clone());
                R::Done
            }
            Command::Resume { queue } => {
                self.paused.remove(queue);
                R::Done
            }
            // The model keeps no history, the one thing versions 2 and 3 change.
            Command::Broadcast { .. } | Command::RaiseBehaviour { .. } => R::Done,
            Command::Configure {
                retention_ms,
                tasks_max,
            } => {
                self.retention_ms = *retention_ms;
                self.tasks_max = *tasks_max;
                R::Done
            }
            Command::Tick => {
                let mut due: Vec<(u64, u64)> = self
                    .tasks
                    .iter()
                    .filter_map(|(id, t)| t.lease.map(|(_, exp, _)| (exp, *id)))
                    .collect();
                due.sort();
                for (exp, id) in due {
                    if exp <= self.cluster {
                        self.attempt_failed(id, true, 0);
                    }
                }
                // Promotion: tasks due by wall time first, then those due by cluster
                // time, each in (time, id) order.
                let mut by_wall: Vec<(u64, u64)> = Vec::new();
                let mut by_cluster: Vec<(u64, u64)> = Vec::new();
                for (id, t) in &self.tasks {
                    match t.run_at {
                        Some(RunAt::Wall(at)) if at <= self.wall => by_wall.push((at, *id)),
                        Some(RunAt::Cluster(at)) if at <= self.cluster => {
                            by_cluster.push((at, *id))
                        }
                        _ => {}
                    }
                }
                by_wall.sort();
                by_cluster.sort();
                for (_, id) in by_wall.into_iter().chain(by_cluster) {
                    self.wait_or_ready(id, None);
                }
                let (cluster, retention) = (self.cluster, self.retention_ms);
                self.tasks
                    .retain(|_, t| t.finished_at.is_none_or(|f| f + retention > cluster));
                R::Done
            }
        }
    }

    fn enqueue(&mut self, n: &NewTask) -> Result<(u64, bool, bool), &'static str> {
        if n.queue.contains(' ') {
            return Err("invalid_request");
        }
        if let Some(k) = &n.idempotency_key {
            if let Some((id, t)) = self
                .tasks
                .iter()
                .find(|(_, t)| t.idem.as_ref() == Some(k) || t.joined_keys.contains(k))
            {
                return Ok((*id, false, t.idem.as_ref() != Some(k)));
            }
        }
        if let Some(k) = &n.coalesce_key {
            let open = self.tasks.iter().find(|(_, t)| {
                !t.state.is_finished() && t.queue == n.queue && t.coalesce.as_ref() == Some(k)
            });
            if let Some((id, _)) = open {
                let id = *id;
                if let Some(key) = &n.idempotency_key {
                    self.tasks
                        .get_mut(&id)
                        .unwrap()
                        .joined_keys
                        .push(key.clone());
                }
                return Ok((id, false, true));
            }
        }
        if self.tasks.len() as u64 >= self.tasks_max {
            return Err("queue_full");
        }
        let id = self.next_id;
        self.next_id += 1;
        let run_at = match (n.run_at_wall_ms, n.delay_ms) {
            (Some(at), _) => (at > self.wall).then_some(RunAt::Wall(at)),
            (None, Some(delay)) => (delay > 0).then_some(RunAt::Cluster(self.cluster + delay)),
            (None, None) => None,
        };
        self.tasks.insert(
            id,
            MTask {
                queue: n.queue.clone(),
                kind: n.kind.clone(),
                priority: n.priority,
                state: TaskState::Queued,
                attempt: 0,
                max_attempts: n.max_attempts.unwrap(),
                lease: None,
                last_token: None,
                seq: 0,
                run_at: None,
                idem: n.idempotency_key.clone(),
                joined_keys: Vec::new(),
                coalesce: n.coalesce_key.clone(),
                cancel: false,
                finished_at: None,
            },
        );
        self.wait_or_ready(id, run_at);
        Ok((id, true, false))
    }
}

fn run(log: &[GenEntry]) {
    let mut sm = StateMachine::new(Config {
        retention_ms: RETENTION_MS,
        ..Config::default()
    });
    let mut model = Model::new();
    let mut true_wall = 1_000;
    for (i, entry) in log.iter().enumerate() {
        let index = i as u64 + 1;
        model.index = index;
        model.claims_in_entry = 0;
        true_wall += entry.advance_ms;
        let stamped_wall = entry.wall_ms(true_wall);
        model.wall = model.wall.max(stamped_wall);
        model.cluster += entry.advance_ms;
        let commands: Vec<Command> = entry
            .commands
            .iter()
            .map(|g| gen::resolve(g, &sm))
            .collect();
        let outcome = sm.apply(
            index,
            &Entry {
                wall_ms: stamped_wall,
                cluster_ms: model.cluster,
                commands: commands.clone(),
            },
        );
        sm.check_invariants();
        for (command, result) in commands.iter().zip(&outcome.results) {
            let before: BTreeMap<u64, TaskState> =
                model.tasks.iter().map(|(id, t)| (*id, t.state)).collect();
            let expected = model.apply(command);
            assert_eq!(reduce(result), expected, "entry {index}: {command:?}");
            if let R::Claimed(claimed) = &expected {
                for (id, _) in claimed {
                    assert!(
                        before.get(id).is_none_or(|s| !s.is_finished()),
                        "finished task {id} claimed again"
                    );
                }
            }
        }
        let ids: Vec<u64> = model.tasks.keys().copied().collect();
        assert_eq!(ids.len(), sm.task_count(), "entry {index}: task count");
        for (id, t) in &model.tasks {
            let real = sm
                .task(TaskId(*id))
                .unwrap_or_else(|| panic!("entry {index}: task {id} missing"));
            assert_eq!(
                (real.state, real.attempt, real.rare.run_at),
                (t.state, t.attempt, t.run_at),
                "entry {index}: task {id}"
            );
        }
    }
}

proptest! {
    #![proptest_config(gen::seeded(3_000, "model"))]
    #[test]
    fn state_machine_agrees_with_the_model(log in gen::gen_log(false, 40)) {
        run(&log);
    }
}
