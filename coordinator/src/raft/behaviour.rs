//! Raising the cluster's behaviour version (see the state machine's `behaviour.rs`).
//!
//! Every Raft RPC answer carries the answering node's accepted maximum in a header, so
//! the leader learns each member's from its own heartbeats, with no extra request. The
//! leader's ticker proposes `RaiseBehaviour` once every member (voters and learners: both
//! apply the log) has reported recently that it accepts a higher version than the
//! cluster's. A member that is down, or has not answered lately, holds the raise back: it
//! may come back on an old build.
//!
//! A member may still be swapped for an older build between its last report and the
//! raise (etcd has the same window). That node then stops when it reaches the raise
//! (`storage::behaviour_unsupported`) instead of applying entries differently.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use taskswarm_state_machine::BEHAVIOUR_VERSION_FIRST;

use crate::types::NodeId;

/// The header on every Raft RPC answer: the highest behaviour version the answering node
/// accepts. Builds from before behaviour versions do not send it: they accept version 1.
pub const BEHAVIOUR_MAX_HEADER: &str = "x-taskswarm-behaviour-max";

/// A member's report counts for a raise only this long. Heartbeats refresh it every
/// heartbeat interval (100 ms by default); a node restarted on another build reports
/// again at its first answer.
pub const REPORT_FRESH_MS: u64 = 3_000;

/// What one member last said it accepts, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub max: u32,
    pub at: Instant,
}

/// The reports this node has heard, by member. Written by the Raft network on each
/// answer, read by the leader's ticker.
#[derive(Debug, Default)]
pub struct BehaviourReports {
    reports: parking_lot::Mutex<BTreeMap<NodeId, Report>>,
}

impl BehaviourReports {
    /// Records an answer's header (`None`: a build from before behaviour versions).
    pub fn record(&self, node: NodeId, header: Option<&[u8]>, at: Instant) {
        let max = header.map_or(Some(BEHAVIOUR_VERSION_FIRST), parse);
        let Some(max) = max else {
            tracing::warn!(node, "unreadable {BEHAVIOUR_MAX_HEADER} header; ignored");
            return;
        };
        self.reports.lock().insert(node, Report { max, at });
    }

    pub fn get(&self) -> BTreeMap<NodeId, Report> {
        self.reports.lock().clone()
    }
}

fn parse(header: &[u8]) -> Option<u32> {
    std::str::from_utf8(header)
        .ok()?
        .parse()
        .ok()
        .filter(|v| *v >= 1)
}

/// The highest version every member accepts, or `None` while any member other than this
/// node has no fresh report. `own_max` is this node's own accepted maximum.
pub fn supported_by_all(
    own: NodeId,
    own_max: u32,
    members: impl IntoIterator<Item = NodeId>,
    reports: &BTreeMap<NodeId, Report>,
    now: Instant,
) -> Option<u32> {
    let fresh = Duration::from_millis(REPORT_FRESH_MS);
    let mut lowest = own_max;
    for member in members {
        if member == own {
            continue;
        }
        let report = reports.get(&member)?;
        if now.saturating_duration_since(report.at) > fresh {
            return None;
        }
        lowest = lowest.min(report.max);
    }
    Some(lowest)
}

/// The version to raise the cluster to, if any: only up, and only to what all accept.
pub fn raise_to(cluster: u32, supported_by_all: Option<u32>) -> Option<u32> {
    supported_by_all.filter(|v| *v > cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(at: Instant, maxes: &[(NodeId, u32)]) -> BTreeMap<NodeId, Report> {
        maxes
            .iter()
            .map(|(id, max)| (*id, Report { max: *max, at }))
            .collect()
    }

    #[test]
    fn every_member_must_accept_the_version() {
        let now = Instant::now();
        let r = reports(now, &[(2, 3), (3, 2)]);
        assert_eq!(supported_by_all(1, 3, [1, 2, 3], &r, now), Some(2));
        assert_eq!(supported_by_all(1, 1, [1, 2, 3], &r, now), Some(1));
        assert_eq!(raise_to(1, Some(2)), Some(2));
        assert_eq!(raise_to(2, Some(2)), None);
        assert_eq!(raise_to(3, Some(2)), None, "never down");
    }

    #[test]
    fn a_member_without_a_fresh_report_holds_the_raise_back() {
        let then = Instant::now();
        let now = then + Duration::from_millis(REPORT_FRESH_MS + 1);
        let mut r = reports(then, &[(2, 3)]);
        assert_eq!(supported_by_all(1, 3, [1, 2], &r, now), None, "stale");
        assert_eq!(
            supported_by_all(1, 3, [1, 2, 3], &r, then),
            None,
            "never heard"
        );
        r.insert(2, Report { max: 3, at: now });
        assert_eq!(supported_by_all(1, 3, [1, 2], &r, now), Some(3));
        assert_eq!(supported_by_all(1, 3, [1], &r, now), Some(3), "alone");
    }

    #[test]
    fn an_answer_without_the_header_is_a_build_from_before_versions() {
        let reports = BehaviourReports::default();
        let now = Instant::now();
        reports.record(2, None, now);
        reports.record(3, Some(b"2"), now);
        reports.record(4, Some(b"x"), now);
        reports.record(5, Some(b"0"), now);
        let got = reports.get();
        assert_eq!(got[&2].max, 1);
        assert_eq!(got[&3].max, 2);
        assert!(!got.contains_key(&4) && !got.contains_key(&5));
    }
}
