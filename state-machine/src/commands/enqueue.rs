//! `enqueue`: add tasks, one or a batch, each with its own result.
//!
//! An idempotency key makes a retried enqueue return the first task instead of a second
//! one; it is honoured for as long as that task is retained. A coalesce key makes an
//! enqueue join an unfinished task of the same queue and key (it shares that task's
//! result): HOLDSIMILARWORK from proletariat.

use std::sync::Arc;

use crate::behaviour::gate;
use crate::command::NewTask;
use crate::history::History;
use crate::limits;
use crate::machine::{HistoryLine, StateMachine};
use crate::outcome::{CommandResult, Enqueued, Rejection, Reply};
use crate::task::{Backoff, EventKind, Rare, RunAt, Task, TaskId, TaskRare, TaskState};
use crate::validate;

impl StateMachine {
    pub(crate) fn enqueue(&mut self, tasks: &[NewTask]) -> CommandResult {
        validate::batch("tasks", tasks.len(), limits::ENQUEUE_BATCH_MAX)?;
        if tasks.is_empty() {
            return Err(Rejection::invalid("tasks", "must not be empty"));
        }
        Ok(Reply::Enqueued(
            tasks.iter().map(|t| self.enqueue_one(t)).collect(),
        ))
    }

    fn enqueue_one(&mut self, new: &NewTask) -> Result<Enqueued, Rejection> {
        validate_new_task(new)?;
        if let Some(key) = &new.idempotency_key {
            if let Some(&id) = self.idempotency.get(key.as_str()) {
                let task = &self.tasks[&id];
                // A repeat of an enqueue that joined through a coalesce key answers as it did.
                let coalesced = task.idempotency_key.as_deref() != Some(key.as_str());
                return Ok(Enqueued {
                    id,
                    created: false,
                    coalesced,
                    state: task.state,
                });
            }
        }
        if let Some(key) = &new.coalesce_key {
            if let Some(&id) = self.coalesce.get(&(new.queue.clone(), key.clone())) {
                let remember: Option<Arc<str>> = new
                    .idempotency_key
                    .as_deref()
                    .map(Arc::from)
                    .filter(|_| self.tasks[&id].rare.joined_keys.len() < limits::JOIN_KEYS_MAX);
                if let Some(k) = &remember {
                    let previous = self.idempotency.insert(k.clone(), id);
                    assert!(previous.is_none(), "a retained key was looked up above");
                }
                self.update(id, |t| {
                    t.rare.change(|r| {
                        r.joined += 1;
                        r.joined_keys.extend(remember);
                    });
                });
                self.emit(id, EventKind::Joined);
                return Ok(Enqueued {
                    id,
                    created: false,
                    coalesced: true,
                    state: self.tasks[&id].state,
                });
            }
        }
        if self.tasks.len() as u64 >= self.config.tasks_max {
            return Err(Rejection::QueueFull {
                max: self.config.tasks_max,
            });
        }
        if !self.queue_admits(&new.queue) {
            return Err(Rejection::TooManyQueues {
                max: limits::QUEUES_MAX as u64,
            });
        }

        let id = TaskId(self.next_task_id);
        self.next_task_id += 1;
        // An absolute run_at waits for the wall clock; a delay is relative, so it waits on
        // cluster time like every other delay (a wall clock jump must not stretch it).
        let run_at = match (new.run_at_wall_ms, new.delay_ms) {
            (Some(at), _) => (at > self.wall_ms).then_some(RunAt::Wall(at)),
            (None, Some(delay)) => self.after_delay(delay),
            (None, None) => None,
        };
        let scheduled = run_at.is_some();
        let ready_seq = if scheduled { 0 } else { self.alloc_ready_seq() };
        let task = Task {
            id,
            queue: self.names.intern(&new.queue),
            kind: self.names.intern(&new.kind),
            payload: new.payload.as_str().into(),
            priority: new.priority,
            state: if scheduled {
                TaskState::Scheduled
            } else {
                TaskState::Queued
            },
            attempt: 0,
            max_attempts: new.max_attempts.unwrap_or(limits::DEFAULT_MAX_ATTEMPTS),
            lease_ms: new.lease_ms.unwrap_or(limits::DEFAULT_LEASE_MS),
            idempotency_key: new.idempotency_key.as_deref().map(Arc::from),
            created_wall_ms: self.wall_ms,
            created_cluster_ms: self.cluster_ms,
            ready_cluster_ms: self.cluster_ms,
            ready_seq,
            lease: None,
            last_token_or_zero: 0,
            history: History::default(),
            rare: Rare::new(TaskRare {
                backoff: new.backoff.unwrap_or(Backoff::DEFAULT),
                timeouts: new.timeouts,
                group: new.group.clone(),
                coalesce_key: new.coalesce_key.clone(),
                run_at,
                ..TaskRare::default()
            }),
        };
        let state = task.state;
        self.insert(task);
        let line = if gate::history_skips_enqueued(self.behaviour) {
            HistoryLine::Skip
        } else {
            HistoryLine::Append
        };
        self.emit_with(id, EventKind::Enqueued, line);
        if let Some(run_at) = run_at {
            self.emit_scheduled(id, run_at);
        }
        Ok(Enqueued {
            id,
            created: true,
            coalesced: false,
            state,
        })
    }
}

fn validate_new_task(new: &NewTask) -> Result<(), Rejection> {
    validate::name("queue", &new.queue)?;
    validate::name("kind", &new.kind)?;
    validate::payload("payload", &new.payload)?;
    validate::range(
        "priority",
        new.priority,
        limits::PRIORITY_MIN,
        limits::PRIORITY_MAX,
    )?;
    validate::optional_key("idempotency_key", new.idempotency_key.as_deref())?;
    validate::optional_key("coalesce_key", new.coalesce_key.as_deref())?;
    validate::optional_key("group", new.group.as_deref())?;
    if let Some(delay) = new.delay_ms {
        validate::duration_ms("delay_ms", delay)?;
    }
    if let Some(n) = new.max_attempts {
        validate::range("max_attempts", n, 1, limits::ATTEMPTS_MAX)?;
    }
    if let Some(ms) = new.lease_ms {
        validate::lease_ms(ms)?;
    }
    if let Some(b) = &new.backoff {
        validate::duration_ms("backoff.initial_ms", b.initial_ms)?;
        validate::duration_ms("backoff.max_ms", b.max_ms)?;
        validate::range(
            "backoff.multiplier",
            b.multiplier_permille,
            limits::BACKOFF_MULTIPLIER_PERMILLE_MIN,
            limits::BACKOFF_MULTIPLIER_PERMILLE_MAX,
        )?;
    }
    validate::timeout_ms("schedule_to_start_ms", new.timeouts.schedule_to_start_ms)?;
    validate::timeout_ms("start_to_close_ms", new.timeouts.start_to_close_ms)?;
    validate::timeout_ms("schedule_to_close_ms", new.timeouts.schedule_to_close_ms)?;
    Ok(())
}
