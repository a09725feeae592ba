//! `claim`: lease up to `max` ready tasks to a worker.
//!
//! The choice is deterministic: among the named queues that are not paused, and the kinds
//! allowed, the highest priority first, FIFO within a priority. Each claimed task gets a
//! fresh fencing token and a lease measured in cluster time.

use std::sync::Arc;

use crate::command::Claim;
use crate::limits;
use crate::machine::{ReadyKey, StateMachine};
use crate::outcome::{ClaimedTask, CommandResult, Reply};
use crate::task::{EventKind, Lease, TaskState};
use crate::validate;

impl StateMachine {
    pub(crate) fn claim(&mut self, claim: &Claim) -> CommandResult {
        validate_claim(claim)?;
        let sets = self.candidate_sets(claim);
        let mut claimed = Vec::new();
        while claimed.len() < claim.max as usize {
            let Some(key) = self.best_ready(&sets, claim.min_priority) else {
                break;
            };
            // A timeout may have passed since the last tick: fire it instead of handing
            // out a task that is already expired.
            if self.fire_overdue(key.id).is_some() {
                continue;
            }
            claimed.push(self.start_attempt(key, &claim.worker, claim.lease_ms));
        }
        Ok(Reply::Claimed(claimed))
    }

    /// Whether `claim` would get at least one task now. Lets the leader long-poll without
    /// proposing empty claims to Raft. (A task whose timeout passed but has not fired yet
    /// may make this say yes while the claim then returns nothing; the caller just waits
    /// again.)
    pub fn claimable(&self, claim: &Claim) -> bool {
        let sets = self.candidate_sets(claim);
        self.best_ready(&sets, claim.min_priority).is_some()
    }

    /// The ready sets a claim may take from: (queue, kind) keys, paused queues left out.
    fn candidate_sets(&self, claim: &Claim) -> Vec<(Arc<str>, Arc<str>)> {
        let mut sets = Vec::new();
        for queue in &claim.queues {
            if self.paused.contains(queue) {
                continue;
            }
            match &claim.kinds {
                Some(kinds) => {
                    for kind in kinds {
                        let key = (Arc::from(queue.as_str()), Arc::from(kind.as_str()));
                        if self.ready.contains_key(&key) {
                            sets.push(key);
                        }
                    }
                }
                None => {
                    let from = (Arc::from(queue.as_str()), Arc::from(""));
                    sets.extend(
                        self.ready
                            .range(from..)
                            .take_while(|(k, _)| *k.0 == **queue)
                            .map(|(k, _)| k.clone()),
                    );
                }
            }
        }
        sets.sort();
        sets.dedup();
        sets
    }

    /// The best head among the candidate sets, if any qualifies.
    fn best_ready(
        &self,
        sets: &[(Arc<str>, Arc<str>)],
        min_priority: Option<i32>,
    ) -> Option<ReadyKey> {
        sets.iter()
            .filter_map(|key| self.ready.get(key).and_then(|set| set.first()).copied())
            .filter(|head| min_priority.is_none_or(|min| head.priority() >= min))
            .min()
    }

    fn start_attempt(&mut self, key: ReadyKey, worker: &str, lease_ms: Option<u64>) -> ClaimedTask {
        let id = key.id;
        let token = self.alloc_token();
        let now = self.cluster_ms;
        let lease_ms = lease_ms.unwrap_or(self.tasks[&id].lease_ms);
        let expires = now.saturating_add(lease_ms);
        self.update(id, |t| {
            assert_eq!(t.state, TaskState::Queued, "only a queued task is claimed");
            assert!(
                t.attempt < t.max_attempts,
                "a queued task has an attempt left"
            );
            t.state = TaskState::Running;
            t.attempt += 1;
            t.ready_seq = 0;
            t.set_last_token(token);
            t.lease = Some(Box::new(Lease {
                worker: worker.to_owned(),
                token,
                lease_ms,
                expires_cluster_ms: expires,
                started_cluster_ms: now,
            }));
        });
        let t = &self.tasks[&id];
        let claimed = ClaimedTask {
            id,
            queue: t.queue.to_string(),
            kind: t.kind.to_string(),
            payload: t.payload.to_string(),
            priority: t.priority,
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            token,
            lease_ms,
            expires_cluster_ms: expires,
            group: t.rare.group.clone(),
        };
        self.emit(
            id,
            EventKind::Claimed {
                worker: worker.to_owned(),
                token,
                attempt: claimed.attempt,
            },
        );
        claimed
    }
}

impl Claim {
    /// The checks `apply` makes, for callers that want them before proposing (a long-poll
    /// that finds nothing to claim still owes the client its `invalid_request`).
    pub fn validate(&self) -> Result<(), crate::outcome::Rejection> {
        validate_claim(self)
    }
}

pub(crate) fn validate_claim(claim: &Claim) -> Result<(), crate::outcome::Rejection> {
    validate::key("worker", &claim.worker)?;
    validate::batch("queues", claim.queues.len(), limits::CLAIM_QUEUES_MAX)?;
    if claim.queues.is_empty() {
        return Err(crate::outcome::Rejection::invalid(
            "queues",
            "must name at least one queue",
        ));
    }
    for q in &claim.queues {
        validate::name("queues", q)?;
    }
    if let Some(kinds) = &claim.kinds {
        validate::batch("kinds", kinds.len(), limits::CLAIM_KINDS_MAX)?;
        for k in kinds {
            validate::name("kinds", k)?;
        }
    }
    validate::range("max", claim.max, 1, limits::CLAIM_MAX)?;
    if let Some(ms) = claim.lease_ms {
        validate::lease_ms(ms)?;
    }
    if let Some(p) = claim.min_priority {
        validate::range(
            "min_priority",
            p,
            limits::PRIORITY_MIN,
            limits::PRIORITY_MAX,
        )?;
    }
    Ok(())
}
