//! `raise_behaviour`: move the cluster to a higher behaviour version (`behaviour.rs`).
//!
//! Only the leader proposes it, once every member's build supports the version. The
//! version never goes down: a raise to a version already reached (a second leader that
//! decided the same) changes nothing. The state machine records any version, even one
//! past what this build can apply, because every replica must record the same; the
//! coordinator then stops the node that cannot follow.

use crate::limits;
use crate::machine::StateMachine;
use crate::outcome::{CommandResult, Reply};
use crate::validate;

impl StateMachine {
    pub(crate) fn raise_behaviour(&mut self, version: u32) -> CommandResult {
        validate::range("version", version, 1, limits::BEHAVIOUR_VERSION_LIMIT)?;
        self.behaviour = self.behaviour.max(version);
        Ok(Reply::BehaviourRaised {
            version: self.behaviour,
        })
    }
}
