//! Lease grants seen by clients (ok claims), indexed by task: shared by fencing and
//! coverage, which both need "was a newer lease on this task acknowledged before t?".

use std::collections::BTreeMap;

use crate::ops::Operation;

/// The error code of a refused stale token.
pub const LEASE_LOST: &str = taskswarm_api::codes::LEASE_LOST;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub task: u64,
    pub token: u64,
    /// History positions of the claim's invoke and ok.
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Default)]
pub struct Grants {
    pub all: Vec<Grant>,
    by_task: BTreeMap<u64, Vec<Grant>>,
}

impl Grants {
    pub fn new(ops: &[Operation<'_>]) -> Self {
        let mut grants = Grants::default();
        for op in ops
            .iter()
            .filter(|op| op.is_ok() && op.f == crate::history::F::Claim)
        {
            for c in op
                .result()
                .and_then(|v| v.claimed.as_deref())
                .unwrap_or_default()
            {
                let g = Grant {
                    task: c.task,
                    token: c.token,
                    start: op.start(),
                    end: op.end(),
                };
                grants.all.push(g);
                grants.by_task.entry(c.task).or_default().push(g);
            }
        }
        grants
    }

    pub fn of_task(&self, task: u64) -> &[Grant] {
        self.by_task.get(&task).map_or(&[], Vec::as_slice)
    }

    pub fn tasks(&self) -> impl Iterator<Item = (&u64, &Vec<Grant>)> {
        self.by_task.iter()
    }

    /// The largest-token grant of `task` with a token above `token` whose ok came before
    /// history position `at`: its existence makes `token` provably stale at `at`.
    pub fn newer_before(&self, task: u64, token: u64, at: u64) -> Option<Grant> {
        self.of_task(task)
            .iter()
            .filter(|g| g.token > token && g.end < at)
            .max_by_key(|g| g.token)
            .copied()
    }

    /// A lease operation that used a stale token: provably (a newer lease was granted
    /// first) or as the cluster said (`lease_lost`, e.g. after an expiry with no re-claim).
    pub fn is_stale_attempt(&self, op: &Operation<'_>) -> bool {
        let (Some(task), Some(token)) = (op.task(), op.token()) else {
            return false;
        };
        op.f.is_lease_op()
            && (self.newer_before(task, token, op.start()).is_some()
                || op.error() == Some(LEASE_LOST))
    }
}
