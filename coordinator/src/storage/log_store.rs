//! The Raft log, vote and commit point in RocksDB.
//!
//! Column family `logs`: key = log index (u64 big-endian), value = a versioned log record.
//! Column family `meta`: the vote, the committed log id and the last purged log id.
//!
//! Durability is the point of this file. Raft counts a follower's entries and votes as
//! promises: once `append`'s callback fires or `save_vote` returns, a power cut must not
//! take them back. So every such write is a synced `WriteBatch` (one WAL fsync per call,
//! all of a call's entries in one batch, so a crash keeps all or none of them), and the
//! callback fires only after that write has returned.
//!
//! The one exception is a leader's own entries: they go to the WAL unsynced and a flusher
//! thread syncs them while they are replicated; nothing acts on them before that sync
//! (`log_durable.rs` says why and how).

use std::fmt;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBRecoveryMode, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};

use super::blocking;
use super::codec::{self, CodecError};
use super::disk_space::{DiskSpace, DISK_FREE_MIN_MB_DEFAULT};
use super::log_durable::{self, Durable, LogMarks};
use super::log_tail::{LogTail, TAIL_BYTES_MAX, TAIL_ENTRIES_MAX};
use crate::types::{LogId, NodeId, RaftEntry, StorageError, TypeConfig, Vote};

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// The cluster this log belongs to (`raft/cluster_id.rs`), 16 bytes big-endian.
const KEY_CLUSTER_ID: &[u8] = b"cluster_id";

/// What went wrong below the openraft error types.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("log is corrupt: {0}")]
    Corrupt(String),
}

