//! Transitions shared by several commands: ending an attempt, finishing a task, making it
//! ready again, checking a lease, and firing whatever is overdue on one task.

use crate::machine::{Deadline, StateMachine};
use crate::outcome::Rejection;
use crate::task::{error_code, EventKind, RunAt, TaskError, TaskId, TaskState, Token};

/// Something due on a task: its lease ran out, or one of its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    LeaseExpired,
    Timeout(Deadline),
}

impl StateMachine {
    /// Puts the task back in line now, or after `delay_ms` of cluster time. A relative
    /// delay never waits for the wall clock: the applied wall time is the largest any
    /// leader stamped, so one leader's clock jumping ahead would otherwise hold every retry
    /// back until real time caught up (and a lagging clock would freeze them).
    pub(crate) fn make_ready(&mut self, id: TaskId, delay_ms: u64) {
        let run_at = self.after_delay(delay_ms);
        let seq = if run_at.is_some() {
            0
        } else {
            self.alloc_ready_seq()
        };
        let cluster_ms = self.cluster_ms;
        self.update(id, |t| {
            t.lease = None;
            t.rare.change(|r| r.run_at = run_at);
            if run_at.is_some() {
                t.state = TaskState::Scheduled;
                t.ready_seq = 0;
            } else {
                t.state = TaskState::Queued;
                t.ready_seq = seq;
                t.ready_cluster_ms = cluster_ms;
            }
        });
        if let Some(run_at) = run_at {
            self.emit_scheduled(id, run_at);
        }
    }

    /// When a relative delay from now ends: on cluster time, never the wall clock (see
    /// `make_ready`). `None` for no delay: ready at once.
    pub(crate) fn after_delay(&self, delay_ms: u64) -> Option<RunAt> {
        (delay_ms > 0).then(|| RunAt::Cluster(self.cluster_ms.saturating_add(delay_ms)))
    }

    /// Records that a task waits for `run_at`, with the wall time it is expected at.
    pub(crate) fn emit_scheduled(&mut self, id: TaskId, run_at: RunAt) {
        let run_at_wall_ms = run_at.wall_estimate_ms(self.wall_ms, self.cluster_ms);
        self.emit(id, EventKind::Scheduled { run_at_wall_ms });
    }

    /// Makes a scheduled task ready: what a tick does once its time has come.
    pub(crate) fn promote(&mut self, id: TaskId) {
        let (seq, cluster) = (self.alloc_ready_seq(), self.cluster_ms);
        self.update(id, |t| {
            assert_eq!(t.state, TaskState::Scheduled);
            t.state = TaskState::Queued;
            t.rare.change(|r| r.run_at = None);
            t.ready_seq = seq;
            t.ready_cluster_ms = cluster;
        });
    }

    /// Ends the task for good. Frees its coalesce key (through the index) and starts its
    /// retention clock.
    pub(crate) fn finish(&mut self, id: TaskId, state: TaskState, error: Option<TaskError>) {
        assert!(state.is_finished());
        let (wall, cluster) = (self.wall_ms, self.cluster_ms);
        self.update(id, |t| {
            assert!(!t.state.is_finished(), "task {id} finished twice");
            t.state = state;
            t.lease = None;
            t.rare.change(|r| {
                r.run_at = None;
                if let Some(error) = error {
                    r.error = Some(Box::new(error));
                }
                r.finished_wall_ms = Some(wall);
                r.finished_cluster_ms = Some(cluster);
            });
        });
    }

    /// The running attempt ended badly. Retries (with backoff) while attempts remain and
    /// the failure is retryable; otherwise dead-letters the task. A pending cancel wins
    /// over both. Returns the task's new state.
    pub(crate) fn attempt_failed(
        &mut self,
        id: TaskId,
        error: TaskError,
        retryable: bool,
        retry_after_ms: Option<u64>,
    ) -> TaskState {
        let task = &self.tasks[&id];
        assert_eq!(task.state, TaskState::Running);
        let token = task.lease.as_ref().expect("running task has a lease").token;
        let (cancel, attempt, max_attempts, backoff) = (
            task.rare.cancel_requested,
            task.attempt,
            task.max_attempts,
            task.rare.backoff,
        );
        self.emit(
            id,
            EventKind::AttemptFailed {
                token,
                error: error.clone(),
            },
        );
        if cancel {
            self.finish(
                id,
                TaskState::Cancelled,
                Some(TaskError::new(
                    error_code::CANCELLED,
                    "cancelled while running",
                )),
            );
            self.emit(id, EventKind::Cancelled);
        } else if retryable && attempt < max_attempts {
            let delay = retry_after_ms.unwrap_or_else(|| backoff.delay_ms(id, attempt));
            self.update(id, |t| t.rare.change(|r| r.error = Some(Box::new(error))));
            self.make_ready(id, delay);
        } else {
            self.finish(id, TaskState::Failed, Some(error.clone()));
            self.emit(id, EventKind::Failed { error });
        }
        self.tasks[&id].state
    }

