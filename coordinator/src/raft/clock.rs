//! Cluster time: the clock leases and timeouts run on.
//!
//! A leader continues cluster time from the last applied value and advances it with its
//! own monotonic clock; while there is no leader, cluster time stops. So a leader change
//! or a wall-clock jump can only make a lease last longer, never expire it early. The
//! state machine also never lets time go back (it keeps the maximum it has seen).

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct ClusterClock {
    /// (term the base was taken in, cluster ms at the base, monotonic instant of the base)
    base: Mutex<Option<(u64, u64, Instant)>>,
}

impl ClusterClock {
    /// Cluster time for an entry proposed now by the leader of `term`. `applied_ms` is the
    /// state machine's cluster time: the floor, and the base when `term` is new.
    pub fn now(&self, term: u64, applied_ms: u64) -> u64 {
        let mut base = self.base.lock().expect("clock lock");
        let (_, base_ms, at) = *base.get_or_insert((term, applied_ms, Instant::now()));
        if base.is_some_and(|(t, _, _)| t != term) {
            *base = Some((term, applied_ms, Instant::now()));
            return applied_ms;
        }
        let elapsed = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        base_ms.saturating_add(elapsed).max(applied_ms)
    }
}

/// Wall-clock milliseconds since the Unix epoch: scheduling and display only.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_term_continues_from_the_applied_time_and_never_goes_back() {
        let clock = ClusterClock::default();
        assert_eq!(clock.now(1, 5_000), 5_000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = clock.now(1, 5_000);
        assert!(later >= 5_020, "advances with the monotonic clock: {later}");
        // A new leader term restarts from what was applied, even if lower than the old
        // leader's clock reached: time stops, it does not jump.
        assert_eq!(clock.now(2, 5_010), 5_010);
        // The floor is the applied time.
        assert_eq!(clock.now(2, 9_000), 9_000);
    }
}
