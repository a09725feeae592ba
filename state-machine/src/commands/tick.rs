//! `tick`: the leader's periodic housekeeping, proposed when `next_due` says something is
//! due. Followers never expire anything on their own: they apply the leader's tick.
//!
//! In order: expired leases, fired timeouts, promoted scheduled tasks (those waiting for
//! an absolute `run_at` by wall time, then those waiting out a relative delay by cluster
//! time), dropped finished tasks. Each step handles at most `TICK_ITEMS_MAX` items so one
//! entry stays small; the leader proposes another tick while work remains.

use crate::lifecycle::Due;
use crate::limits::TICK_ITEMS_MAX;
use crate::machine::StateMachine;
use crate::outcome::{Reply, TickReport};

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
            self.promote(id);
            report.promoted += 1;
        }
        for _ in 0..TICK_ITEMS_MAX {
            let Some(&(at, id)) = self.delayed.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.promote(id);
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
