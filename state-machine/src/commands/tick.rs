//! `tick`: the leader's periodic housekeeping, proposed when `next_due` says something is
//! due. Followers never expire anything on their own: they apply the leader's tick.
//!
//! In order: expired leases, fired timeouts, promoted scheduled tasks, dropped finished
//! tasks. Each step handles at most `TICK_ITEMS_MAX` items so one entry stays small; the
//! leader proposes another tick while work remains.

use crate::lifecycle::Due;
use crate::limits::TICK_ITEMS_MAX;
use crate::machine::StateMachine;
use crate::outcome::{Reply, TickReport};
use crate::task::TaskState;

impl StateMachine {
    pub(crate) fn tick(&mut self) -> Reply {
        let mut report = TickReport::default();
        let now = self.cluster_ms;

        for _ in 0..TICK_ITEMS_MAX {
            let Some(&(at, id)) = self.leases.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.fire(id, Due::LeaseExpired);
            report.leases_expired += 1;
        }
        for _ in 0..TICK_ITEMS_MAX {
            let Some(&(at, id, deadline)) = self.deadlines.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.fire(id, Due::Timeout(deadline));
            report.timeouts_fired += 1;
        }
        for _ in 0..TICK_ITEMS_MAX {
            let Some(&(at, id)) = self.scheduled.first() else {
                break;
            };
            if at > self.wall_ms {
                break;
            }
            let (seq, cluster) = (self.alloc_ready_seq(), self.cluster_ms);
            self.update(id, |t| {
                assert_eq!(t.state, TaskState::Scheduled);
                t.state = TaskState::Queued;
                t.run_at_wall_ms = 0;
                t.ready_seq = seq;
                t.ready_cluster_ms = cluster;
            });
            report.promoted += 1;
        }
        for _ in 0..TICK_ITEMS_MAX {
            let Some(&(at, id)) = self.retention.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.remove(id);
            report.dropped += 1;
        }
        Reply::Ticked(report)
    }
}
