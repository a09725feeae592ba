//! `configure`: change the cluster-wide settings (retention, task limit) through the log.
//!
//! The retention index holds each finished task's drop time, which depends on the
//! retention: a change takes every finished task out of the indexes under the old
//! setting and puts it back under the new one.

use crate::limits;
use crate::machine::{Config, StateMachine};
use crate::outcome::{CommandResult, Reply};
use crate::validate;

impl StateMachine {
    pub(crate) fn configure(&mut self, retention_ms: u64, tasks_max: u64) -> CommandResult {
        validate::duration_ms("retention_ms", retention_ms)?;
        validate::range("tasks_max", tasks_max, 1, limits::TASKS_MAX_LIMIT)?;
        let config = Config {
            retention_ms,
            tasks_max,
        };
        if config.retention_ms != self.config.retention_ms {
            let finished: Vec<_> = self.retention.iter().map(|(_, id)| *id).collect();
            for id in &finished {
                self.unindex(*id);
            }
            self.config = config;
            for id in finished {
                self.index(id);
            }
        }
        self.config = config;
        Ok(Reply::Configured)
    }
}
