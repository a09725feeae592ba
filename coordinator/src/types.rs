//! The openraft type configuration: our log entries carry a batch of state-machine
//! commands (`taskswarm_state_machine::Entry`), and applying one yields an `Outcome`.

use std::io::Cursor;

use taskswarm_state_machine::{Entry, Outcome};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Entry,
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