    /// Checks that `token` holds the live lease on `id`, firing the task's overdue lease
    /// or timeout first: a lease is dead at its deadline whether or not a tick ran yet.
    ///
    /// With the `canary-accept-stale-tokens` feature (a deliberately broken test build,
    /// never for release) fencing is broken: a token older than the live lease's token is
    /// accepted as if it held that lease.
    pub(crate) fn check_lease(&mut self, id: TaskId, token: Token) -> Result<(), Rejection> {
        if !self.tasks.contains_key(&id) {
            return Err(Rejection::NotFound(id));
        }
        self.fire_overdue(id);
        let task = &self.tasks[&id];
        match &task.lease {
            Some(lease) if lease.token == token => Ok(()),
            // CANARY: the fencing bug the fault suite's checker must catch. A stale holder
            // (a token issued before the live one) acts on the newer attempt's lease. The
            // commands then proceed exactly as for the holder: the lease they touch is the
            // live one, so every invariant still holds.
            #[cfg(feature = "canary-accept-stale-tokens")]
            Some(lease) if token < lease.token => Ok(()),
            _ if task.state.is_finished() && task.last_token() == Some(token) => {
                Err(Rejection::TaskFinished {
                    task: id,
                    state: task.state,
                })
            }
            _ => Err(Rejection::LeaseLost { task: id, token }),
        }
    }

    /// What is due on a task at the current cluster time, earliest first.
    pub(crate) fn overdue(&self, id: TaskId) -> Option<Due> {
        let task = &self.tasks[&id];
        let now = self.cluster_ms;
        let t = &task.rare.timeouts;
        let mut due: Vec<(u64, Due)> = Vec::new();
        if !task.state.is_finished() {
            if let Some(ms) = t.schedule_to_close_ms {
                due.push((
                    task.created_cluster_ms.saturating_add(ms),
                    Due::Timeout(Deadline::ScheduleToClose),
                ));
            }
        }
        match (task.state, &task.lease) {
            (TaskState::Queued, _) => {
                if let Some(ms) = t.schedule_to_start_ms {
                    due.push((
                        task.ready_cluster_ms.saturating_add(ms),
                        Due::Timeout(Deadline::ScheduleToStart),
                    ));
                }
            }
            (TaskState::Running, Some(lease)) => {
                due.push((lease.expires_cluster_ms, Due::LeaseExpired));
                if let Some(ms) = t.start_to_close_ms {
                    due.push((
                        lease.started_cluster_ms.saturating_add(ms),
                        Due::Timeout(Deadline::StartToClose),
                    ));
                }
            }
            _ => {}
        }
        due.into_iter()
            .filter(|(at, _)| *at <= now)
            .min_by_key(|(at, _)| *at)
            .map(|(_, d)| d)
    }

    /// Fires what is overdue on one task, if anything. Returns what fired.
    pub(crate) fn fire_overdue(&mut self, id: TaskId) -> Option<Due> {
        let due = self.overdue(id)?;
        self.fire(id, due);
        Some(due)
    }

    /// Fires one due lease expiry or timeout.
    pub(crate) fn fire(&mut self, id: TaskId, due: Due) {
        match due {
            Due::LeaseExpired => {
                self.attempt_failed(
                    id,
                    TaskError::new(error_code::LEASE_EXPIRED, "the lease expired"),
                    true,
                    None,
                );
            }
            Due::Timeout(Deadline::StartToClose) => {
                let error = TaskError::new(
                    error_code::RUN_TIMEOUT,
                    "the attempt exceeded start_to_close_ms",
                );
                self.attempt_failed(id, error, true, None);
            }
            Due::Timeout(Deadline::ScheduleToStart) => {
                self.expire(
                    id,
                    TaskError::new(
                        error_code::ASSIGN_TIMEOUT,
                        "not claimed within schedule_to_start_ms",
                    ),
                );
            }
            Due::Timeout(Deadline::ScheduleToClose) => {
                self.expire(
                    id,
                    TaskError::new(
                        error_code::DEADLINE_EXCEEDED,
                        "not finished within schedule_to_close_ms",
                    ),
                );
            }
        }
    }

    fn expire(&mut self, id: TaskId, error: TaskError) {
        self.finish(id, TaskState::Expired, Some(error.clone()));
        self.emit(id, EventKind::Expired { error });
    }
}
