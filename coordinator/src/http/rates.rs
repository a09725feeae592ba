//! `GET /v1/rates`: enqueue and completion counts per queue over the last minutes, for
//! the dashboard's live chart.
//!
//! Counted from the lifecycle events this node applies (every node applies the same
//! entries), bucketed by the time the proposing leader stamped on them, so the nodes'
//! books agree up to what each has applied. Not replicated and not persisted: a node's
//! history starts when it starts (replayed entries older than the window are ignored).
//! Memory is bounded: `QUEUES_MAX` queues × `BUCKETS` buckets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use parking_lot::Mutex;
use serde::Deserialize;
use taskswarm_api as api;
use taskswarm_state_machine::{EventKind, TaskEvent};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::params::query;
use crate::raft::Node;

/// Width of one bucket.
pub const BUCKET_MS: u64 = 10_000;
/// Buckets kept: ten minutes.
pub const BUCKETS: usize = 60;
/// Queues tracked; events of further queues are not counted (the state machine's own
/// queue limit is what really bounds this).
pub const QUEUES_MAX: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Enqueued,
    Succeeded,
    Failed,
}

/// Per queue, counts in a ring of buckets indexed by `at_ms / BUCKET_MS`.
#[derive(Debug, Default)]
pub struct RateBook {
    queues: BTreeMap<String, QueueRing>,
}

#[derive(Debug, Clone)]
struct QueueRing {
    /// The bucket number each slot holds (slots of older numbers read as zero).
    numbers: [u64; BUCKETS],
    counts: [[u64; 3]; BUCKETS],
}

impl Default for QueueRing {
    fn default() -> Self {
        Self {
            numbers: [u64::MAX; BUCKETS],
            counts: [[0; 3]; BUCKETS],
        }
    }
}

impl RateBook {
    /// Counts one applied event stamped `at_ms`; `now_ms` is this node's wall clock.
    fn record(&mut self, queue: &str, what: Counted, at_ms: u64, now_ms: u64) {
        let newest = now_ms / BUCKET_MS;
        let number = at_ms / BUCKET_MS;
        // Outside the window (a replay of old entries, or a leader clock far ahead).
        if number + (BUCKETS as u64) <= newest || number > newest + 1 {
            return;
        }
        // Runs for every applied event: look up first, allocate a name only for a new queue.
        if !self.queues.contains_key(queue) {
            if self.queues.len() >= QUEUES_MAX {
                return;
            }
            self.queues.insert(queue.to_owned(), QueueRing::default());
        }
        let ring = self.queues.get_mut(queue).expect("the queue's ring exists");
        let slot = (number % BUCKETS as u64) as usize;
        if ring.numbers[slot] != number {
            ring.numbers[slot] = number;
            ring.counts[slot] = [0; 3];
        }
        ring.counts[slot][what as usize] += 1;
    }

    pub fn record_event(&mut self, event: &TaskEvent, now_ms: u64) {
        let what = match event.event.kind {
            EventKind::Enqueued => Counted::Enqueued,
            EventKind::Succeeded { .. } => Counted::Succeeded,
            EventKind::Failed { .. } => Counted::Failed,
            _ => return,
        };
        self.record(&event.queue, what, event.event.wall_ms, now_ms);
    }

    /// The last `buckets` buckets ending with the one holding `now_ms`, oldest first.
    pub fn view(&self, now_ms: u64, buckets: usize) -> api::RatesResponse {
        let buckets = buckets.clamp(1, BUCKETS);
        let newest = now_ms / BUCKET_MS;
        let numbers: Vec<u64> = (0..buckets as u64)
            .rev()
            .map(|back| newest.saturating_sub(back))
            .collect();
        let series = |ring: &QueueRing, what: Counted| -> Vec<u64> {
            numbers
                .iter()
                .map(|&n| {
                    let slot = (n % BUCKETS as u64) as usize;
                    if ring.numbers[slot] == n {
                        ring.counts[slot][what as usize]
                    } else {
                        0
                    }
                })
                .collect()
        };
        api::RatesResponse {
            bucket_ms: BUCKET_MS,
            end_at_ms: (newest + 1) * BUCKET_MS,
            queues: self
                .queues
                .iter()
                .map(|(name, ring)| api::QueueRates {
                    name: name.clone(),
                    enqueued: series(ring, Counted::Enqueued),
                    succeeded: series(ring, Counted::Succeeded),
                    failed: series(ring, Counted::Failed),
                })
                .collect(),
        }
    }
}

