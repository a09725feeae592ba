//! When a learner has caught up enough to be made a voter.
//!
//! openraft's own check (`add_learner` with `blocking`) compares the learner with its
//! `replication_lag_threshold` (5000 entries) and counts a learner that never answered as
//! matched at 0: on a log shorter than that it reported a node that could not even talk
//! to the cluster as caught up, and add-node made it a voter that could never vote. The
//! rule here: the leader has replicated to it every entry it had when the node was added.

use std::collections::BTreeMap;

use crate::types::{LogId, NodeId};

/// Whether `id` has matched the leader's log up to `target`, by the leader's replication
/// metrics (`None` when this node does not lead).
pub fn caught_up(
    replication: Option<&BTreeMap<NodeId, Option<LogId>>>,
    id: NodeId,
    target: u64,
) -> bool {
    replication
        .and_then(|r| r.get(&id))
        .copied()
        .flatten()
        .is_some_and(|matched| matched.index >= target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    #[test]
    fn a_learner_is_caught_up_once_it_matched_the_target() {
        let mut r = BTreeMap::new();
        assert!(!caught_up(None, 4, 10), "not leading");
        assert!(!caught_up(Some(&r), 4, 10), "not replicating to it");
        r.insert(4, None);
        assert!(!caught_up(Some(&r), 4, 10), "never answered");
        r.insert(4, Some(log_id(9)));
        assert!(!caught_up(Some(&r), 4, 10));
        r.insert(4, Some(log_id(10)));
        assert!(caught_up(Some(&r), 4, 10));
        assert!(caught_up(Some(&r), 4, 0) && !caught_up(Some(&r), 5, 0));
    }
}
