//! The openraft type configuration: our log entries carry a batch of state-machine
//! commands (`taskswarm_state_machine::Entry`), and applying one yields an `Outcome`.
//!
//! The entry is shared (`Arc`): openraft clones an entry each time it reads one back (to
//! send it to each follower, to apply it), and a batch of tasks with their payloads was
//! copied whole each time. Serde writes an `Arc<T>` as the `T`, so the log's and the
//! wire's bytes are what they were.

use std::io::Cursor;
use std::sync::Arc;

use taskswarm_state_machine::{Entry, Outcome};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Arc<Entry>,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftEntry = openraft::Entry<TypeConfig>;
