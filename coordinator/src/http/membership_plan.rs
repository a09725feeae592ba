//! The rules of `taskswarm cluster add-node` / `remove-node`, as pure functions of the
//! current membership: what the voters become, or why the change is refused.

use std::collections::BTreeSet;

/// Fewer voters than this survive no failure; removing below it needs `force`.
pub const VOTERS_MIN: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    AlreadyVoter(u64),
    NotMember(u64),
    TooFewVoters { left: usize },
    LastVoter,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::AlreadyVoter(id) => write!(f, "node {id} is already a voter"),
            PlanError::NotMember(id) => write!(f, "node {id} is not a member"),
            PlanError::TooFewVoters { left } => write!(
                f,
                "removing it would leave {left} voter(s), fewer than {VOTERS_MIN}: a cluster that small survives no failure; pass force to do it anyway"
            ),
            PlanError::LastVoter => write!(f, "the last voter cannot be removed"),
        }
    }
}

/// The voters after adding `id` (once it has caught up as a learner).
pub fn add(voters: &BTreeSet<u64>, id: u64) -> Result<BTreeSet<u64>, PlanError> {
    if voters.contains(&id) {
        return Err(PlanError::AlreadyVoter(id));
    }
    let mut next = voters.clone();
    next.insert(id);
    Ok(next)
}

/// The voters after removing `id` (a voter or a learner).
pub fn remove(
    voters: &BTreeSet<u64>,
    learners: &BTreeSet<u64>,
    id: u64,
    force: bool,
) -> Result<BTreeSet<u64>, PlanError> {
    if learners.contains(&id) {
        return Ok(voters.clone());
    }
    if !voters.contains(&id) {
        return Err(PlanError::NotMember(id));
    }
    let left = voters.len() - 1;
    if left == 0 {
        return Err(PlanError::LastVoter);
    }
    if left < VOTERS_MIN && !force {
        return Err(PlanError::TooFewVoters { left });
    }
    let mut next = voters.clone();
    next.remove(&id);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn adding() {
        assert_eq!(add(&set(&[1, 2, 3]), 4), Ok(set(&[1, 2, 3, 4])));
        assert_eq!(add(&set(&[1, 2, 3]), 2), Err(PlanError::AlreadyVoter(2)));
    }

    #[test]
    fn removing() {
        let none = set(&[]);
        assert_eq!(
            remove(&set(&[1, 2, 3, 4, 5]), &none, 5, false),
            Ok(set(&[1, 2, 3, 4]))
        );
        assert_eq!(
            remove(&set(&[1, 2, 3, 4]), &none, 1, false),
            Ok(set(&[2, 3, 4]))
        );
        assert_eq!(
            remove(&set(&[1, 2, 3]), &none, 1, false),
            Err(PlanError::TooFewVoters { left: 2 })
        );
        assert_eq!(remove(&set(&[1, 2, 3]), &none, 1, true), Ok(set(&[2, 3])));
        assert_eq!(
            remove(&set(&[1]), &none, 1, true),
            Err(PlanError::LastVoter)
        );
        assert_eq!(
            remove(&set(&[1, 2, 3]), &none, 9, true),
            Err(PlanError::NotMember(9))
        );
        // A learner goes without touching the voters.
        assert_eq!(
            remove(&set(&[1, 2, 3]), &set(&[4]), 4, false),
            Ok(set(&[1, 2, 3]))
        );
    }
}
