//! openraft glue: the type configuration, the network between nodes, and the node itself
//! (group commit, cluster clock, ticks). Only this module and `storage` name openraft.

pub mod append_stream;
pub mod behaviour;
mod catch_up;
pub mod clock;
pub mod cluster_id;
mod elector;
mod formation;
mod group_commit;
pub mod network;
mod node;
pub mod pre_vote;
pub mod rpc_server;
pub mod snapshot_cadence;
mod ticker;
pub mod wire;

pub use crate::types::NodeId;
pub use group_commit::{ENTRY_BYTES_MAX, INFLIGHT_ENTRIES_MAX, PROPOSAL_QUEUE_MAX};
pub use node::{
    AdminError, ClockRef, Leadership, Node, NodeConfig, NodeStatus, StartError,
    EVENT_CHANNEL_CAPACITY,
};

/// Default log filter: our info, openraft's warnings (its info is per-election chatter).
pub const LOG_FILTER_DEFAULT: &str = "info,openraft=warn";

/// Why a proposal or a linearizable read did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; nothing was proposed.
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// The command may or may not have been committed: the caller must treat the outcome
    /// as unknown.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    /// This node leads but has not heard from a quorum for `since_ms` (it is probably cut
    /// off); nothing was proposed.
    #[error("no quorum acknowledged this leader for {since_ms} ms")]
    NoQuorum { since_ms: u64 },
    /// Too many proposals are waiting; nothing was proposed.
    #[error("too many pending proposals")]
    Overloaded,
    /// A read could not be confirmed (e.g. no quorum); nothing was changed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("the node is stopping")]
    Stopped,
    /// The data disk is (nearly) full; nothing was proposed.
    #[error("the data disk is full: {free_bytes} bytes free, {min_free_bytes} kept free (--disk-free-min-mb)")]
    StorageFull {
        free_bytes: u64,
        min_free_bytes: u64,
    },
}
