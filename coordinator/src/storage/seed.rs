//! Seeding a brand-new node's storage from a backup (`taskswarm restore`).
//!
//! The node starts with the backup's state as its snapshot, and no log: openraft reads
//! the snapshot as applied and committed and begins the log after it. The snapshot's log
//! id keeps the backup's index (fencing tokens, which derive from log positions, keep
//! growing) with term 0, so the new cluster's first election (term 1) sorts after it; its
//! membership is the new cluster's voters. Every node of the new cluster is seeded from
//! the same file with the same voters, so they agree on the snapshot exactly.
//!
//! The log records a cluster id derived from the backup and the new voters, never the
//! source cluster's: nodes of the old cluster and of the restored one refuse each other's
//! Raft messages (`raft/cluster_id.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use taskswarm_state_machine::StateMachine;

use super::backup_file::{self, BackupFileError};
use super::log_store::LogStore;
use super::open::{LOG_DIR, SNAPSHOT_DIR};
use super::snapshot_dir::SnapshotDir;
use crate::types::{LogId, NodeId, SnapshotMeta, StoredMembership};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Backup(#[from] BackupFileError),
    #[error("the backup's state does not decode: {0}")]
    State(String),
    #[error("the backup's state is at log index {found}, its header says {expected}")]
    Index { expected: u64, found: u64 },
    #[error("the backup's state hashes to {found}, its header says {expected}")]
    Hash { expected: String, found: String },
    #[error("{path} already holds a node's data: restore only into an empty directory")]
    NotEmpty { path: PathBuf },
    #[error("node {id} is not among the voters {voters:?}")]
    NotAVoter { id: NodeId, voters: Vec<NodeId> },
    #[error("cannot write {path}: {why}")]
    Write { path: PathBuf, why: String },
}

/// What a seeded node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub applied_index: u64,
    pub state_hash: String,
    pub tasks: usize,
    pub cluster_id: u128,
}

/// Checks `backup` (layout, checksum, that its state decodes to the index and hash its
/// header names) and seeds `dir` for node `id` of a new cluster of `voters`.
pub fn seed_from_backup(
    backup: &[u8],
    dir: &Path,
    id: NodeId,
    voters: &BTreeMap<NodeId, String>,
) -> Result<Seeded, SeedError> {
    let (header, state) = backup_file::decode(backup)?;
    let machine = StateMachine::restore(state).map_err(|e| SeedError::State(e.to_string()))?;
    if machine.last_applied() != header.applied_index {
        return Err(SeedError::Index {
            expected: header.applied_index,
            found: machine.last_applied(),
        });
    }
    let hash = format!("{:016x}", backup_file::fnv1a(state));
    if hash != header.state_hash {
        return Err(SeedError::Hash {
            expected: header.state_hash,
            found: hash,
        });
    }
    if !voters.contains_key(&id) {
        return Err(SeedError::NotAVoter {
            id,
            voters: voters.keys().copied().collect(),
        });
    }
    for sub in [LOG_DIR, SNAPSHOT_DIR] {
        let path = dir.join(sub);
        if path.exists() {
            return Err(SeedError::NotEmpty { path });
        }
    }
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |e: String| SeedError::Write { path, why: e }
    };

    let log_id = LogId::new(openraft::CommittedLeaderId::new(0, 0), header.applied_index);
    let nodes: BTreeMap<NodeId, openraft::BasicNode> = voters
        .iter()
        .map(|(id, addr)| (*id, openraft::BasicNode::new(addr.clone())))
        .collect();
    let membership =
        openraft::Membership::new(vec![nodes.keys().copied().collect::<BTreeSet<_>>()], nodes);
    let cluster_id = restored_cluster_id(header.state_hash.as_bytes(), voters);
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        snapshot_id: format!("restored-{:032x}", cluster_id),
    };
    let snapshot_path = dir.join(SNAPSHOT_DIR);
    let snapshots = SnapshotDir::open(snapshot_path.clone())
        .map_err(|e| write_error(&snapshot_path)(e.to_string()))?;
    snapshots
        .save(&meta, state)
        .map_err(|e| write_error(&snapshot_path)(e.to_string()))?;
    let log_path = dir.join(LOG_DIR);
    let log = LogStore::open(&log_path).map_err(|e| write_error(&log_path)(e.to_string()))?;
    log.save_cluster_id(cluster_id)
        .map_err(write_error(&log_path))?;
    Ok(Seeded {
        applied_index: header.applied_index,
        state_hash: header.state_hash,
        tasks: machine.task_count(),
        cluster_id,
    })
}

/// The same for every node seeded from one backup into one set of voters, and unlike the
/// source cluster's (which is random).
fn restored_cluster_id(state_hash: &[u8], voters: &BTreeMap<NodeId, String>) -> u128 {
    let mut text = Vec::from(&b"taskswarm restore\0"[..]);
    text.extend_from_slice(state_hash);
    for (id, addr) in voters {
        text.extend_from_slice(format!("\0{id}={addr}").as_bytes());
    }
    let high = backup_file::fnv1a(&text);
    text.push(1);
    let low = backup_file::fnv1a(&text);
    (u128::from(high) << 64) | u128::from(low)
}
