//! How much of this node's log is on disk, and the flusher that syncs a leader's own
//! appends off openraft's critical path.
//!
//! Why: openraft 0.9 awaits the leader's `append` (its fsync) inside the core loop, and
//! only then sends the entries to the followers, so every write paid two fsyncs one after
//! the other. A leader's own entries are therefore written to the WAL without a sync and
//! reported to openraft at once; the flusher thread syncs them while they travel. This is
//! the Raft thesis's §10.2.1 (the leader writes its log in parallel with replication), kept
//! safe by two rules that make nothing depend on the leader's copy before it is on disk:
//!
//! 1. **A node applies no entry its own log holds unsynced** (`state_store.rs` waits on
//!    [`Durable::watch`]). The leader answers clients from what it applies, so no client
//!    hears of an entry that is not on the leader's disk and on a quorum's.
//! 2. **A leader tells followers a commit point no higher than its own durable log**
//!    ([`clamp_commit`], applied to every AppendEntries in `raft/network.rs`). openraft
//!    counts the leader's unsynced copy toward the quorum; until that copy is synced the
//!    entry may still vanish with the leader (a power cut), so no follower may apply it.
//!
//! With both, an entry is acted on only once it is on disk on the leader and on enough
//! followers that, together, they are a quorum: the same promise as before, with the
//! leader's fsync overlapping the followers' instead of preceding it.
//!
//! Two more things keep a lost unsynced tail harmless:
//! 3. **A node that led a term does not resume it after a restart** (`LogStore::run_as`
//!    saves its vote back as a plain vote): after a power cut it may have lost entries
//!    that followers hold, and resuming would hand the same log ids to new entries.
//! 4. **Membership changes run one at a time** (`raft/node.rs`), each returning once its
//!    entries are applied, so openraft never starts a change on top of a configuration
//!    that is only in the leader's page cache.
//!
//! Followers, votes, truncations and purges keep synced writes (a follower's ack and a vote
//! are promises to another node). A synced write also syncs everything written before it,
//! so it moves the durable mark too.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::types::{LogId, NodeId, Vote};

/// Whether `append` may write `first`..`last` without waiting for the fsync: only a leader's
/// own entries of its current, granted term. Anything else (a follower's entries, the first
/// membership entry of a new cluster, a candidate) must be on disk before openraft hears
/// it is appended, because a follower's ack is a promise the leader counts.
pub fn is_own_leader_append(self_id: Option<NodeId>, vote: Option<&Vote>, first: &LogId) -> bool {
    match (self_id, vote) {
        (Some(id), Some(vote)) => leads(id, vote) && first.leader_id == *vote.leader_id(),
        _ => false,
    }
}

/// The vote to save instead of `saved` when node `id` starts: a vote that says `id` leads
/// its term becomes a plain vote for `id` in that term (see `LogStore::run_as` for why).
pub fn no_longer_leading(id: NodeId, saved: &Vote) -> Option<Vote> {
    leads(id, saved).then(|| Vote::new(saved.leader_id().term, id))
}

/// Whether `vote` says node `id` leads its term (granted by a quorum, for `id`).
fn leads(id: NodeId, vote: &Vote) -> bool {
    vote.is_committed() && vote.leader_id().voted_for() == Some(id)
}

/// The commit point a leader may send: openraft's, unless its own durable log is shorter,
/// then the last durable entry (an entry of the committed prefix, since it is below the
/// commit point in the leader's log). Lower is always safe: a follower only ever raises its
/// commit point, and learns the rest with the next AppendEntries.
pub fn clamp_commit(commit: Option<LogId>, durable: Option<LogId>) -> Option<LogId> {
    match (commit, durable) {
        (Some(c), Some(d)) if d.index < c.index => Some(d),
        (Some(_), None) => None,
        (c, _) => c,
    }
}

/// Whether `mark` covers the entry at `index`.
pub fn covers(mark: Option<LogId>, index: u64) -> bool {
    mark.is_some_and(|m| m.index >= index)
}

/// What of the log is written and what is on disk, as published to apply and the network.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogMarks {
    /// The last entry written to the WAL (synced or not).
    pub written: Option<LogId>,
    /// The last entry known to be on disk, with everything before it.
    pub durable: Option<LogId>,
}

