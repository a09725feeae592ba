//! The storage a node's promises rest on: the Raft log, vote and commit point survive a
//! restart and a crash; snapshots restore the task state; apply announces what it did;
//! the on-disk formats stay readable by later builds.
//!
//! Compatibility fixtures (tests/fixtures/storage-*.bin) are written once with
//! `TASKSWARM_BLESS=1 cargo test --release -p taskswarm-coordinator --test storage`; a
//! format change that breaks them needs a new version number and new fixtures beside the
//! old ones, never edited old ones.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder, StorageHelper,
};
use taskswarm_coordinator::storage::{
    codec, open, snapshot_file, ApplyHooks, LogStore, OpenError, StateMachineStore,
};
use taskswarm_coordinator::types::{
    LogId, RaftEntry, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote,
};
use taskswarm_state_machine::{
    Claim, Command, Config, Entry, NewTask, Reply, StateMachine, TaskEvent, TaskId, TaskState,
};
use tempfile::TempDir;
use tokio::sync::{broadcast, watch};

// ---- helpers ---------------------------------------------------------------------------

const NODE: u64 = 1;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, NODE), index)
}

fn blank(term: u64, index: u64) -> RaftEntry {
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

fn members() -> Membership<u64, openraft::BasicNode> {
    Membership::new(vec![BTreeSet::from([1, 2, 3])], None)
}

fn membership(term: u64, index: u64) -> RaftEntry {
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(members()),
    }
}

fn normal(term: u64, index: u64, commands: Vec<Command>) -> RaftEntry {
    let entry = Entry {
        wall_ms: 1_000 * index,
        cluster_ms: 1_000 * index,
        commands,
    };
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Arc::new(entry)),
    }
}

fn enqueue(queue: &str, count: usize) -> Command {
    let task = |i: usize| NewTask {
        queue: queue.into(),
        kind: "k".into(),
        payload: format!("{{\"n\":{i}}}"),
        ..Default::default()
    };
    Command::Enqueue {
        tasks: (0..count).map(task).collect(),
    }
}

fn claim(queue: &str, max: u32) -> Command {
    Command::Claim(Claim {
        worker: "w-1".into(),
        queues: vec![queue.into()],
        kinds: None,
        max,
        lease_ms: None,
        min_priority: None,
    })
}

struct Hooked {
    events: broadcast::Receiver<Arc<TaskEvent>>,
    applied: watch::Receiver<u64>,
}

fn hooks() -> (ApplyHooks, Hooked) {
    let (events, events_rx) = broadcast::channel(64);
    let (applied, applied_rx) = watch::channel(u64::MAX);
    let (ready, _) = watch::channel(0);
    (
        ApplyHooks {
            events,
            applied,
            ready,
            cluster_ms: Default::default(),
            behaviour_max: taskswarm_state_machine::BEHAVIOUR_VERSION_MAX,
        },
        Hooked {
            events: events_rx,
            applied: applied_rx,
        },
    )
}

fn open_dir(dir: &Path) -> (LogStore, StateMachineStore) {
    open(dir, Config::default(), hooks().0).expect("storage opens")
}

fn state_hash(sm: &StateMachineStore) -> u64 {
    sm.shared().read().state_hash()
}

fn snapshot_file_path(dir: &Path) -> PathBuf {
    dir.join("snapshot").join("current.snap")
}

/// The entries used by the snapshot tests: a membership, an enqueue of three tasks, a
/// claim of one of them.
fn task_entries() -> Vec<RaftEntry> {
    vec![
        membership(1, 1),
        normal(1, 2, vec![enqueue("emails", 3)]),
        normal(1, 3, vec![claim("emails", 1)]),
    ]
}

// ---- the log ---------------------------------------------------------------------------

#[tokio::test]
async fn entries_vote_and_committed_survive_reopen() {
    let dir = TempDir::new().unwrap();
    let entries = vec![
        blank(1, 1),
        membership(1, 2),
        normal(1, 3, vec![enqueue("q", 1)]),
    ];
    {
        let (mut log, _sm) = open_dir(dir.path());
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_vote(&Vote::new_committed(2, NODE)).await.unwrap();
        log.save_committed(Some(log_id(1, 3))).await.unwrap();
    }
    // Every handle is gone: the database is closed and reopened.
    let (mut log, _sm) = open_dir(dir.path());
    assert_eq!(log.try_get_log_entries(..).await.unwrap(), entries);
    assert_eq!(log.try_get_log_entries(2..3).await.unwrap(), entries[1..2]);
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, NODE))
    );
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 3)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(state.last_log_id, Some(log_id(1, 3)));
}