/// Feeds `book` from the node's applied events until the node stops.
pub fn spawn_feeder(node: &Arc<Node>, book: Arc<Mutex<RateBook>>) {
    let mut events = node.subscribe();
    let node = Arc::clone(node);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => book.lock().record_event(&event, crate::raft::clock::wall_ms()),
                    // Missed events are missing from the chart, nothing worse.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                () = node.stopped() => return,
            }
        }
    });
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RatesParams {
    /// How far back, in seconds (default and most: 600).
    window_s: Option<u64>,
}

#[utoipa::path(get, path = "/v1/rates", tag = "queues", params(RatesParams), responses((status = 200, description = "This node's counts (never redirected)", body = api::RatesResponse)))]
pub async fn rates(
    State(book): State<Arc<Mutex<RateBook>>>,
    params: Result<Query<RatesParams>, QueryRejection>,
) -> Result<Json<api::RatesResponse>, ApiError> {
    let window_s = query(params)?
        .window_s
        .unwrap_or(BUCKETS as u64 * BUCKET_MS / 1_000);
    if window_s == 0 {
        return Err(ApiError::BadRequest("window_s must be at least 1".into()));
    }
    let buckets = window_s.saturating_mul(1_000).div_ceil(BUCKET_MS);
    let buckets = usize::try_from(buckets).unwrap_or(BUCKETS);
    let now_ms = crate::raft::clock::wall_ms();
    Ok(Json(book.lock().view(now_ms, buckets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000 * BUCKET_MS + 1_234;

    #[test]
    fn counts_land_in_their_bucket_oldest_first() {
        let mut book = RateBook::default();
        book.record("q", Counted::Enqueued, NOW, NOW);
        book.record("q", Counted::Enqueued, NOW - BUCKET_MS, NOW);
        book.record("q", Counted::Succeeded, NOW - 2 * BUCKET_MS, NOW);
        book.record("q", Counted::Failed, NOW, NOW);
        let view = book.view(NOW, 3);
        assert_eq!(view.end_at_ms, (NOW / BUCKET_MS + 1) * BUCKET_MS);
        let q = &view.queues[0];
        assert_eq!(
            (q.enqueued.clone(), q.succeeded.clone(), q.failed.clone()),
            (vec![0, 1, 1], vec![1, 0, 0], vec![0, 0, 1])
        );
    }

    #[test]
    fn events_outside_the_window_are_ignored_and_old_slots_read_as_zero() {
        let mut book = RateBook::default();
        book.record(
            "q",
            Counted::Enqueued,
            NOW - BUCKETS as u64 * BUCKET_MS,
            NOW,
        );
        assert!(book.view(NOW, BUCKETS).queues.is_empty());
        book.record("q", Counted::Enqueued, NOW, NOW);
        // A full window later the slot is reused for a new number: the old count is gone.
        let later = NOW + BUCKETS as u64 * BUCKET_MS;
        let view = book.view(later, BUCKETS);
        assert_eq!(view.queues[0].enqueued.iter().sum::<u64>(), 0);
        book.record("q", Counted::Enqueued, later, later);
        assert_eq!(
            book.view(later, BUCKETS).queues[0]
                .enqueued
                .iter()
                .sum::<u64>(),
            1
        );
    }

    #[test]
    fn the_number_of_queues_is_bounded() {
        let mut book = RateBook::default();
        for i in 0..QUEUES_MAX + 10 {
            book.record(&format!("q{i}"), Counted::Enqueued, NOW, NOW);
        }
        assert_eq!(book.view(NOW, 1).queues.len(), QUEUES_MAX);
    }
}
