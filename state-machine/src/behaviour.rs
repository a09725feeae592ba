//! Behaviour versions: how entries are applied, as a number that lives in the replicated
//! state (etcd's cluster version, CockroachDB's version gates, RabbitMQ's feature flags).
//!
//! A change in how `apply` treats an entry would make replicas on an old and a new build
//! disagree, so every such change is gated on the cluster's behaviour version, never on
//! the build: a new build applies entries exactly as the old one did until the leader has
//! raised the version (a `RaiseBehaviour` entry), which it does only once every member
//! reports a build that supports the new version. A node whose build cannot apply the
//! cluster's version stops instead of diverging (the coordinator checks
//! [`supports`] at start and after each entry).
//!
//! The versions:
//! - 1: every build before versions existed (snapshot format 3 and older). A new
//!   cluster starts here and is raised as soon as all members support more.
//! - 2: a progress report equal to the task's current progress records nothing: no
//!   history line and no event. At version 1 each report was a line, so a worker that
//!   resent its progress with every heartbeat pushed the task's `enqueued` and `claimed`
//!   lines out of the bounded history within 64 heartbeats. (A task's history stays
//!   append-only: its event stream numbers events by their place in it and resumes from
//!   that number.)
//! - 3: exists only in test builds (feature `next-behaviour`, binary `taskswarm-next`),
//!   to exercise an upgrade across a version with two real builds: a task's history
//!   does not keep its `enqueued` line.

/// The version of a state that predates versions, and of a new cluster.
pub const BEHAVIOUR_VERSION_FIRST: u32 = 1;

/// The highest behaviour version this build can apply.
#[cfg(not(feature = "next-behaviour"))]
pub const BEHAVIOUR_VERSION_MAX: u32 = 2;
/// The highest behaviour version this build can apply (test build: one past the release).
#[cfg(feature = "next-behaviour")]
pub const BEHAVIOUR_VERSION_MAX: u32 = 3;

/// Whether a build that applies versions up to `build_max` can apply a state at `cluster`.
pub fn supports(build_max: u32, cluster: u32) -> bool {
    cluster <= build_max
}

/// What a version turns on. One function per gate, so `apply` reads as the rule it follows
/// and a grep finds every place a version matters.
pub(crate) mod gate {
    /// Version 2: a progress report that changes nothing records nothing.
    pub(crate) fn unchanged_progress_is_silent(version: u32) -> bool {
        version >= 2
    }

    /// Version 3 (test builds only): the `enqueued` line is not kept in the history.
    pub(crate) fn history_skips_enqueued(version: u32) -> bool {
        cfg!(feature = "next-behaviour") && version >= 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_supports_every_version_up_to_its_own() {
        assert!(supports(BEHAVIOUR_VERSION_MAX, BEHAVIOUR_VERSION_FIRST));
        assert!(supports(BEHAVIOUR_VERSION_MAX, BEHAVIOUR_VERSION_MAX));
        assert!(!supports(BEHAVIOUR_VERSION_MAX, BEHAVIOUR_VERSION_MAX + 1));
    }

    #[test]
    fn gates_open_at_their_version() {
        assert!(!gate::unchanged_progress_is_silent(1));
        assert!(gate::unchanged_progress_is_silent(2));
        assert!(!gate::history_skips_enqueued(2));
    }
}
