//! The harness's view of a node over the bridge: its status (`GET /v1/cluster`).

use std::time::Duration;

pub use taskswarm_api::ClusterStatus;

/// A status probe to a paused or partitioned node must not hold the harness up.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The node's status, or `None` when it does not answer in time. Without its state hash:
/// the hash costs the node a full encode of its state, and leader polling asks often.
pub async fn status(http: &reqwest::Client, url: &str) -> Option<ClusterStatus> {
    get_status(http, &format!("{url}/v1/cluster")).await
}

/// The node's status with its state hash, for convergence checks.
pub async fn status_with_hash(http: &reqwest::Client, url: &str) -> Option<ClusterStatus> {
    get_status(http, &format!("{url}/v1/cluster?state_hash=true")).await
}

async fn get_status(http: &reqwest::Client, url: &str) -> Option<ClusterStatus> {
    let resp = http.get(url).timeout(PROBE_TIMEOUT).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}
