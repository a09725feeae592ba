//! When a node builds a snapshot: after at least `--snapshot-every` entries, and once the
//! log written since the last snapshot is at least `--snapshot-log-percent` of that
//! snapshot's size.
//!
//! Why: a build encodes every retained task, so a fixed count of entries made its cost
//! grow with the state: with 200,000 retained tasks one build was 17 % of the cluster's
//! CPU under the batched benchmark (bench/README.md). Tying the cadence to the log's
//! growth keeps the cost proportional to the writes (as Redis rewrites its AOF once it
//! doubled): with the default 100 %, each build encodes about as many bytes as the log
//! written since the previous one (up to twice that while the state grows), and a restart
//! replays up to one snapshot's size of log. A small state is snapshotted every
//! `--snapshot-every` entries as before. The size compared is that of this node's last
//! build (an installed snapshot restarts the count but keeps that size).
//!
//! The decision is `Cadence::check`, a pure function of what the loop observes; `run`
//! only observes and triggers openraft (whose own policy is off).

use std::sync::Weak;
use std::time::{Duration, Instant};

use super::Node;

/// How often the loop looks.
pub const CHECK_INTERVAL_MS: u64 = 250;
/// A trigger that produced no new snapshot in this long is sent again, in case openraft
/// dropped it (it ignores a trigger while it builds, so a slow build is not started
/// twice; a failed build stops its core, and the node exits).
pub const RETRIGGER_MS: u64 = 10_000;
/// The largest `--snapshot-log-percent`: the log may reach 100 times the state.
pub const LOG_PERCENT_MAX: u64 = 10_000;

/// The rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Entries applied since the last snapshot before another is considered.
    pub entries_min: u64,
    /// Log bytes since the last snapshot, as a percentage of its size; 0: every
    /// `entries_min` entries, whatever the sizes.
    pub log_percent: u64,
}

/// What the loop saw at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub applied_index: u64,
    /// 0 while there is none.
    pub snapshot_index: u64,
    /// Bytes of the last snapshot this process built, or before its first build of the
    /// one it restored at start; 0 if neither (it snapshots after `entries_min`).
    pub snapshot_bytes: u64,
    /// Log bytes appended since this process started.
    pub log_bytes: u64,
    pub now_ms: u64,
}

/// The rule with what it remembers between looks.
#[derive(Debug, Clone)]
pub struct Cadence {
    rule: Rule,
    /// The snapshot the log bytes are counted from, and the log's size then.
    since_index: u64,
    log_bytes_then: u64,
    triggered_at_ms: Option<u64>,
    /// The log's size when the pending build was triggered: the snapshot's index is
    /// fixed then, so what is written while it encodes counts toward the next one.
    log_bytes_at_trigger: Option<u64>,
}

impl Cadence {
    pub fn new(rule: Rule, first: Seen) -> Self {
        Self {
            rule,
            since_index: first.snapshot_index,
            log_bytes_then: first.log_bytes,
            triggered_at_ms: None,
            log_bytes_at_trigger: None,
        }
    }

    /// Whether to trigger a build now.
    pub fn check(&mut self, seen: Seen) -> bool {
        if seen.snapshot_index != self.since_index {
            // A new snapshot: built here, or installed from the leader.
            self.since_index = seen.snapshot_index;
            self.log_bytes_then = self
                .log_bytes_at_trigger
                .take()
                .map_or(seen.log_bytes, |at| at.min(seen.log_bytes));
            self.triggered_at_ms = None;
        }
        if let Some(at) = self.triggered_at_ms {
            if seen.now_ms.saturating_sub(at) < RETRIGGER_MS {
                return false;
            }
        }
        let entries = seen.applied_index.saturating_sub(seen.snapshot_index);
        if entries < self.rule.entries_min.max(1) {
            return false;
        }
        let log_bytes = seen.log_bytes.saturating_sub(self.log_bytes_then);
        let due = self.rule.log_percent == 0
            || seen.snapshot_bytes == 0
            || u128::from(log_bytes) * 100
                >= u128::from(seen.snapshot_bytes) * u128::from(self.rule.log_percent);
        if due {
            self.triggered_at_ms = Some(seen.now_ms);
            self.log_bytes_at_trigger = Some(seen.log_bytes);
        }
        due
    }
}