impl LogMarks {
    /// Whether the entry at `index` may be applied: not one this log holds unsynced. (An
    /// entry this log never wrote is not held back: openraft's storage suite applies
    /// entries that were never appended.)
    pub fn may_apply(&self, index: u64) -> bool {
        !covers(self.written, index) || covers(self.durable, index)
    }
}

/// The marks, behind one lock.
#[derive(Debug, Default)]
struct Marks {
    log: LogMarks,
    /// Raised by every truncation: a sync that began before one must not raise `durable`
    /// to an entry that is gone.
    epoch: u64,
    /// The log store was dropped: the flusher ends.
    closed: bool,
}

/// Shared by the log store (which writes), the flusher thread (which syncs) and the readers
/// of [`Durable::watch`] (apply and the network).
#[derive(Debug)]
pub struct Durable {
    marks: Mutex<Marks>,
    /// Wakes the flusher when `written` passes `durable`.
    pending: Condvar,
    tx: watch::Sender<LogMarks>,
    /// Taken by the flusher around each sync; a test holds it to keep entries unsynced.
    sync_gate: Mutex<()>,
}

impl Durable {
    /// Starts with the whole log durable up to `last` (the open syncs the WAL first).
    pub fn new(last: Option<LogId>) -> Arc<Self> {
        let log = LogMarks {
            written: last,
            durable: last,
        };
        let (tx, _) = watch::channel(log);
        Arc::new(Self {
            marks: Mutex::new(Marks {
                log,
                ..Marks::default()
            }),
            pending: Condvar::new(),
            tx,
            sync_gate: Mutex::new(()),
        })
    }

