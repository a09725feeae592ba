use serde::{Deserialize, Serialize};

/// `GET /v1/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    /// The last index in this node's log (appended, not necessarily committed).
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Last log index covered by this node's snapshot; the log is purged up to
    /// `purged_index`.
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub members: Vec<Member>,
    /// With `?state_hash=true`: FNV-1a of the state machine's snapshot bytes, equal on
    /// nodes with equal state. Costs a full encode of the state, so it is opt-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_hash: Option<String>,
    /// This node's wall clock when it answered (ms since the Unix epoch): compare nodes'
    /// clocks without trusting the HTTP `Date` header, which some servers cache and freeze
    /// after a backward clock jump. Absent from older nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// The behaviour version this node has applied: how the cluster applies entries. The
    /// leader raises it once every member accepts a higher one. Absent from older nodes
    /// (version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour_version: Option<u32>,
    /// The highest behaviour version this node accepts (its build's, or its
    /// `--behaviour-version-max`). Absent from older nodes (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour_version_max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// `POST /v1/cluster/learners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddLearnerRequest {
    pub id: u64,
    pub addr: String,
}

/// `POST /v1/cluster/membership`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    pub voters: Vec<u64>,
}

/// `GET /v1/cluster/nodes`: every member's own `/v1/cluster` answer, gathered by the
/// node asked (so one request shows each node's view, lag included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterNodesResponse {
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// That node's status; absent when it could not be read.
    pub status: Option<ClusterStatus>,
    /// Why the status could not be read.
    pub error: Option<String>,
    /// How long the status took to read; absent when it could not be read.
    pub rtt_ms: Option<u64>,
}

/// `POST /v1/cluster/nodes`: add a node as a learner, wait until it has caught up, then
/// make it a voter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddNodeRequest {
    pub id: u64,
    pub addr: String,
    /// How long to wait for it to catch up before giving up (it stays a learner);
    /// default 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_ms: Option<u64>,
}
