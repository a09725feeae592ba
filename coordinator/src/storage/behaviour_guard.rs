//! A node never applies entries under a behaviour version it does not accept (its build's
//! maximum, or a lower `--behaviour-version-max`): it refuses to start on such a state,
//! and stops when it reaches a raise past its maximum, instead of applying the entries
//! that follow differently from the other replicas. Its data stays as it was; a build
//! that supports the version starts from it.

use taskswarm_state_machine::{behaviour_supported, BEHAVIOUR_VERSION_MAX};

/// The cluster's state needs a behaviour version this node does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the cluster applies behaviour version {cluster}, and this node accepts at most {accepted_max} \
     ({why}): start it with a build that supports version {cluster} \
     (see deploy/README.md, \"Rolling upgrade\")",
    why = if *accepted_max < BEHAVIOUR_VERSION_MAX { "--behaviour-version-max" } else { "this build's highest" }
)]
pub struct Unsupported {
    pub cluster: u32,
    pub accepted_max: u32,
}

pub fn check(cluster: u32, accepted_max: u32) -> Result<(), Unsupported> {
    if behaviour_supported(accepted_max, cluster) {
        Ok(())
    } else {
        Err(Unsupported {
            cluster,
            accepted_max,
        })
    }
}

/// Ends the process: the node cannot follow the log. Everything applied so far came from
/// the durable log and snapshot, so nothing is lost; the next start refuses with the
/// same message until the build is replaced.
pub fn stop(why: Unsupported) -> ! {
    tracing::error!(%why, "stopping");
    eprintln!("taskswarm: {why}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_accepts_versions_up_to_its_maximum_and_says_why_not_past_it() {
        assert!(check(1, 1).is_ok());
        assert!(check(BEHAVIOUR_VERSION_MAX, BEHAVIOUR_VERSION_MAX).is_ok());
        let past = check(BEHAVIOUR_VERSION_MAX + 1, BEHAVIOUR_VERSION_MAX).unwrap_err();
        assert!(past.to_string().contains("this build's highest"), "{past}");
        if BEHAVIOUR_VERSION_MAX > 1 {
            let pinned = check(BEHAVIOUR_VERSION_MAX, 1).unwrap_err();
            assert!(
                pinned.to_string().contains("--behaviour-version-max"),
                "{pinned}"
            );
        }
    }
}
