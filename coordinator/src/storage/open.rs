//! Opening a node's storage directory: the RocksDB log and the state machine restored
//! from the last snapshot.
//!
//! Layout of `dir`:
//! - `log/`: RocksDB (the Raft log, vote, committed and purged log ids);
//! - `snapshot/current.snap`: the last snapshot (see `snapshot_file` for its format).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use taskswarm_state_machine::{Config, DecodeError, StateMachine};

use super::log_store::LogStore;
use super::snapshot_dir::SnapshotDir;
use super::snapshot_file::SnapshotFileError;
use super::snapshot_stats::SnapshotStats;
use super::state_store::{Applied, ApplyHooks, StateMachineStore};

/// RocksDB's directory under the storage directory.
pub const LOG_DIR: &str = "log";
/// The snapshot directory under the storage directory.
pub const SNAPSHOT_DIR: &str = "snapshot";

/// Why a storage directory could not be opened. Each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create storage directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open the raft log at {path}: {source}")]
    Log {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("cannot open the snapshot directory {path}: {source}")]
    SnapshotDir { path: PathBuf, source: io::Error },
    #[error("snapshot file {path} is unreadable or corrupt: {source}")]
    SnapshotFile {
        path: PathBuf,
        source: SnapshotFileError,
    },
    #[error("snapshot file {path} holds a state that does not restore: {source}")]
    SnapshotState { path: PathBuf, source: DecodeError },
    #[error("snapshot file {path} is inconsistent: its state is at log index {state_index}, its metadata covers only {meta_index}")]
    SnapshotInconsistent {
        path: PathBuf,
        state_index: u64,
        meta_index: u64,
    },
}

/// Opens (creating if needed) the storage in `dir`. The state machine starts from the
/// snapshot file when there is one, else from `config`; openraft then re-applies the
/// committed log after it. Every node must pass the same `config` (the coordinator passes
/// the fixed default): changes travel through the log as `Configure` commands, so that
/// replaying the same log always gives the same state.
///
/// Blocking: call it before starting Raft, or from a blocking task.
pub fn open(
    dir: &Path,
    config: Config,
    hooks: ApplyHooks,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let log_path = dir.join(LOG_DIR);
    let log = LogStore::open(&log_path).map_err(|source| OpenError::Log {
        path: log_path,
        source,
    })?;

    let snapshot_path = dir.join(SNAPSHOT_DIR);
    let snapshots =
        SnapshotDir::open(snapshot_path.clone()).map_err(|source| OpenError::SnapshotDir {
            path: snapshot_path,
            source,
        })?;
    let file = snapshots.current_path();
    let loaded = snapshots.load().map_err(|source| OpenError::SnapshotFile {
        path: file.clone(),
        source,
    })?;

    let stats = Arc::new(SnapshotStats::default());
    let (machine, applied) = match loaded {
        None => (StateMachine::new(config), Applied::default()),
        Some((meta, state)) => {
            let started = std::time::Instant::now();
            let machine =
                StateMachine::restore(&state).map_err(|source| OpenError::SnapshotState {
                    path: file.clone(),
                    source,
                })?;
            let meta_index = meta.last_log_id.map_or(0, |l| l.index);
            if machine.last_applied() > meta_index {
                return Err(OpenError::SnapshotInconsistent {
                    path: file,
                    state_index: machine.last_applied(),
                    meta_index,
                });
            }
            let restore_ms = started.elapsed().as_millis() as u64;
            stats.record_restore(restore_ms);
            tracing::info!(
                snapshot = %meta,
                tasks = machine.task_count(),
                restore_ms,
                "state machine restored from snapshot"
            );
            (
                machine,
                Applied {
                    last: meta.last_log_id,
                    membership: meta.last_membership,
                },
            )
        }
    };
    Ok((
        log,
        StateMachineStore::new(machine, applied, snapshots, hooks, stats),
    ))
}