/// The Raft log store. Cheap to clone: clones share one RocksDB instance, and openraft's
/// replication tasks read through clones while the Raft core writes.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    /// Kept for its statistics object, which the DB shares (see [`LogStore::wal_syncs`]).
    options: Options,
    path: PathBuf,
    /// The newest durable entries, for replication's reads (`log_tail.rs`).
    tail: Mutex<LogTail>,
    /// The data disk's free space (`disk_space.rs`).
    disk: Arc<DiskSpace>,
    /// How much of the log is on disk; the flusher thread syncs a leader's own appends
    /// (`log_durable.rs`).
    durable: Arc<Durable>,
    /// This node's id, once a node runs on this store: until then every append is synced.
    self_id: OnceLock<NodeId>,
    /// The vote last saved or read: whether an append is a leader's own.
    vote: Mutex<Option<Vote>>,
    /// Bytes of log records appended since this process started, for the snapshot
    /// cadence (`raft/snapshot_cadence.rs`).
    appended_bytes: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.durable.close();
    }
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (or creates) the RocksDB database at `path`. Blocking.
    pub(crate) fn open(path: &Path) -> Result<Self, rocksdb::Error> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // The WAL is what makes a synced write durable; it stays on (the default) and is
        // handed to the OS on every write rather than buffered in the process until a
        // manual flush, so a synced write is on disk when it returns.
        options.set_manual_wal_flush(false);
        // fdatasync is enough for the WAL: it syncs the data and the size, and RocksDB
        // fsyncs directories itself when it creates files.
        options.set_use_fsync(false);
        // After a crash, an incomplete record at the end of the WAL is a write whose sync
        // never returned (nobody was told it was durable): dropped. A damaged record
        // anywhere else is corruption, and the open fails naming the WAL file and offset.
        // (`PointInTime`, RocksDB's default, silently stops the replay at the first damaged
        // record: one flipped byte in the middle of the WAL dropped 115 acknowledged
        // entries of 202 without an error; a Raft node that forgets acknowledged entries
        // can break a quorum's promise.)
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        // Tickers only (no histograms or timers): cheap, and they count WAL syncs.
        options.enable_statistics();
        options.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        let families =
            [CF_LOGS, CF_META].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, families)?;
        // What the WAL holds may not be synced yet (a process killed between a leader's
        // unsynced write and its sync): sync it, so that the durable mark can start at
        // the log's end.
        db.flush_wal(true)?;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let durable = Durable::new(None);
            let flusher = Arc::clone(&durable);
            let weak = weak.clone();
            std::thread::Builder::new()
                .name("log-flusher".into())
                .spawn(move || flush_loop(&weak, &flusher))
                .expect("the log flusher thread starts");
            Inner {
                db,
                options,
                path: path.to_owned(),
                tail: Mutex::new(LogTail::new(TAIL_ENTRIES_MAX, TAIL_BYTES_MAX)),
                disk: Arc::new(DiskSpace::new(path, DISK_FREE_MIN_MB_DEFAULT)),
                durable,
                self_id: OnceLock::new(),
                vote: Mutex::new(None),
                appended_bytes: AtomicU64::new(0),
            }
        });
        // An entry that does not decode leaves the mark at the purge point; `verify`, which
        // every node runs right after the open, fails on it with the details.
        let last = inner
            .last_entry_log_id()
            .ok()
            .flatten()
            .or(inner.last_purged().ok().flatten());
        inner.durable.truncated(last);
        Ok(Self { inner })
    }

    /// The node that runs on this store: from now on its own appends as a leader are
    /// synced off openraft's path (`log_durable.rs`). Set once, before Raft starts.
    /// Blocking (a read, and at most one synced write).
    ///
    /// A vote that says this node leads its term is saved back as a plain vote for itself
    /// in that term: openraft 0.9 would otherwise resume leading that term at once, and
    /// number its next entries after whatever its log still holds. After a power cut that
    /// took the leader's unsynced tail, followers may hold entries of this term at those
    /// very indexes, and would take a different entry with the same id for one they have
    /// (replicas diverging). Standing again in a new term gives new ids. The vote still
    /// promises what it promised: no vote for anyone else in that term.
    pub fn run_as(&self, id: NodeId) -> Result<(), String> {
        let set = self.inner.self_id.set(id);
        assert!(
            set.is_ok() || self.inner.self_id.get() == Some(&id),
            "log store already runs as node {:?}",
            self.inner.self_id.get()
        );
        let inner = &self.inner;
        let Some(saved) = inner.stored_vote().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if let Some(standing) = log_durable::no_longer_leading(id, &saved) {
            let value = codec::encode_vote(&standing).map_err(|e| e.to_string())?;
            inner
                .put_meta_synced(KEY_VOTE, value)
                .map_err(|e| e.to_string())?;
            *inner.vote() = Some(standing);
            tracing::info!(%saved, now = %standing, "led this term before the start: will stand again in a new term");
        }
        Ok(())
    }

    /// For tests: while the returned guard lives, the flusher starts no sync, so a leader's
    /// own entries stay unsynced.
    #[doc(hidden)]
    pub fn hold_flusher(&self) -> impl Drop + '_ {
        self.inner.durable.sync_gate()
    }

    /// What of this node's log is written and on disk, as it changes: what this node may
    /// apply, and as a leader the highest commit point it may send (`log_durable.rs`).
    pub fn durable(&self) -> tokio::sync::watch::Receiver<LogMarks> {
        self.inner.durable.watch()
    }

    /// The cluster id recorded in this log, if any. Blocking (a point read).
    pub fn cluster_id(&self) -> Result<Option<u128>, String> {
        match self
            .inner
            .db
            .get_cf(self.inner.cf(CF_META), KEY_CLUSTER_ID)
            .map_err(|e| e.to_string())?
        {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 16] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("cluster id of {} bytes, not 16", bytes.len()))?;
                Ok(Some(u128::from_be_bytes(bytes)))
            }
        }
    }

    /// Records the cluster id, durably. Blocking (one synced write).
    pub fn save_cluster_id(&self, id: u128) -> Result<(), String> {
        self.inner
            .put_meta_synced(KEY_CLUSTER_ID, id.to_be_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Reads and checks every stored entry (see `Inner::verify_all`); the error says which
    /// entry or file is damaged. Blocking: call it before starting Raft.
    pub(crate) fn verify(&self) -> Result<u64, String> {
        self.inner.verify_all().map_err(|e| e.to_string())
    }

    /// The data disk's free space, sampled by the node.
    pub fn disk_space(&self) -> Arc<DiskSpace> {
        Arc::clone(&self.inner.disk)
    }

    /// How many times RocksDB has fsynced its WAL since open. Every follower `append`,
    /// `save_vote`, `truncate` and `purge` syncs exactly once (`save_committed` never); a
    /// leader's own appends are synced by the flusher, several to one sync when they come
    /// close together: a number for metrics, and the way tests check that writes are synced.
    pub fn wal_syncs(&self) -> u64 {
        self.inner.options.get_ticker_count(Ticker::WalFileSynced)
    }

    /// Bytes of log records appended since this process started.
    pub fn appended_bytes(&self) -> u64 {
        self.inner.appended_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of RocksDB memtables (both column families), for metrics. The log's written
    /// entries stay in them until a flush, purged or not: up to two 64 MiB memtables, a
    /// visible share of a node's memory next to its tasks.
    pub fn memtable_bytes(&self) -> u64 {
        [CF_LOGS, CF_META]
            .into_iter()
            .filter_map(|name| {
                let cf = self.inner.cf(name);
                let property = "rocksdb.cur-size-all-mem-tables";
                self.inner
                    .db
                    .property_int_value_cf(cf, property)
                    .ok()
                    .flatten()
            })
            .sum()
    }

    /// The id of the last entry in the log (or of the last purged one when the log behind a
    /// snapshot is empty): what this node offers and compares in a pre-vote.
    pub async fn last_log_id(&self) -> Result<Option<LogId>, String> {
        self.with_db(|inner| Ok(inner.last_entry_log_id()?.or(inner.last_purged()?)))
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs `f` against the database on the blocking pool.
    async fn with_db<T, F>(&self, f: F) -> Result<T, LogError>
    where
        F: FnOnce(&Inner) -> Result<T, LogError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking::run(move || f(&inner)).await?
    }
}

impl Inner {
    fn tail(&self) -> MutexGuard<'_, LogTail> {
        self.tail.lock().expect("log tail lock")
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    /// Writes `batch` and waits for the WAL fsync, which also syncs everything written
    /// before it: the durable mark moves up to that.
    fn write_synced(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        let before = self.durable.before_synced_write();
        self.db
            .write_opt(batch, &options)
            .inspect_err(|e| self.disk.note_write_error(e))?;
        self.durable.synced(before);
        Ok(())
    }

    /// Writes `batch` into the WAL without waiting for the fsync (a leader's own entries).
    fn write_unsynced(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        self.db
            .write(batch)
            .inspect_err(|e| self.disk.note_write_error(e))
    }

    /// The vote on disk, which also becomes the one this store judges appends by.
    fn stored_vote(&self) -> Result<Option<Vote>, LogError> {
        let vote = match self.db.get_cf(self.cf(CF_META), KEY_VOTE)? {
            Some(bytes) => Some(codec::decode_vote(&bytes)?),
            None => None,
        };
        *self.vote() = vote;
        Ok(vote)
    }

    fn vote(&self) -> MutexGuard<'_, Option<Vote>> {
        self.vote.lock().expect("vote lock")
    }

    fn put_meta_synced(&self, key: &[u8], value: Vec<u8>) -> Result<(), LogError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), key, value);
        Ok(self.write_synced(batch)?)
    }

    /// Into the WAL without waiting for the fsync (see `save_committed`).
    fn put_meta_unsynced(&self, key: &[u8], value: Vec<u8>) -> Result<(), LogError> {
        Ok(self
            .db
            .put_cf(self.cf(CF_META), key, value)
            .inspect_err(|e| self.disk.note_write_error(e))?)
    }

    fn meta_log_id(&self, key: &[u8]) -> Result<Option<LogId>, LogError> {
        match self.db.get_cf(self.cf(CF_META), key)? {
            Some(bytes) => Ok(codec::decode_log_id(&bytes)?),
            None => Ok(None),
        }
    }

    fn last_purged(&self) -> Result<Option<LogId>, LogError> {
        self.meta_log_id(KEY_LAST_PURGED)
    }

    /// The log id of the last entry present, if any.
    fn last_entry_log_id(&self) -> Result<Option<LogId>, LogError> {
        let Some(item) = self
            .db
            .iterator_cf(self.cf(CF_LOGS), IteratorMode::End)
            .next()
        else {
            return Ok(None);
        };
        let (key, value) = item?;
        Ok(Some(checked_entry(&key, &value)?.log_id))
    }

    /// Reads every entry once, as a start-up check: each is read through RocksDB's block
    /// checksums (a damaged table file fails with its name and offset), must decode, must
    /// sit under its own index, and the indexes must have no hole. Returns how many.
    fn verify_all(&self) -> Result<u64, LogError> {
        let mut count = 0;
        let mut prev: Option<u64> = None;
        for item in self.db.iterator_cf(self.cf(CF_LOGS), IteratorMode::Start) {
            let (key, value) = item?;
            let entry = checked_entry(&key, &value)?;
            let index = entry.log_id.index;
            if let Some(prev) = prev {
                if index != prev + 1 {
                    return Err(LogError::Corrupt(format!(
                        "hole in the log between {prev} and {index}"
                    )));
                }
            }
            prev = Some(index);
            count += 1;
        }
        Ok(count)
    }

    /// Entries with `start <= index < end` (`end == None`: to the last entry).
    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<RaftEntry>, LogError> {
        let mut entries: Vec<RaftEntry> = Vec::new();
        let from = codec::log_key(start);
        let mode = IteratorMode::From(&from, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_LOGS), mode) {
            let (key, value) = item?;
            let index = codec::log_index(&key)?;
            if end.is_some_and(|end| index >= end) {
                break;
            }
            if let Some(prev) = entries.last() {
                if index != prev.log_id.index + 1 {
                    return Err(LogError::Corrupt(format!(
                        "hole in the log between {} and {index}",
                        prev.log_id.index
                    )));
                }
            }
            entries.push(checked_entry(&key, &value)?);
        }
        Ok(entries)
    }
}