#[tokio::test]
async fn a_fresh_store_is_empty() {
    let dir = TempDir::new().unwrap();
    let (mut log, mut sm) = open_dir(dir.path());
    assert_eq!(log.read_vote().await.unwrap(), None);
    assert_eq!(log.read_committed().await.unwrap(), None);
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (None, None));
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
    assert_eq!(
        sm.applied_state().await.unwrap(),
        (None, StoredMembership::default())
    );
    assert!(sm.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn every_write_is_one_synced_batch() {
    let dir = TempDir::new().unwrap();
    let (mut log, _sm) = open_dir(dir.path());

    let before = log.wal_syncs();
    log.blocking_append((1..=5).map(|i| blank(1, i)))
        .await
        .unwrap();
    assert_eq!(
        log.wal_syncs() - before,
        1,
        "five entries, one synced write"
    );
    // The callback has fired: the entries are readable through another handle.
    let mut reader = log.get_log_reader().await;
    assert_eq!(reader.try_get_log_entries(1..=5).await.unwrap().len(), 5);

    let before = log.wal_syncs();
    log.save_vote(&Vote::new(3, NODE)).await.unwrap();
    log.truncate(log_id(1, 5)).await.unwrap();
    log.purge(log_id(1, 1)).await.unwrap();
    assert_eq!(
        log.wal_syncs() - before,
        3,
        "vote, truncate and purge each sync"
    );
    // The committed pointer is a hint that may be persisted lazily: no fsync of its own
    // on the path of every commit.
    let before = log.wal_syncs();
    log.save_committed(Some(log_id(1, 2))).await.unwrap();
    assert_eq!(log.wal_syncs() - before, 0, "committed is not synced");
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 2)));
}

/// A leader's own entries (`storage/log_durable.rs`): reported appended at once and
/// readable, synced by the flusher, and not applied while the log holds them unsynced.
/// A follower's entries are synced before their callback fires.
#[tokio::test]
async fn a_leader_s_own_entries_are_synced_after_the_append_and_before_they_apply() {
    let dir = TempDir::new().unwrap();
    let (mut log, mut sm) = open_dir(dir.path());
    log.run_as(NODE).unwrap();
    let mut marks = log.durable();
    // A follower's entries (term 1 led by node 2): on disk when the callback fires.
    let other = |index| RaftEntry {
        log_id: LogId::new(CommittedLeaderId::new(1, 2), index),
        payload: EntryPayload::Blank,
    };
    log.save_vote(&Vote::new_committed(1, 2)).await.unwrap();
    log.blocking_append([other(1), other(2)]).await.unwrap();
    assert_eq!(marks.borrow().durable.map(|d| d.index), Some(2));

    // This node leads term 2: its entries go to the WAL unsynced.
    log.save_vote(&Vote::new_committed(2, NODE)).await.unwrap();
    let before = log.wal_syncs();
    let own = || [blank(2, 3), normal(2, 4, vec![enqueue("q", 2)])];
    let holder = log.clone();
    let held = holder.hold_flusher();
    log.blocking_append(own()).await.unwrap();
    let mut reader = log.get_log_reader().await;
    assert_eq!(reader.try_get_log_entries(3..=4).await.unwrap().len(), 2);
    assert_eq!(marks.borrow().written.map(|w| w.index), Some(4));
    assert_eq!(marks.borrow().durable.map(|d| d.index), Some(2));
    // Apply waits while the log holds them unsynced, and goes on once they are synced.
    let applying = tokio::spawn(async move {
        sm.apply(own()).await.unwrap();
        sm
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!applying.is_finished(), "applied entries not yet on disk");
    drop(held);
    let sm = applying.await.unwrap();
    assert_eq!(marks.borrow().durable.map(|d| d.index), Some(4));
    assert!(log.wal_syncs() > before, "the flusher synced the WAL");
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        marks.wait_for(|m| m.durable == m.written),
    )
    .await
    .expect("the flusher catches up")
    .unwrap();

    // Reopened, the entries are there and the whole log counts as durable.
    drop((log, sm, reader, holder));
    let (mut log, _sm) = open_dir(dir.path());
    assert_eq!(log.try_get_log_entries(1..=4).await.unwrap().len(), 4);
    assert_eq!(log.durable().borrow().durable.map(|d| d.index), Some(4));
}

