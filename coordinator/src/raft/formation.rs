//! Whether this node forms a new cluster on its first start.
//!
//! The lowest id in `--peers` forms the cluster when it starts with an empty log. A node
//! that replaces a dead one with an empty disk also starts with an empty log, and with the
//! same flags the lowest id would form a second cluster beside the first (with a cluster
//! id of its own, so the two refuse each other: safe, but the node never rejoins). So it
//! forms one only if none of its peers is already serving (`/readyz` answers 200: it
//! follows a leader and has applied its log), and never with `--join`; otherwise it waits
//! to be added with `taskswarm cluster add-node`.

use std::time::Duration;

use crate::types::NodeId;

/// Longest wait for one peer's `/readyz` (peers are asked in parallel).
pub const PEER_PROBE_MS: u64 = 1_000;

/// Why this node does not form a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// `--join`: it never does.
    Join,
    /// These peers already serve a cluster.
    PeersServing(Vec<NodeId>),
}

/// The decision, given `--join` and the peers whose `/readyz` answered 200.
pub fn decide(join: bool, ready_peers: Vec<NodeId>) -> Result<(), Wait> {
    if join {
        Err(Wait::Join)
    } else if !ready_peers.is_empty() {
        Err(Wait::PeersServing(ready_peers))
    } else {
        Ok(())
    }
}

/// The peers (other than `own`) whose `/readyz` answers 200 within [`PEER_PROBE_MS`].
pub async fn ready_peers(
    own: NodeId,
    peers: &std::collections::BTreeMap<NodeId, String>,
) -> Vec<NodeId> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(PEER_PROBE_MS))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client without TLS builds");
    let probes = peers
        .iter()
        .filter(|(id, _)| **id != own)
        .map(|(id, addr)| {
            let http = http.clone();
            let url = format!("{}/readyz", addr.trim_end_matches('/'));
            async move {
                let ready = http
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                ready.then_some(*id)
            }
        });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_node_forms_a_cluster_only_when_no_peer_serves_one() {
        assert_eq!(decide(false, vec![]), Ok(()));
        assert_eq!(decide(false, vec![2]), Err(Wait::PeersServing(vec![2])));
        assert_eq!(decide(true, vec![]), Err(Wait::Join));
    }
}
