//! One clock for every process of a run: `CLOCK_MONOTONIC`, which is system-wide, so the
//! harness and its worker processes stamp events on the same timeline and the history can
//! be merged in real-time order afterwards. It never jumps (nodes' wall clocks may be
//! skewed by the clock nemesis; this clock is the harness's and is never faked).

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds on the shared monotonic clock.
pub fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}
