//! The newest log entries, kept in memory next to RocksDB.
//!
//! Why: on the leader, openraft's replication task reads every entry back right after the
//! core appended it, to send it to the followers. Served from RocksDB, each read is a hop
//! to the blocking pool and a decode, on the path of every write. The tail answers those
//! reads from memory.
//!
//! Invariant: the tail is a contiguous suffix of the durable log (entries enter only after
//! their synced write returned; truncation and purging apply to both). Any read it cannot
//! answer whole goes to RocksDB.

use std::collections::VecDeque;

use crate::types::RaftEntry;

/// Most entries kept (the replication lag a tail serves).
pub const TAIL_ENTRIES_MAX: usize = 1_024;
/// Most encoded bytes kept.
pub const TAIL_BYTES_MAX: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct LogTail {
    /// Entries with their encoded sizes, by increasing index, no holes.
    entries: VecDeque<(RaftEntry, usize)>,
    bytes: usize,
    entries_max: usize,
    bytes_max: usize,
}

impl LogTail {
    pub fn new(entries_max: usize, bytes_max: usize) -> Self {
        assert!(entries_max > 0 && bytes_max > 0);
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            entries_max,
            bytes_max,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    /// Entries written durably at the end of the log, in order, with their sizes.
    pub fn appended(&mut self, entries: impl IntoIterator<Item = (RaftEntry, usize)>) {
        for (entry, size) in entries {
            let index = entry.log_id.index;
            if self.last_index().is_some_and(|last| index != last + 1) {
                // Not a continuation (openraft truncates before it overwrites): start over
                // rather than risk a tail that is not the log's suffix.
                self.clear();
            }
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        while self.entries.len() > self.entries_max || self.bytes > self.bytes_max {
            let Some((_, size)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= size;
        }
    }

    /// The log lost every entry from `index` on.
    pub fn truncated(&mut self, index: u64) {
        while self.last_index().is_some_and(|last| last >= index) {
            let (_, size) = self.entries.pop_back().expect("non-empty");
            self.bytes -= size;
        }
    }

    /// The log lost every entry up to `index`, inclusive.
    pub fn purged(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            let (_, size) = self.entries.pop_front().expect("non-empty");
            self.bytes -= size;
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Entries `start <= index < end` (`end == None`: to the last entry), if the tail
    /// holds all of them; `None` sends the read to RocksDB.
    pub fn get(&self, start: u64, end: Option<u64>) -> Option<Vec<RaftEntry>> {
        let (first, last) = (self.first_index()?, self.last_index()?);
        let end = end.unwrap_or(last + 1).min(last + 1);
        if start < first {
            return None;
        }
        if start >= end {
            return Some(Vec::new());
        }
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        Some(
            self.entries
                .range(from..to)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    fn entry(index: u64) -> (RaftEntry, usize) {
        (
            RaftEntry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Blank,
            },
            10,
        )
    }

    fn indexes(got: Option<Vec<RaftEntry>>) -> Option<Vec<u64>> {
        got.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn answers_only_reads_it_holds_whole() {
        let mut t = LogTail::new(100, 1_000);
        assert_eq!(indexes(t.get(1, None)), None, "empty: ask RocksDB");
        t.appended((5..=9).map(entry));
        assert_eq!(indexes(t.get(5, None)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(indexes(t.get(7, Some(9))), Some(vec![7, 8]));
        assert_eq!(
            indexes(t.get(8, Some(100))),
            Some(vec![8, 9]),
            "past the end: what exists"
        );
        assert_eq!(indexes(t.get(10, None)), Some(vec![]));
        assert_eq!(indexes(t.get(4, Some(6))), None, "below the tail");
    }

    #[test]
    fn stays_within_its_limits_by_dropping_the_oldest() {
        let mut t = LogTail::new(3, 1_000);
        t.appended((1..=5).map(entry));
        assert_eq!(indexes(t.get(3, None)), Some(vec![3, 4, 5]));
        assert_eq!(indexes(t.get(2, None)), None);
        let mut t = LogTail::new(100, 25);
        t.appended((1..=5).map(entry));
        assert_eq!(indexes(t.get(4, None)), Some(vec![4, 5]));
        assert_eq!(t.bytes, 20);
    }

    #[test]
    fn follows_truncation_purge_and_a_restart_of_the_run() {
        let mut t = LogTail::new(100, 1_000);
        t.appended((1..=6).map(entry));
        t.truncated(5);
        assert_eq!(indexes(t.get(1, None)), Some(vec![1, 2, 3, 4]));
        t.appended((5..=6).map(entry));
        t.purged(2);
        assert_eq!(indexes(t.get(3, None)), Some(vec![3, 4, 5, 6]));
        assert_eq!(indexes(t.get(2, None)), None);
        // A jump (never done by openraft) empties the tail rather than leave a hole.
        t.appended([entry(9)]);
        assert_eq!(indexes(t.get(9, None)), Some(vec![9]));
        assert_eq!(indexes(t.get(6, None)), None);
        t.truncated(0);
        assert_eq!(indexes(t.get(0, None)), None);
        assert_eq!(t.bytes, 0);
    }
}