/// Decodes a log record and checks it is stored under its own index.
fn checked_entry(key: &[u8], value: &[u8]) -> Result<RaftEntry, LogError> {
    let index = codec::log_index(key)?;
    let entry = codec::decode_log_record(value)?;
    if entry.log_id.index != index {
        return Err(LogError::Corrupt(format!(
            "entry {} stored under index {index}",
            entry.log_id
        )));
    }
    Ok(entry)
}

/// `[start, end)` of a range of log indexes; `end == None` is unbounded.
fn index_bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        // `..=u64::MAX` reaches the end of the log.
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// One batch with every record of an append: a crash keeps all of them or none.
fn log_batch(inner: &Inner, records: &[([u8; codec::LOG_KEY_BYTES], Vec<u8>)]) -> WriteBatch {
    let logs = inner.cf(CF_LOGS);
    let mut batch = WriteBatch::default();
    for (key, value) in records {
        batch.put_cf(logs, key, value);
    }
    batch
}

/// The flusher thread: syncs the WAL whenever a leader's unsynced entries wait, until the
/// store is dropped. Several appends that arrive during one sync share the next.
fn flush_loop(inner: &Weak<Inner>, durable: &Durable) {
    while let Some(began) = durable.next_to_sync() {
        {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let _gate = durable.sync_gate();
            if let Err(error) = inner.db.flush_wal(true) {
                // openraft was already told these entries are appended, and may count them
                // toward a quorum: this node cannot go on. Nothing acted on them (rules 1
                // and 2 of `log_durable.rs`), so stopping loses nothing acknowledged.
                inner.disk.note_write_error(&error);
                tracing::error!(%error, dir = %inner.path.display(), "the log could not be synced; stopping");
                eprintln!("taskswarm: the log could not be synced: {error}");
                std::process::exit(1);
            }
            // The store is let go before the mark moves: whoever waits for the mark may
            // then drop the store and find it closed.
        }
        durable.synced(began);
    }
}

