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
use super::rocks_log;
use super::snapshot_dir::SnapshotDir;
use super::snapshot_file::SnapshotFileError;
use super::snapshot_stats::SnapshotStats;
use super::state_store::{Applied, ApplyHooks, StateMachineStore};

/// RocksDB's directory under the storage directory.
pub const LOG_DIR: &str = "log";
/// The snapshot directory under the storage directory.
pub const SNAPSHOT_DIR: &str = "snapshot";

/// What a node with damaged data should do; every corruption error ends with it.
const REBUILD_HINT: &str = "the node refuses to start on damaged data: rebuild it from the other members (deploy/README.md, \"Rebuild a node whose data is damaged\")";

/// Why a storage directory could not be opened. Each names the path involved. (The
/// causes are displayed, not chained as `source`, so that a printed chain does not repeat.)
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create storage directory {path}: {cause}")]
    CreateDir { path: PathBuf, cause: io::Error },
    #[error("cannot open the raft log at {path}: {cause}{}", rocks_detail(detail))]
    Log {
        path: PathBuf,
        cause: rocksdb::Error,
        /// What RocksDB's own `LOG` says about the damage (the WAL file, bytes dropped).
        detail: Vec<String>,
    },
    #[error("the raft log at {path} is damaged: {cause}; {REBUILD_HINT}")]
    LogCorrupt { path: PathBuf, cause: String },
    #[error("cannot open the snapshot directory {path}: {cause}")]
    SnapshotDir { path: PathBuf, cause: io::Error },
    #[error("snapshot file {path} is unreadable or corrupt: {cause}; {REBUILD_HINT}")]
    SnapshotFile {
        path: PathBuf,
        cause: SnapshotFileError,
    },
    #[error("snapshot file {path} holds a state that does not restore: {cause}; {REBUILD_HINT}")]
    SnapshotState { path: PathBuf, cause: DecodeError },
    #[error("snapshot file {path} is inconsistent: its state is at log index {state_index}, its metadata covers only {meta_index}")]
    SnapshotInconsistent {
        path: PathBuf,
        state_index: u64,
        meta_index: u64,
    },
}

fn rocks_detail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (RocksDB's LOG: {}); {REBUILD_HINT}", lines.join("; "))
    }
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
    std::fs::create_dir_all(dir).map_err(|cause| OpenError::CreateDir {
        path: dir.to_owned(),
        cause,
    })?;
    let log_path = dir.join(LOG_DIR);
    let log = LogStore::open(&log_path).map_err(|cause| {
        let info = std::fs::read_to_string(log_path.join(rocks_log::ROCKSDB_INFO_LOG));
        OpenError::Log {
            detail: info
                .map(|t| rocks_log::corruption_lines(&t))
                .unwrap_or_default(),
            path: log_path.clone(),
            cause,
        }
    })?;
    let started = std::time::Instant::now();
    let entries = log.verify().map_err(|cause| OpenError::LogCorrupt {
        path: log_path.clone(),
        cause,
    })?;
    tracing::info!(
        entries,
        verify_ms = started.elapsed().as_millis() as u64,
        "raft log read and checked"
    );

    let snapshot_path = dir.join(SNAPSHOT_DIR);
    let snapshots =
        SnapshotDir::open(snapshot_path.clone()).map_err(|cause| OpenError::SnapshotDir {
            path: snapshot_path,
            cause,
        })?;
    let file = snapshots.current_path();
    let loaded = snapshots.load().map_err(|cause| OpenError::SnapshotFile {
        path: file.clone(),
        cause,
    })?;

    let stats = Arc::new(SnapshotStats::default());
    let (machine, applied) = match loaded {
        None => (StateMachine::new(config), Applied::default()),
        Some((meta, state)) => {
            let started = std::time::Instant::now();
            let machine =
                StateMachine::restore(&state).map_err(|cause| OpenError::SnapshotState {
                    path: file.clone(),
                    cause,
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
            stats.record_restore(restore_ms, state.len() as u64);
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
    let durable = log.durable();
    Ok((
        log,
        StateMachineStore::new(machine, applied, snapshots, hooks, stats, durable),
    ))
}