/// A node that led its term stands again in a new one after a restart (its vote is saved
/// back as a plain vote for itself), so it never numbers new entries after a tail it may
/// have lost unsynced; a vote for another node is left as it is.
#[tokio::test]
async fn a_restarted_leader_does_not_resume_its_term() {
    let dir = TempDir::new().unwrap();
    {
        let (mut log, _sm) = open_dir(dir.path());
        log.save_vote(&Vote::new_committed(4, NODE)).await.unwrap();
    }
    let (mut log, _sm) = open_dir(dir.path());
    log.run_as(NODE).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, NODE)));
    drop((log, _sm));
    let (mut log, _sm) = open_dir(dir.path());
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new(4, NODE)),
        "saved durably"
    );
    log.save_vote(&Vote::new_committed(5, 2)).await.unwrap();
    drop((log, _sm));
    let (mut log, _sm) = open_dir(dir.path());
    log.run_as(NODE).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(5, 2))
    );
}

/// The child half of `appended_entries_and_vote_survive_a_process_abort`.
const CRASH_CHILD_ENV: &str = "TASKSWARM_STORAGE_CRASH_CHILD_DIR";
const CRASH_CHILD_MARK: &str = "storage-crash-child: appended";
const CRASH_TEST: &str = "appended_entries_and_vote_survive_a_process_abort";

#[test]
fn appended_entries_and_vote_survive_a_process_abort() {
    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        // Child: append, save the vote, and die at once with the database still open:
        // no destructor, no memtable flush, no clean close.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mut log, _sm) = open_dir(Path::new(&dir));
            log.blocking_append((1..=3).map(|i| normal(4, i, vec![enqueue("q", 1)])))
                .await
                .unwrap();
            log.save_vote(&Vote::new(4, NODE)).await.unwrap();
            println!("{CRASH_CHILD_MARK}");
            std::process::abort();
        });
    }
    let dir = TempDir::new().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CRASH_TEST, "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(CRASH_CHILD_MARK),
        "the child ran the test and appended: {stdout}"
    );
    assert!(!output.status.success(), "the child aborted");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut log, _sm) = open_dir(dir.path());
        let got = log.try_get_log_entries(..).await.unwrap();
        assert_eq!(
            got,
            (1..=3)
                .map(|i| normal(4, i, vec![enqueue("q", 1)]))
                .collect::<Vec<_>>()
        );
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, NODE)));
    });
}

#[tokio::test]
async fn truncate_and_purge_are_reported_and_survive_reopen() {
    let dir = TempDir::new().unwrap();
    {
        let (mut log, _sm) = open_dir(dir.path());
        log.blocking_append((1..=10).map(|i| blank(1, i)))
            .await
            .unwrap();
        log.truncate(log_id(1, 8)).await.unwrap();
        log.purge(log_id(1, 3)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(1, 7)));
    }
    let (mut log, _sm) = open_dir(dir.path());
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![4, 5, 6, 7]);
    assert!(
        log.try_get_log_entries(1..4).await.unwrap().is_empty(),
        "purged entries are gone"
    );

    // A new leader's entry takes the truncated slot.
    log.blocking_append([blank(2, 8)]).await.unwrap();
    assert_eq!(
        log.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 8))
    );

    // Purging everything: the last log id is the last purged one.
    log.purge(log_id(2, 8)).await.unwrap();
    // A purge behind the mark changes nothing.
    log.purge(log_id(1, 5)).await.unwrap();
    drop(log);
    let (mut log, _sm) = open_dir(dir.path());
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 8)));
    assert_eq!(state.last_log_id, Some(log_id(2, 8)));
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
}

#[tokio::test]
async fn truncating_everything_leaves_an_empty_log() {
    let dir = TempDir::new().unwrap();
    let (mut log, _sm) = open_dir(dir.path());
    log.blocking_append((1..=4).map(|i| blank(1, i)))
        .await
        .unwrap();
    log.truncate(log_id(1, 1)).await.unwrap();
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, None);
}

// ---- the state machine and snapshots ---------------------------------------------------