fn read_logs_error(e: LogError) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_logs_error(e: LogError) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, StorageError> {
        let (start, end) = index_bounds(&range);
        if let Some(entries) = self.inner.tail().get(start, end) {
            return Ok(entries);
        }
        self.with_db(move |inner| inner.read_range(start, end))
            .await
            .map_err(read_logs_error)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.with_db(|inner| {
            let last_purged_log_id = inner.last_purged()?;
            let last_log_id = inner.last_entry_log_id()?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
        .map_err(read_logs_error)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let value = codec::encode_vote(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        let saved = *vote;
        self.with_db(move |inner| {
            inner.put_meta_synced(KEY_VOTE, value)?;
            *inner.vote() = Some(saved);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.with_db(|inner| inner.stored_vote())
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    /// Persisted so that after a restart openraft re-applies the committed entries on top
    /// of the snapshot: the state machine itself lives in memory.
    ///
    /// Written without fsync. openraft 0.9 awaits this call in its core loop before every
    /// apply, so a synced write put a third fsync on the path of each write (leader
    /// append, follower append, this). Nothing needs it durable: the WAL is ordered, so a
    /// crash loses at most a suffix, and a surviving `committed` never points past entries
    /// that survived; a lost one only means openraft re-applies less at start and learns
    /// the rest from the leader (openraft's contract: committed may be persisted lazily).
    /// The next synced append makes it durable anyway.
    ///
    /// Inline rather than on the blocking pool: an unsynced put is a memtable insert and a
    /// write into the page cache, cheaper than the hand-off.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let value = codec::encode_log_id(&committed).map_err(|e| StorageIOError::write(&e))?;
        self.inner
            .put_meta_unsynced(KEY_COMMITTED, value)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.with_db(|inner| inner.meta_log_id(KEY_COMMITTED))
            .await
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Encode first (no I/O), then write: one batch, synced or not (below).
        let mut records = Vec::new();
        let mut kept = Vec::new();
        let mut last_index: Option<u64> = None;
        for entry in entries {
            let index = entry.log_id.index;
            if let Some(last) = last_index {
                assert_eq!(
                    index,
                    last + 1,
                    "openraft appended entry {index} right after {last}"
                );
            }
            last_index = Some(index);
            match codec::encode_log_record(&entry) {
                Ok(value) => {
                    kept.push((entry, value.len()));
                    records.push((codec::log_key(index), value));
                }
                Err(e) => {
                    callback.log_io_completed(Err(io::Error::other(e.to_string())));
                    return Err(StorageIOError::write_log_entry(entry.log_id, &e).into());
                }
            }
        }
        let (Some(first), Some(last)) = (kept.first(), kept.last()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let (first, last) = (first.0.log_id, last.0.log_id);
        let bytes: usize = kept.iter().map(|(_, len)| len).sum();
        self.inner
            .appended_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let own = log_durable::is_own_leader_append(
            self.inner.self_id.get().copied(),
            self.inner.vote().as_ref(),
            &first,
        );
        if own {
            // A leader's own entries: into the WAL and the tail now (readable at once, as
            // openraft requires), reported appended, synced by the flusher meanwhile.
            // Inline: an unsynced write is a memtable insert and a write into the page
            // cache, cheaper than a hand-off to the blocking pool.
            let batch = log_batch(&self.inner, &records);
            return match self.inner.write_unsynced(batch) {
                Ok(()) => {
                    self.inner.tail().appended(kept);
                    self.inner.durable.written_unsynced(last);
                    callback.log_io_completed(Ok(()));
                    Ok(())
                }
                Err(e) => {
                    callback.log_io_completed(Err(io::Error::other(e.to_string())));
                    Err(write_logs_error(LogError::Db(e)))
                }
            };
        }
        // Anyone else's entries (a follower's): synced before the callback, and inline on
        // this thread rather than on the blocking pool. openraft 0.9's core awaits this
        // append before it does anything else, so the hand-off bought no concurrency, only
        // two thread wake-ups per append: 8.5 -> 6.5 context switches and 0.50-0.62 ->
        // 0.46-0.48 ms of server CPU per lifecycle under the unbatched benchmark. The price:
        // for the length of the fsync, this node's other tasks (HTTP answers, a pre-vote)
        // wait for the runtime thread too.
        let inner = &self.inner;
        let batch = log_batch(inner, &records);
        let result = inner.write_synced(batch);
        if result.is_ok() {
            inner.tail().appended(kept);
            inner.durable.appended_synced(last);
        }
        // Only now, with the batch fsynced, may openraft count these entries as persisted
        // (and a leader count this node toward a quorum).
        callback.log_io_completed(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| io::Error::other(e.to_string())),
        );
        result.map_err(|e| write_logs_error(LogError::Db(e)))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.with_db(move |inner| {
            let logs = inner.cf(CF_LOGS);
            let mut batch = WriteBatch::default();
            // delete_range's end is exclusive: the last possible key goes separately.
            batch.delete_range_cf(logs, codec::log_key(log_id.index), codec::log_key(u64::MAX));
            batch.delete_cf(logs, codec::log_key(u64::MAX));
            // Dropped from the tail first, so it never serves what is being removed; after
            // a failed write the tail may no longer be the log's suffix: empty it.
            inner.tail().truncated(log_id.index);
            let result = inner.write_synced(batch);
            if result.is_err() {
                inner.tail().clear();
            }
            result?;
            // Nothing at or above `log_id` is in the log any more, durable or not. (Until
            // this line the mark may still name a removed entry: harmless, since only a
            // follower truncates, and a follower applies only what its leader committed.)
            inner
                .durable
                .truncated(inner.last_entry_log_id()?.or(inner.last_purged()?));
            Ok(())
        })
        .await
        .map_err(write_logs_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.with_db(move |inner| {
            if inner.last_purged()? >= Some(log_id) {
                // Already purged this far: writing it again would move the mark back.
                return Ok(());
            }
            let logs = inner.cf(CF_LOGS);
            let mut batch = WriteBatch::default();
            // The mark and the deletion commit together, so a crash never leaves entries
            // missing below a mark that does not say so.
            batch.put_cf(
                inner.cf(CF_META),
                KEY_LAST_PURGED,
                codec::encode_log_id(&Some(log_id))?,
            );
            batch.delete_range_cf(logs, codec::log_key(0), codec::log_key(log_id.index));
            batch.delete_cf(logs, codec::log_key(log_id.index));
            inner.tail().purged(log_id.index);
            Ok(inner.write_synced(batch)?)
        })
        .await
        .map_err(write_logs_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bounds_map_to_half_open_index_ranges() {
        assert_eq!(index_bounds(&(3..7)), (3, Some(7)));
        assert_eq!(index_bounds(&(3..=7)), (3, Some(8)));
        assert_eq!(index_bounds(&(..)), (0, None));
        assert_eq!(index_bounds(&(5..)), (5, None));
        assert_eq!(index_bounds(&(0..=u64::MAX)), (0, None));
        assert_eq!(
            index_bounds(&(Bound::Excluded(2), Bound::Unbounded)),
            (3, None)
        );
    }
}
