//! A lease's local deadline, as plain functions of time.
//!
//! The worker counts each lease from when it *sent* the request that granted or renewed
//! it (the claim, a heartbeat); the cluster counts from when it applied that request,
//! which is later. So the local deadline passes first, and a handler is stopped before
//! the cluster may hand its task to another attempt (the clocks run at the same rate; the
//! cluster's time never runs faster than real time).

use std::time::Duration;

use tokio::time::Instant;

/// A claimed task whose local lease has less than `lease / STALE_CLAIM_DIVISOR` left when
/// the answer arrives (a claim slowed by retries) is released unstarted: its handler
/// would likely be cancelled before the first heartbeat renews it.
pub const STALE_CLAIM_DIVISOR: u32 = 6;

/// The deadline of a lease granted by a request sent at `sent_at`.
pub(crate) fn granted(sent_at: Instant, lease_ms: u64) -> Instant {
    sent_at + Duration::from_millis(lease_ms)
}

/// The deadline after a renewal sent at `sent_at` succeeded: never earlier than it was
/// (an old answer arriving late must not shorten it).
pub(crate) fn renewed(current: Instant, sent_at: Instant, lease_ms: u64) -> Instant {
    current.max(granted(sent_at, lease_ms))
}

/// Whether the lease must be treated as gone: its handler is cancelled, its result dropped.
pub(crate) fn passed(now: Instant, deadline: Instant) -> bool {
    now >= deadline
}

/// Whether a just-claimed task has too little of its lease left to be worth starting.
pub(crate) fn too_late_to_start(now: Instant, deadline: Instant, lease_ms: u64) -> bool {
    let left = deadline.saturating_duration_since(now);
    left < Duration::from_millis(lease_ms) / STALE_CLAIM_DIVISOR
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_rules_by_example() {
        let t = Instant::now();
        assert_eq!(granted(t, 300), t + ms(300));
        // (current, sent_at, lease_ms, expected): a later send moves it, an earlier never.
        let renewals = [
            (t + ms(300), t + ms(100), 300, t + ms(400)),
            (t + ms(300), t, 300, t + ms(300)),
            (t + ms(500), t + ms(100), 300, t + ms(500)),
            (t + ms(300), t + ms(300), 0, t + ms(300)),
        ];
        for (current, sent_at, lease_ms, expected) in renewals {
            assert_eq!(renewed(current, sent_at, lease_ms), expected);
        }
        // (now, deadline, passed)
        for (now, deadline, expected) in [
            (t, t + ms(1), false),
            (t + ms(1), t + ms(1), true),
            (t + ms(2), t + ms(1), true),
        ] {
            assert_eq!(passed(now, deadline), expected, "{:?}", now - t);
        }
        // A 600 ms lease: a claim answered with less than 100 ms left is not started.
        // (time the answer took, too late)
        for (took, expected) in [
            (0, false),
            (499, false),
            (500, false),
            (501, true),
            (600, true),
            (900, true),
        ] {
            let deadline = granted(t, 600);
            assert_eq!(
                too_late_to_start(t + ms(took), deadline, 600),
                expected,
                "{took}"
            );
        }
    }

    /// One heartbeat: sent `gap_ms` after the previous one, applied by the cluster
    /// `apply_ms` after it was sent, answered `answer_ms` after that; `delivered`: the
    /// answer reached the worker in time (not timed out, not dropped).
    #[derive(Debug, Clone)]
    struct Beat {
        gap_ms: u64,
        apply_ms: u64,
        answer_ms: u64,
        delivered: bool,
    }

    fn beat() -> impl Strategy<Value = Beat> {
        (0u64..2_000, 0u64..2_000, 0u64..2_000, any::<bool>()).prop_map(
            |(gap_ms, apply_ms, answer_ms, delivered)| Beat {
                gap_ms,
                apply_ms,
                answer_ms,
                delivered,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// For any send times, apply delays and answer delays (answers overtaking each
        /// other included), the local deadline is never later than the cluster's: while
        /// the worker believes it holds the lease, the cluster has not given it away.
        #[test]
        fn the_local_deadline_never_passes_after_the_clusters(
            lease_ms in 100u64..5_000,
            claim_apply_ms in 0u64..2_000,
            beats in prop::collection::vec(beat(), 0..12),
        ) {
            let t0 = Instant::now();
            let at = |ms: u64| t0 + Duration::from_millis(ms);
            // The claim was sent at 0 and applied at `claim_apply_ms`.
            let mut local = granted(at(0), lease_ms);
            let mut cluster = at(claim_apply_ms + lease_ms);
            // Events by time: (time, 0 = apply / 1 = answer, beat index). An answer always
            // follows its apply; at equal times the cluster acts first.
            let mut sent_ms = 0;
            let mut sent_at = Vec::new();
            let mut events = Vec::new();
            for (i, b) in beats.iter().enumerate() {
                sent_ms += b.gap_ms;
                sent_at.push(sent_ms);
                events.push((sent_ms + b.apply_ms, 0, i));
                if b.delivered {
                    events.push((sent_ms + b.apply_ms + b.answer_ms, 1, i));
                }
            }
            events.sort();
            let mut renewed_by_cluster = vec![false; beats.len()];
            for (time_ms, kind, i) in events {
                if kind == 0 {
                    // The cluster renews only a lease still alive at apply time, counting
                    // from then; a dead lease stays dead (the answer is `lease_lost`).
                    if at(time_ms) < cluster {
                        cluster = at(time_ms + lease_ms);
                        renewed_by_cluster[i] = true;
                    }
                } else if renewed_by_cluster[i] {
                    let before = local;
                    local = renewed(local, at(sent_at[i]), lease_ms);
                    prop_assert!(local >= before, "a renewal moved the deadline back");
                }
                prop_assert!(
                    local <= cluster,
                    "at {time_ms} ms: local {:?} after the cluster's {:?}",
                    local - t0,
                    cluster - t0
                );
            }
        }
    }
}