    fn marks(&self) -> MutexGuard<'_, Marks> {
        self.marks.lock().expect("durable marks lock")
    }

    /// The marks, as they change.
    pub fn watch(&self) -> watch::Receiver<LogMarks> {
        self.tx.subscribe()
    }

    /// Entries up to `last` are in the WAL, not yet synced: the flusher will sync them.
    pub fn written_unsynced(&self, last: LogId) {
        let mut marks = self.marks();
        debug_assert!(marks.log.written.is_none_or(|w| w.index < last.index));
        marks.log.written = Some(last);
        self.tx.send_replace(marks.log);
        self.pending.notify_one();
    }

    /// What a synced write about to start will cover: everything written so far.
    pub fn before_synced_write(&self) -> (Option<LogId>, u64) {
        let marks = self.marks();
        (marks.log.written, marks.epoch)
    }

    /// A synced write that appended up to `last` has returned.
    pub fn appended_synced(&self, last: LogId) {
        let mut marks = self.marks();
        marks.log.written = Some(last);
        if !self.raise(&mut marks, Some(last)) {
            self.tx.send_replace(marks.log);
        }
    }

    /// A sync that began at `(written, epoch)` (from [`Self::before_synced_write`]) has
    /// returned: what was written then is durable, unless a truncation came in between.
    pub fn synced(&self, (written, epoch): (Option<LogId>, u64)) {
        let mut marks = self.marks();
        if marks.epoch == epoch {
            self.raise(&mut marks, written);
        }
    }

    /// The log now ends at `last` (a synced truncation): nothing above it is written or
    /// durable any more, and a sync in flight must not say otherwise.
    pub fn truncated(&self, last: Option<LogId>) {
        let mut marks = self.marks();
        marks.epoch += 1;
        marks.log.written = last;
        marks.log.durable = last;
        self.tx.send_replace(marks.log);
    }

    /// Raises the durable mark to `to` if that is higher; says whether it did (and
    /// published the marks).
    fn raise(&self, marks: &mut Marks, to: Option<LogId>) -> bool {
        if to.is_some_and(|to| !covers(marks.log.durable, to.index)) {
            marks.log.durable = to;
            self.tx.send_replace(marks.log);
            return true;
        }
        false
    }

    /// Blocks until something written is not yet durable (returns what a sync would cover),
    /// or the store is closed (returns `None`).
    pub fn next_to_sync(&self) -> Option<(Option<LogId>, u64)> {
        let mut marks = self.marks();
        loop {
            if marks.closed {
                return None;
            }
            if let Some(written) = marks.log.written {
                if !covers(marks.log.durable, written.index) {
                    return Some((marks.log.written, marks.epoch));
                }
            }
            marks = self.pending.wait(marks).expect("durable marks lock");
        }
    }

    /// Held by the flusher while it syncs; held by a test, no sync starts.
    pub fn sync_gate(&self) -> MutexGuard<'_, ()> {
        self.sync_gate.lock().expect("sync gate lock")
    }

    /// The log store is gone: the flusher ends.
    pub fn close(&self) {
        self.marks().closed = true;
        self.pending.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LeaderId};

    use super::*;

    fn id(term: u64, node: NodeId, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    #[test]
    fn only_a_leader_s_own_entries_of_its_granted_term_skip_the_wait() {
        let vote = Vote::new_committed(3, 1);
        assert!(is_own_leader_append(Some(1), Some(&vote), &id(3, 1, 10)));
        // A follower's entries (the vote is for another node).
        assert!(!is_own_leader_append(Some(2), Some(&vote), &id(3, 1, 10)));
        // A former leader's entries, replicated back to it by a newer leader.
        assert!(!is_own_leader_append(
            Some(1),
            Some(&Vote::new_committed(4, 2)),
            &id(3, 1, 10)
        ));
        // A candidate's vote is not granted yet; the first entry of a new cluster.
        assert!(!is_own_leader_append(
            Some(1),
            Some(&Vote::new(3, 1)),
            &id(3, 1, 10)
        ));
        assert!(!is_own_leader_append(Some(1), None, &id(0, 0, 0)));
        // No node id known (a store opened outside a node): always synced.
        assert!(!is_own_leader_append(None, Some(&vote), &id(3, 1, 10)));
        assert_eq!(LeaderId::new(3, 1), *vote.leader_id());
    }

    #[test]
    fn a_node_that_led_its_term_stands_again_after_a_restart() {
        assert_eq!(
            no_longer_leading(1, &Vote::new_committed(3, 1)),
            Some(Vote::new(3, 1)),
            "led term 3: a plain vote for itself in term 3"
        );
        assert!(Vote::new(3, 1) < Vote::new_committed(3, 1));
        assert_eq!(
            no_longer_leading(1, &Vote::new_committed(3, 2)),
            None,
            "followed node 2"
        );
        assert_eq!(no_longer_leading(1, &Vote::new(3, 1)), None, "only stood");
    }

    #[test]
    fn the_commit_sent_never_passes_the_leader_s_durable_log() {
        assert_eq!(
            clamp_commit(Some(id(2, 1, 9)), Some(id(2, 1, 7))),
            Some(id(2, 1, 7))
        );
        assert_eq!(
            clamp_commit(Some(id(2, 1, 9)), Some(id(2, 1, 12))),
            Some(id(2, 1, 9))
        );
        assert_eq!(
            clamp_commit(Some(id(2, 1, 9)), Some(id(2, 1, 9))),
            Some(id(2, 1, 9))
        );
        assert_eq!(clamp_commit(Some(id(2, 1, 9)), None), None);
        assert_eq!(clamp_commit(None, Some(id(2, 1, 3))), None);
    }

    #[test]
    fn a_sync_that_began_before_a_truncation_does_not_raise_the_mark() {
        let durable = Durable::new(Some(id(1, 1, 4)));
        let rx = durable.watch();
        durable.written_unsynced(id(2, 1, 8));
        let began = durable.next_to_sync().expect("something to sync");
        assert_eq!(began.0, Some(id(2, 1, 8)));
        durable.truncated(Some(id(1, 1, 5)));
        durable.synced(began);
        assert_eq!(rx.borrow().durable, Some(id(1, 1, 5)));
        // A sync that began after it counts.
        durable.written_unsynced(id(3, 2, 6));
        let began = durable.next_to_sync().expect("something to sync");
        durable.synced(began);
        assert_eq!(rx.borrow().durable, Some(id(3, 2, 6)));
    }

    #[test]
    fn a_synced_write_covers_what_was_written_before_it() {
        let durable = Durable::new(None);
        durable.written_unsynced(id(1, 1, 3));
        let rx = durable.watch();
        assert!(!rx.borrow().may_apply(3), "written, not synced");
        assert!(rx.borrow().may_apply(4), "never written here");
        let before = durable.before_synced_write();
        durable.synced(before);
        assert!(rx.borrow().may_apply(3));
        durable.appended_synced(id(1, 1, 5));
        assert!(covers(rx.borrow().durable, 5));
        assert!(!covers(rx.borrow().durable, 6));
        // Nothing pending: a closed store ends the flusher at once.
        durable.close();
        assert_eq!(durable.next_to_sync(), None);
    }
}
