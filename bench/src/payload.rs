//! The task body every driver sends: 256 ASCII bytes whose first digits are the time the
//! enqueue was sent. Carrying the send time inside the task lets a worker measure the
//! end-to-end latency (enqueue sent → completion acknowledged) of the very task it
//! completed, for every system alike, without a shared map between producers and workers.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Size of every task body, in bytes.
pub const PAYLOAD_BYTES: usize = 256;
/// Digits of the send time (nanoseconds since the process's epoch), zero-padded.
const STAMP_DIGITS: usize = 20;
/// Filler after the stamp.
const PAD: u8 = b'x';

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The process's reference instant; stamps count from it.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// A body stamped with `sent`.
pub fn make(sent: Instant) -> Vec<u8> {
    let ns = sent.saturating_duration_since(epoch()).as_nanos();
    let mut body = format!("{ns:0STAMP_DIGITS$}").into_bytes();
    body.resize(PAYLOAD_BYTES, PAD);
    body
}

/// The stamp's digits: they sort like the send times (used as a FIFO key).
pub fn stamp(body: &[u8]) -> &str {
    body.get(..STAMP_DIGITS)
        .and_then(|d| std::str::from_utf8(d).ok())
        .unwrap_or("")
}

/// The send time stamped into `body`, if it is one of ours.
pub fn sent_at(body: &[u8]) -> Option<Instant> {
    let digits = std::str::from_utf8(body.get(..STAMP_DIGITS)?).ok()?;
    let ns: u64 = digits.parse().ok()?;
    Some(epoch() + Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_size_is_fixed() {
        let sent = Instant::now();
        let body = make(sent);
        assert_eq!(body.len(), PAYLOAD_BYTES);
        let back = sent_at(&body).expect("stamped");
        let diff = if back > sent {
            back - sent
        } else {
            sent - back
        };
        assert!(diff < Duration::from_micros(1));
    }

    #[test]
    fn foreign_bodies_have_no_stamp() {
        assert!(sent_at(b"hello").is_none());
        assert!(sent_at(&[b'x'; PAYLOAD_BYTES]).is_none());
    }
}
