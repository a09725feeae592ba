//! `heartbeat`: renew leases, one or a batch (one per worker is the norm), record
//! progress, and tell the worker about pending cancels.

use crate::behaviour::gate;
use crate::command::LeaseBeat;
use crate::limits;
use crate::machine::StateMachine;
use crate::outcome::{CommandResult, HeartbeatAck, Rejection, Reply};
use crate::task::EventKind;
use crate::validate;

impl StateMachine {
    pub(crate) fn heartbeat(&mut self, worker: &str, leases: &[LeaseBeat]) -> CommandResult {
        validate::key("worker", worker)?;
        validate::batch("leases", leases.len(), limits::HEARTBEAT_BATCH_MAX)?;
        Ok(Reply::Heartbeats(
            leases.iter().map(|beat| self.beat(beat)).collect(),
        ))
    }

    fn beat(&mut self, beat: &LeaseBeat) -> Result<HeartbeatAck, Rejection> {
        if let Some(p) = &beat.progress {
            validate::payload("progress", p)?;
        }
        if let Some(ms) = beat.lease_ms {
            validate::lease_ms(ms)?;
        }
        self.check_lease(beat.task, beat.token)?;
        let unchanged =
            beat.progress.is_some() && self.tasks[&beat.task].rare.progress == beat.progress;
        let now = self.cluster_ms;
        let ack = self.update(beat.task, |t| {
            let lease = t.lease.as_mut().expect("a held lease");
            if let Some(ms) = beat.lease_ms {
                lease.lease_ms = ms;
            }
            // A renewal never shortens the lease the worker already counts on.
            lease.expires_cluster_ms = lease
                .expires_cluster_ms
                .max(now.saturating_add(lease.lease_ms));
            if let Some(p) = &beat.progress {
                t.rare.change(|r| r.progress = Some(p.clone()));
            }
            HeartbeatAck {
                task: t.id,
                expires_cluster_ms: lease.expires_cluster_ms,
                lease_ms: lease.lease_ms,
                cancel_requested: t.rare.cancel_requested,
            }
        });
        let silent = unchanged && gate::unchanged_progress_is_silent(self.behaviour);
        if let Some(progress) = beat.progress.as_ref().filter(|_| !silent) {
            self.emit(
                beat.task,
                EventKind::Progress {
                    token: beat.token,
                    progress: progress.clone(),
                },
            );
        }
        Ok(ack)
    }
}