#[tokio::test]
async fn apply_runs_commands_and_tracks_applied_state() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open_dir(dir.path());
    let outcomes = sm.apply(task_entries()).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes[0].results.is_empty(),
        "membership entries have an empty outcome"
    );
    assert!(matches!(&outcomes[1].results[0], Ok(Reply::Enqueued(items)) if items.len() == 3));
    assert!(matches!(&outcomes[2].results[0], Ok(Reply::Claimed(tasks)) if tasks.len() == 1));

    let (last, stored) = sm.applied_state().await.unwrap();
    assert_eq!(last, Some(log_id(1, 3)));
    assert_eq!(stored, StoredMembership::new(Some(log_id(1, 1)), members()));
    let shared = sm.shared();
    let machine = shared.read();
    assert_eq!(machine.last_applied(), 3);
    assert_eq!(machine.task_count(), 3);
    assert_eq!(machine.task(TaskId(1)).unwrap().state, TaskState::Running);
}

#[tokio::test]
async fn apply_hooks_publish_events_and_the_applied_index() {
    let dir = TempDir::new().unwrap();
    let (hooks, mut hooked) = hooks();
    let (_log, mut sm) = open(dir.path(), Config::default(), hooks).unwrap();
    assert_eq!(
        *hooked.applied.borrow_and_update(),
        0,
        "open publishes where the machine starts"
    );

    sm.apply([normal(1, 5, vec![enqueue("emails", 1)])])
        .await
        .unwrap();
    let event = hooked.events.try_recv().expect("the enqueue's event");
    assert_eq!(
        (event.task, event.queue.as_str(), event.state),
        (TaskId(1), "emails", TaskState::Queued)
    );
    assert!(
        sm.shared().read().task(event.task).is_some(),
        "the state is visible when the event is"
    );
    assert!(hooked.events.try_recv().is_err(), "one task, one event");
    assert!(hooked.applied.has_changed().unwrap());
    assert_eq!(*hooked.applied.borrow_and_update(), 5);

    sm.apply([blank(1, 6), membership(1, 7)]).await.unwrap();
    assert_eq!(*hooked.applied.borrow_and_update(), 7);
    assert!(
        hooked.events.try_recv().is_err(),
        "blank and membership entries emit nothing"
    );
}

#[tokio::test]
async fn a_built_snapshot_restores_the_tasks_after_reopen() {
    let dir = TempDir::new().unwrap();
    let (snapshot_meta, snapshot_data, hash) = {
        let (_log, mut sm) = open_dir(dir.path());
        sm.apply(task_entries()).await.unwrap();
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 3)));
        assert_eq!(
            snap.meta.last_membership,
            StoredMembership::new(Some(log_id(1, 1)), members())
        );
        (snap.meta, snap.snapshot.into_inner(), state_hash(&sm))
    };
    let (hooks, mut hooked) = hooks();
    let (_log, mut sm) = open(dir.path(), Config::default(), hooks).unwrap();
    assert_eq!(state_hash(&sm), hash);
    {
        let shared = sm.shared();
        let machine = shared.read();
        assert_eq!(machine.task_count(), 3);
        assert_eq!(machine.task(TaskId(1)).unwrap().state, TaskState::Running);
        assert_eq!(machine.last_applied(), 3);
    }
    assert_eq!(
        sm.applied_state().await.unwrap(),
        (Some(log_id(1, 3)), snapshot_meta.last_membership.clone())
    );
    assert_eq!(*hooked.applied.borrow_and_update(), 3);
    let current = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("the snapshot is current");
    assert_eq!(current.meta, snapshot_meta);
    assert_eq!(current.snapshot.into_inner(), snapshot_data);
}

