//! The leader's ticker: proposes a `tick` when the state machine says something is due
//! (a lease expiry, a timeout, a scheduled task, a retention drop). Followers never tick;
//! they apply the leader's ticks, so every node expires the same leases at the same point
//! of the log.

use std::sync::Weak;
use std::time::Duration;

use taskswarm_state_machine::Command;

use super::clock::wall_ms;
use super::node::{Leadership, Node};

/// How often the ticker looks, at most. Due times are checked against the clocks at
/// each look, so a lease expires at most this late (plus one commit).
pub const TICK_POLL_MS: u64 = 25;

pub(crate) async fn run(node: Weak<Node>) {
    let mut interval = tokio::time::interval(Duration::from_millis(TICK_POLL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<(u64, Leadership)> = None;
    loop {
        interval.tick().await;
        let Some(node) = node.upgrade() else { return };
        let now = (node.term(), node.leadership());
        if seen.as_ref() != Some(&now) {
            match &now.1 {
                Leadership::Leader => tracing::info!(node = node.id(), term = now.0, "leading"),
                Leadership::Follower {
                    leader: Some((id, _)),
                } => tracing::info!(node = node.id(), term = now.0, leader = id, "following"),
                Leadership::Follower { leader: None } => {
                    tracing::info!(node = node.id(), term = now.0, "no leader known")
                }
            }
            seen = Some(now.clone());
        }
        if now.1 != Leadership::Leader {
            continue;
        }
        let (desired, replicated) = (node.desired_config(), node.state().config());
        if desired != replicated {
            tracing::info!(
                node = node.id(),
                ?replicated,
                ?desired,
                "replicating this leader's settings"
            );
            let command = Command::Configure {
                retention_ms: desired.retention_ms,
                tasks_max: desired.tasks_max,
            };
            if let Err(e) = node.propose(command).await {
                tracing::debug!(error = %e, "configure not applied");
            }
        }
        let (due, applied_wall_ms) = {
            let sm = node.state();
            (sm.next_due(), sm.wall_ms())
        };
        // The state machine promotes by the largest wall time it has applied; a new
        // leader whose clock is behind still ticks for what that time made due.
        if due.is_due(node.cluster_now(), wall_ms().max(applied_wall_ms)) {
            // Waiting for the result keeps at most one tick in flight.
            if let Err(e) = node.propose(Command::Tick).await {
                tracing::debug!(error = %e, "tick not applied");
            }
        }
    }
}
