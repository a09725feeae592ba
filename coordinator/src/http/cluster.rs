//! Cluster endpoints: status, membership changes, health and readiness, metrics.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use taskswarm_api as api;
use taskswarm_state_machine::TaskState;

use super::error::ApiError;
use super::extract::Body;
use super::membership_plan;
use crate::raft::{Leadership, Node};

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusParams {
    /// Include `state_hash` (costs a full encode of the state).
    #[serde(default)]
    state_hash: bool,
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster", params(StatusParams), responses((status = 200, description = "This node's view (never redirected)", body = api::ClusterStatus)))]
pub async fn status(
    State(node): State<Arc<Node>>,
    params: Result<axum::extract::Query<StatusParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::ClusterStatus>, ApiError> {
    let params = super::params::query(params)?;
    Ok(status_of(&node, params.state_hash))
}

pub(super) fn status_of(node: &Node, with_hash: bool) -> Json<api::ClusterStatus> {
    let s = node.status();
    // The view is taken under the lock; the hash over a large state is not.
    let hash = with_hash.then(|| {
        let view = node.state().snapshot_view();
        view.state_hash()
    });
    Json(api::ClusterStatus {
        node_id: s.id,
        leader_id: s.leader,
        term: s.term,
        last_log_index: s.last_log_index,
        applied_index: s.applied_index,
        snapshot_index: s.snapshot_index,
        purged_index: s.purged_index,
        members: s
            .members
            .into_iter()
            .map(|(id, addr, voter)| api::Member { id, addr, voter })
            .collect(),
        state_hash: hash.map(|h| format!("{h:016x}")),
        wall_ms: Some(crate::raft::clock::wall_ms()),
        behaviour_version: Some(s.behaviour_version),
        behaviour_version_max: Some(s.behaviour_version_max),
    })
}

#[utoipa::path(post, path = "/v1/cluster/learners", tag = "cluster", request_body = api::AddLearnerRequest, responses((status = 200, body = api::ClusterStatus), (status = 409, description = "`refused`", body = api::ErrorBody)))]
pub async fn add_learner(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::AddLearnerRequest>,
) -> Result<Json<api::ClusterStatus>, ApiError> {
    node.add_learner(req.id, req.addr).await?;
    Ok(status_of(&node, false))
}

/// Longest an add-node waits for the new node to catch up, by default and at most.
pub const CATCH_UP_MS_DEFAULT: u64 = 60_000;
pub const CATCH_UP_MS_MAX: u64 = 3_600_000;

fn members(node: &Node) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut voters = BTreeSet::new();
    let mut learners = BTreeSet::new();
    for (id, _, voter) in node.status().members {
        if voter {
            voters.insert(id);
        } else {
            learners.insert(id);
        }
    }
    (voters, learners)
}

/// `taskswarm cluster add-node`: learner, catch up, voter, in one request.
#[utoipa::path(post, path = "/v1/cluster/nodes", tag = "cluster", request_body = api::AddNodeRequest, responses((status = 200, description = "The node is a voter", body = api::ClusterStatus), (status = 409, description = "`refused`: already a voter, or it did not catch up in time (it stays a learner)", body = api::ErrorBody)))]
pub async fn add_node(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::AddNodeRequest>,
) -> Result<Json<api::ClusterStatus>, ApiError> {
    let catch_up_ms = req.catch_up_ms.unwrap_or(CATCH_UP_MS_DEFAULT);
    if catch_up_ms > CATCH_UP_MS_MAX {
        return Err(ApiError::BadRequest(format!(
            "catch_up_ms must be at most {CATCH_UP_MS_MAX}"
        )));
    }
    let (voters, _) = members(&node);
    membership_plan::add(&voters, req.id).map_err(|e| ApiError::Refused(e.to_string()))?;
    node.add_voter(req.id, req.addr, Duration::from_millis(catch_up_ms))
        .await?;
    Ok(status_of(&node, false))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveParams {
    /// Remove even if fewer than 3 voters would be left.
    #[serde(default)]
    force: bool,
}

/// `taskswarm cluster remove-node`: a voter leaves through joint consensus (a removed
/// leader steps down once the change is committed), a learner simply goes.
#[utoipa::path(delete, path = "/v1/cluster/nodes/{id}", tag = "cluster", params(("id" = u64, Path, description = "Node id"), RemoveParams), responses((status = 200, description = "The membership without the node", body = api::ClusterStatus), (status = 409, description = "`refused`: not a member, the last voter, or fewer than 3 voters would be left without `force`", body = api::ErrorBody)))]
pub async fn remove_node(
    State(node): State<Arc<Node>>,
    id: Result<axum::extract::Path<u64>, axum::extract::rejection::PathRejection>,
    params: Result<axum::extract::Query<RemoveParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::ClusterStatus>, ApiError> {
    let id = super::params::path_id(id)?;
    let force = super::params::query(params)?.force;
    let (voters, learners) = members(&node);
    membership_plan::remove(&voters, &learners, id, force)
        .map_err(|e| ApiError::Refused(e.to_string()))?;
    node.remove_member(id, voters.contains(&id)).await?;
    Ok(status_of(&node, false))
}

#[utoipa::path(post, path = "/v1/cluster/membership", tag = "cluster", request_body = api::MembershipRequest, responses((status = 200, body = api::ClusterStatus), (status = 409, description = "`refused`", body = api::ErrorBody)))]
pub async fn membership(
    State(node): State<Arc<Node>>,
    Body(req): Body<api::MembershipRequest>,
) -> Result<Json<api::ClusterStatus>, ApiError> {
    if req.voters.is_empty() {
        return Err(ApiError::BadRequest("voters must not be empty".into()));
    }
    node.change_membership(req.voters.into_iter().collect())
        .await?;
    Ok(status_of(&node, false))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process serves HTTP (no credentials needed)", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: this node can serve writes now (a leader with a quorum, or a follower whose
/// leader was heard within a lease) and has applied what is in its log. A leader cut off
/// from the majority is not ready: its writes answer `no_quorum`.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "Ready to serve writes (no credentials needed)", body = String, content_type = "text/plain"), (status = 503, description = "Not ready, and why", body = String, content_type = "text/plain")))]
pub async fn readyz(State(node): State<Arc<Node>>) -> (StatusCode, String) {
    let s = node.status();
    let view = ReadyView {
        is_leader: s.is_leader,
        quorum_ok: node.check_quorum().is_ok(),
        fresh_leader_known: matches!(node.leadership(), Leadership::Follower { leader: Some(_) }),
        applied_index: s.applied_index,
        last_log_index: s.last_log_index,
    };
    match readiness(&view) {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// What readiness is decided on.
#[derive(Debug, Clone, Copy)]
struct ReadyView {
    is_leader: bool,
    quorum_ok: bool,
    fresh_leader_known: bool,
    applied_index: u64,
    last_log_index: u64,
}

fn readiness(v: &ReadyView) -> Result<(), &'static str> {
    if v.is_leader && !v.quorum_ok {
        return Err("leader without a quorum");
    }
    if !v.is_leader && !v.fresh_leader_known {
        return Err("no leader heard from");
    }
    // One entry of slack: the entry being applied right now.
    if v.applied_index < v.last_log_index.saturating_sub(1) {
        return Err("still applying its log");
    }
    Ok(())
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<super::AppState>) -> impl IntoResponse {
    let node = &app.node;
    let s = node.status();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_term gauge\ntaskswarm_raft_term {}",
        s.term
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_is_leader gauge\ntaskswarm_raft_is_leader {}",
        u8::from(s.is_leader)
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_leader_id gauge\ntaskswarm_raft_leader_id {}",
        s.leader.map_or(-1, |l| l as i64)
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_last_log_index gauge\ntaskswarm_raft_last_log_index {}",
        s.last_log_index
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_applied_index gauge\ntaskswarm_raft_applied_index {}",
        s.applied_index
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_snapshot_index gauge\ntaskswarm_raft_snapshot_index {}",
        s.snapshot_index
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_purged_index gauge\ntaskswarm_raft_purged_index {}",
        s.purged_index
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_entries_proposed_total counter\ntaskswarm_entries_proposed_total {}",
        s.entries_proposed
    );
    let appends = node.appends_received();
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_appends_streamed_total counter\ntaskswarm_raft_appends_streamed_total {}",
        appends.streamed.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_raft_appends_posted_total counter\ntaskswarm_raft_appends_posted_total {}",
        appends.posted.load(Ordering::Relaxed)
    );
    let disk = node.disk_space();
    if let Some(free) = disk.free_bytes() {
        let _ = writeln!(
            out,
            "# TYPE taskswarm_disk_free_bytes gauge\ntaskswarm_disk_free_bytes {free}"
        );
    }
    let _ = writeln!(
        out,
        "# TYPE taskswarm_storage_full gauge\ntaskswarm_storage_full {}",
        u8::from(disk.is_full())
    );
    let _ = writeln!(
        out,
        "# TYPE taskswarm_commands_proposed_total counter\ntaskswarm_commands_proposed_total {}",
        s.commands_proposed
    );
    let _ = writeln!(out, "# TYPE taskswarm_tasks gauge");
    let sm = node.state();
    for (queue, info) in sm.queues() {
        for state in TaskState::ALL {
            let _ = writeln!(
                out,
                "taskswarm_tasks{{queue=\"{queue}\",state=\"{}\"}} {}",
                state.as_str(),
                info.counts.get(state)
            );
        }
    }
    drop(sm);
    render_snapshot_figures(&node.snapshot_report(), &mut out);
    if let Some(bytes) = resident_bytes() {
        let _ = writeln!(
            out,
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}"
        );
    }
    let _ = writeln!(
        out,
        "# TYPE taskswarm_log_memtable_bytes gauge\ntaskswarm_log_memtable_bytes {}",
        node.log_memtable_bytes()
    );
    app.metrics.render(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

fn render_snapshot_figures(r: &crate::storage::SnapshotReport, out: &mut String) {
    let gauges = [
        ("snapshot_builds_total", "counter", r.builds),
        // Applies waited this long for the last build (the view under the state lock).
        ("snapshot_last_view_ms", "gauge", r.last.view_ms),
        ("snapshot_last_encode_ms", "gauge", r.last.encode_ms),
        ("snapshot_last_write_ms", "gauge", r.last.write_ms),
        ("snapshot_last_bytes", "gauge", r.last.bytes),
        ("snapshot_last_tasks", "gauge", r.last.tasks),
        ("snapshot_restore_ms", "gauge", r.restore_ms),
    ];
    for (name, kind, value) in gauges {
        let _ = writeln!(
            out,
            "# TYPE taskswarm_{name} {kind}\ntaskswarm_{name} {value}"
        );
    }
}

/// This process's resident memory (Linux: `VmRSS` of /proc/self/status); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: ReadyView = ReadyView {
        is_leader: true,
        quorum_ok: true,
        fresh_leader_known: false,
        applied_index: 10,
        last_log_index: 10,
    };

    #[test]
    fn a_leader_with_a_quorum_or_a_follower_with_a_fresh_leader_is_ready() {
        assert_eq!(readiness(&READY), Ok(()));
        let follower = ReadyView {
            is_leader: false,
            quorum_ok: false,
            fresh_leader_known: true,
            ..READY
        };
        assert_eq!(readiness(&follower), Ok(()));
    }

    #[test]
    fn a_leader_cut_off_from_the_majority_is_not_ready() {
        let cut_off = ReadyView {
            quorum_ok: false,
            ..READY
        };
        assert_eq!(readiness(&cut_off), Err("leader without a quorum"));
    }

    #[test]
    fn a_follower_without_a_leader_or_behind_its_log_is_not_ready() {
        let alone = ReadyView {
            is_leader: false,
            ..READY
        };
        assert_eq!(readiness(&alone), Err("no leader heard from"));
        let behind = ReadyView {
            applied_index: 5,
            ..READY
        };
        assert_eq!(readiness(&behind), Err("still applying its log"));
    }
}