#[tokio::test]
async fn an_installed_snapshot_reproduces_the_state() {
    let leader_dir = TempDir::new().unwrap();
    let (_log, mut leader) = open_dir(leader_dir.path());
    leader.apply(task_entries()).await.unwrap();
    leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let snap = leader.get_current_snapshot().await.unwrap().unwrap();

    let follower_dir = TempDir::new().unwrap();
    let (hooks, mut hooked) = hooks();
    let (_follower_log, mut follower) =
        open(follower_dir.path(), Config::default(), hooks).unwrap();
    let mut received = follower.begin_receiving_snapshot().await.unwrap();
    assert!(received.get_ref().is_empty());
    *received = *snap.snapshot;
    follower
        .install_snapshot(&snap.meta, received)
        .await
        .unwrap();

    assert_eq!(state_hash(&follower), state_hash(&leader));
    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
    assert_eq!(*hooked.applied.borrow_and_update(), 3);
    assert_eq!(
        follower.get_current_snapshot().await.unwrap().unwrap().meta,
        snap.meta
    );

    // The installed snapshot is durable: a restart comes back to it.
    let hash_at_3 = state_hash(&leader);
    drop((_follower_log, follower));
    let (_log, mut follower) = open_dir(follower_dir.path());
    assert_eq!(state_hash(&follower), hash_at_3);
    assert_eq!(
        follower.applied_state().await.unwrap().0,
        Some(log_id(1, 3))
    );

    // Both continue identically from there.
    let next = normal(1, 4, vec![claim("emails", 2)]);
    leader.apply([next.clone()]).await.unwrap();
    follower.apply([next]).await.unwrap();
    assert_eq!(state_hash(&follower), state_hash(&leader));
    assert_ne!(state_hash(&follower), hash_at_3);
}

#[tokio::test]
async fn a_corrupt_snapshot_file_stops_open() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = open_dir(dir.path());
        sm.apply(task_entries()).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let path = snapshot_file_path(dir.path());
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err =
        open(dir.path(), Config::default(), hooks().0).expect_err("a flipped byte fails open");
    assert!(matches!(err, OpenError::SnapshotFile { .. }), "{err}");
    assert!(
        err.to_string().contains("current.snap"),
        "the message names the file: {err}"
    );
    assert!(
        err.to_string().contains("checksum"),
        "and says what is wrong: {err}"
    );

    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    assert!(
        open(dir.path(), Config::default(), hooks().0).is_err(),
        "a torn file fails open"
    );

    std::fs::write(&path, &good).unwrap();
    assert!(
        open(dir.path(), Config::default(), hooks().0).is_ok(),
        "the intact file opens"
    );
}

#[tokio::test]
async fn a_half_written_snapshot_is_ignored() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = open_dir(dir.path());
        sm.apply(task_entries()).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    // A crash while writing the next snapshot leaves the temporary file behind.
    let temp = dir.path().join("snapshot").join("current.tmp");
    std::fs::write(&temp, b"TSWSNAPF half written").unwrap();
    let (_log, mut sm) = open_dir(dir.path());
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    assert!(!temp.exists(), "the leftover is removed");
}

#[tokio::test]
async fn a_corrupt_installed_snapshot_is_an_error_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open_dir(dir.path());
    sm.apply(task_entries()).await.unwrap();
    let hash = state_hash(&sm);
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(2, 10)),
        last_membership: StoredMembership::new(Some(log_id(1, 1)), members()),
        snapshot_id: "garbage".into(),
    };
    let err: StorageError = sm
        .install_snapshot(&meta, Box::new(Cursor::new(b"TSWSNAP\0garbage".to_vec())))
        .await
        .expect_err("garbage is refused");
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert_eq!(state_hash(&sm), hash);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    assert!(
        sm.get_current_snapshot().await.unwrap().is_none(),
        "nothing was saved"
    );

    // A state further along than its metadata claims is refused too.
    let mut ahead = StateMachine::new(Config::default());
    ahead.apply(20, &Entry::default());
    let err = sm
        .install_snapshot(&meta, Box::new(Cursor::new(ahead.snapshot())))
        .await
        .expect_err("inconsistent");
    assert!(err.to_string().contains("covers only 10"), "{err}");
    assert_eq!(state_hash(&sm), hash);
}

#[tokio::test]
async fn restart_replays_the_committed_log_on_top_of_the_snapshot() {
    let dir = TempDir::new().unwrap();
    // Like a real log: `Raft::initialize` writes the first membership at index 0.
    let entries = vec![
        membership(0, 0),
        normal(1, 1, vec![enqueue("emails", 3)]),
        normal(1, 2, vec![claim("emails", 1)]),
        normal(1, 3, vec![enqueue("sms", 2)]),
        normal(1, 4, vec![claim("emails", 1)]),
    ];
    let hash_at_4 = {
        let (mut log, mut sm) = open_dir(dir.path());
        log.blocking_append(entries.clone()).await.unwrap();
        sm.apply(entries[..3].to_vec()).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        sm.apply(entries[3..].to_vec()).await.unwrap();
        log.save_committed(Some(log_id(1, 4))).await.unwrap();
        state_hash(&sm)
    };
    let (hooks, mut hooked) = hooks();
    let (mut log, mut sm) = open(dir.path(), Config::default(), hooks).unwrap();
    assert_eq!(
        sm.shared().read().last_applied(),
        2,
        "the machine starts at the snapshot"
    );
    assert_ne!(state_hash(&sm), hash_at_4);

    // What openraft does at startup.
    StorageHelper::new(&mut log, &mut sm)
        .get_initial_state()
        .await
        .unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 4)));
    assert_eq!(
        state_hash(&sm),
        hash_at_4,
        "the committed entries after the snapshot were re-applied"
    );
    assert_eq!(*hooked.applied.borrow_and_update(), 4);
}