/// Looks every `CHECK_INTERVAL_MS` until the node is gone, and triggers a build when
/// the rule says so.
pub async fn run(node: Weak<Node>, rule: Rule) {
    let started = Instant::now();
    let look = |node: &Node| {
        let status = node.status();
        Seen {
            applied_index: status.applied_index,
            snapshot_index: status.snapshot_index,
            snapshot_bytes: {
                let report = node.snapshot_report();
                if report.builds > 0 {
                    report.last.bytes
                } else {
                    report.restored_bytes
                }
            },
            log_bytes: node.log_appended_bytes(),
            now_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    };
    let Some(first) = node.upgrade().map(|n| look(&n)) else {
        return;
    };
    let mut cadence = Cadence::new(rule, first);
    loop {
        tokio::time::sleep(Duration::from_millis(CHECK_INTERVAL_MS)).await;
        let Some(node) = node.upgrade() else {
            return;
        };
        let seen = look(&node);
        if cadence.check(seen) {
            tracing::debug!(?seen, "snapshot due");
            node.trigger_snapshot().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(applied: u64, snapshot: u64, snapshot_bytes: u64, log_bytes: u64, now_ms: u64) -> Seen {
        Seen {
            applied_index: applied,
            snapshot_index: snapshot,
            snapshot_bytes,
            log_bytes,
            now_ms,
        }
    }

    const RULE: Rule = Rule {
        entries_min: 100,
        log_percent: 100,
    };

    #[test]
    fn the_first_snapshot_comes_after_the_minimum_entries() {
        let mut c = Cadence::new(RULE, seen(0, 0, 0, 0, 0));
        assert!(!c.check(seen(99, 0, 0, 50_000, 10)));
        assert!(c.check(seen(100, 0, 0, 50_000, 20)));
    }

    #[test]
    fn later_ones_wait_for_the_log_to_reach_the_last_snapshots_size() {
        let mut c = Cadence::new(RULE, seen(0, 0, 0, 0, 0));
        // A snapshot of 1 MB at index 100, when the log had 40 kB.
        assert!(!c.check(seen(100, 100, 1_000_000, 40_000, 10)));
        // Enough entries, not enough log.
        assert!(!c.check(seen(5_000, 100, 1_000_000, 1_039_999, 20)));
        // The log since then reached the snapshot's size.
        assert!(c.check(seen(5_001, 100, 1_000_000, 1_040_000, 30)));
        // Half the share: half the log.
        let mut half = Cadence::new(
            Rule {
                log_percent: 50,
                ..RULE
            },
            seen(0, 100, 1_000_000, 0, 0),
        );
        assert!(!half.check(seen(300, 100, 1_000_000, 499_999, 10)));
        assert!(half.check(seen(300, 100, 1_000_000, 500_000, 20)));
    }

    #[test]
    fn but_never_before_the_minimum_entries() {
        let mut c = Cadence::new(RULE, seen(0, 100, 10, 0, 0));
        assert!(!c.check(seen(199, 100, 10, 1_000_000, 10)));
        assert!(c.check(seen(200, 100, 10, 1_000_000, 20)));
    }

    #[test]
    fn percent_zero_is_a_plain_count_of_entries() {
        let rule = Rule {
            log_percent: 0,
            ..RULE
        };
        let mut c = Cadence::new(rule, seen(0, 100, 1_000_000_000, 0, 0));
        assert!(c.check(seen(200, 100, 1_000_000_000, 10, 10)));
    }

    #[test]
    fn one_trigger_per_snapshot_until_it_lands_or_the_retry_time_passes() {
        let mut c = Cadence::new(RULE, seen(0, 0, 0, 0, 0));
        assert!(c.check(seen(100, 0, 0, 0, 1_000)));
        // Building: not triggered again.
        assert!(!c.check(seen(150, 0, 0, 0, 1_000 + RETRIGGER_MS - 1)));
        // No snapshot came: once more.
        assert!(c.check(seen(160, 0, 0, 0, 1_000 + RETRIGGER_MS)));
        // It landed at 160: counting starts again from there.
        assert!(!c.check(seen(170, 160, 5_000, 0, 1_000 + RETRIGGER_MS + 10)));
        assert!(!c.check(seen(260, 160, 5_000, 4_999, 1_000 + RETRIGGER_MS + 20)));
        assert!(c.check(seen(260, 160, 5_000, 5_000, 1_000 + RETRIGGER_MS + 30)));
    }

    #[test]
    fn log_written_while_a_build_runs_counts_toward_the_next() {
        let mut c = Cadence::new(RULE, seen(0, 0, 0, 0, 0));
        assert!(c.check(seen(100, 0, 0, 10_000, 10)));
        // The build lands seconds later; 30 kB were written meanwhile.
        assert!(!c.check(seen(200, 100, 50_000, 40_000, 5_000)));
        // 50 kB since the trigger, though only 20 kB since the build landed.
        assert!(c.check(seen(300, 100, 50_000, 60_000, 5_010)));
    }

    #[test]
    fn with_no_size_to_compare_it_builds_after_the_minimum_then_follows_the_rule() {
        // Started at a snapshot of unknown size (none built or restored here) with 50,000
        // entries to replay.
        let mut c = Cadence::new(RULE, seen(1_000, 1_000, 0, 0, 0));
        assert!(c.check(seen(51_000, 1_000, 0, 9_000_000, 250)));
        assert!(!c.check(seen(51_500, 51_000, 20_000_000, 9_500_000, 9_000)));
        assert!(c.check(seen(60_000, 51_000, 20_000_000, 29_000_000, 20_000)));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let rule = Rule {
            entries_min: u64::MAX,
            log_percent: LOG_PERCENT_MAX,
        };
        let mut c = Cadence::new(rule, seen(0, 0, u64::MAX, 0, 0));
        assert!(!c.check(seen(u64::MAX - 1, 0, u64::MAX, u64::MAX, u64::MAX)));
        assert!(c.check(seen(u64::MAX, 0, 1, u64::MAX, u64::MAX)));
    }

    #[test]
    fn an_installed_snapshot_restarts_the_count() {
        let mut c = Cadence::new(RULE, seen(0, 100, 1_000, 0, 0));
        assert!(!c.check(seen(150, 100, 1_000, 900, 10)));
        // The leader installed a snapshot at 1,000 while the log grew by 5,000 bytes.
        assert!(!c.check(seen(1_050, 1_000, 1_000, 5_000, 20)));
        assert!(c.check(seen(1_100, 1_000, 1_000, 6_000, 30)));
    }
}