// ---- openraft's own conformance suite ----------------------------------------------------

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = open(dir.path(), Config::default(), hooks().0).expect("storage opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    // Runs its own tokio runtimes, so this is a plain #[test].
    Suite::test_all(Builder).unwrap();
}

// ---- on-disk compatibility ----------------------------------------------------------------

fn fixture(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("TASKSWARM_BLESS").is_some() && !path.exists() {
        std::fs::write(&path, bytes).unwrap();
    }
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("fixture {} missing ({e}); bless it once", path.display()))
}

fn sample_entry() -> RaftEntry {
    let task = NewTask {
        queue: "emails".into(),
        kind: "send".into(),
        payload: "{\"to\":\"a@b.c\"}".into(),
        priority: 2,
        idempotency_key: Some("order-1".into()),
        ..Default::default()
    };
    let entry = Entry {
        wall_ms: 1_700_000_000_000,
        cluster_ms: 42_000,
        commands: vec![Command::Enqueue { tasks: vec![task] }],
    };
    RaftEntry {
        log_id: LogId::new(CommittedLeaderId::new(3, 2), 17),
        payload: EntryPayload::Normal(Arc::new(entry)),
    }
}

#[test]
fn log_record_v1_bytes_still_decode() {
    let entry = sample_entry();
    let saved = fixture(
        "storage-log-record-v1.bin",
        &codec::encode_log_record(&entry).unwrap(),
    );
    assert_eq!(saved[0], 1, "version byte");
    assert_eq!(codec::decode_log_record(&saved).unwrap(), entry);
    assert_eq!(
        codec::encode_log_record(&entry).unwrap(),
        saved,
        "encoding is unchanged"
    );
}

#[test]
fn vote_and_log_id_v1_bytes_still_decode() {
    let vote = Vote::new_committed(5, 2);
    let saved = fixture("storage-vote-v1.bin", &codec::encode_vote(&vote).unwrap());
    assert_eq!(saved[0], 1, "version byte");
    assert_eq!(codec::decode_vote(&saved).unwrap(), vote);
    assert_eq!(codec::encode_vote(&vote).unwrap(), saved);

    let committed = Some(LogId::new(CommittedLeaderId::new(5, 2), 99));
    let saved = fixture(
        "storage-log-id-v1.bin",
        &codec::encode_log_id(&committed).unwrap(),
    );
    assert_eq!(codec::decode_log_id(&saved).unwrap(), committed);
    assert_eq!(codec::encode_log_id(&committed).unwrap(), saved);
}

#[test]
fn snapshot_file_v1_bytes_still_decode() {
    let EntryPayload::Normal(entry) = sample_entry().payload else {
        unreachable!("a normal entry")
    };
    let mut machine = StateMachine::new(Config {
        retention_ms: 60_000,
        tasks_max: 1_000,
    });
    machine.apply(17, &entry);
    let last = LogId::new(CommittedLeaderId::new(3, 2), 17);
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(
            Some(LogId::new(CommittedLeaderId::new(1, 1), 1)),
            members(),
        ),
        snapshot_id: "3-2-17-fixture".into(),
    };
    let saved = fixture(
        "storage-snapshot-file-v1.bin",
        &snapshot_file::encode(&meta, &machine.snapshot()).unwrap(),
    );
    assert_eq!(&saved[..8], b"TSWSNAPF");
    assert_eq!(saved[8..12], 1u32.to_le_bytes(), "file version");
    let (decoded_meta, state) = snapshot_file::decode(saved.clone()).unwrap();
    assert_eq!(decoded_meta, meta);
    assert_eq!(StateMachine::restore(&state).unwrap(), machine);
    assert_eq!(
        snapshot_file::encode(&decoded_meta, &state).unwrap(),
        saved,
        "encoding is unchanged"
    );
}
