//! The leader's ticker: proposes a `tick` when the state machine says something is due
//! (a lease expiry, a timeout, a scheduled task, a retention drop). Followers never tick;
//! they apply the leader's ticks, so every node expires the same leases at the same point
//! of the log. The ticker also replicates the leader's settings (`configure`) and raises
//! the cluster's behaviour version once every member accepts a higher one (`behaviour.rs`).

use std::future::Future;
use std::sync::Weak;
use std::time::Duration;

use taskswarm_state_machine::{Command, Config, NextDue};

use super::behaviour;
use super::clock::wall_ms;
use crate::types::NodeId;

/// A node's role as the ticker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Leader,
    Following(NodeId),
    NoLeader,
}

/// What the ticker needs from its node. `Node` implements it (in node.rs), so the
/// ticker does not depend on the node's module.
pub(crate) trait Tickable: Send + Sync + 'static {
    fn node_id(&self) -> NodeId;
    fn term(&self) -> u64;
    fn role(&self) -> Role;
    /// What the ticker reads from the applied state.
    fn look(&self) -> Look;
    /// The highest behaviour version every member accepts, when all have reported
    /// lately (`behaviour::supported_by_all`); `None` without asking when this node
    /// itself accepts nothing above `cluster`.
    fn behaviour_supported(&self, cluster: u32) -> Option<u32>;
    fn desired_config(&self) -> Config;
    /// Cluster time as this node would stamp it now (when leading).
    fn cluster_now(&self) -> u64;
    /// Proposes and waits for the command to apply; the error says why it did not.
    fn propose_command(&self, command: Command) -> impl Future<Output = Result<(), String>> + Send;
}

/// How often the ticker looks, at most. Due times are checked against the clocks at
/// each look, so a lease expires at most this late (plus one commit).
pub const TICK_POLL_MS: u64 = 25;

/// The applied state's part of a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    /// The replicated settings.
    pub config: Config,
    pub due: NextDue,
    /// The largest wall time the state machine has applied.
    pub applied_wall_ms: u64,
    /// The cluster's behaviour version.
    pub behaviour: u32,
}

/// What the ticker sees at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TickView {
    pub is_leader: bool,
    /// The settings this node's flags ask for, and the ones the log has replicated.
    pub desired: Config,
    pub replicated: Config,
    pub due: NextDue,
    /// Cluster time as this leader would stamp it now.
    pub cluster_now_ms: u64,
    pub wall_now_ms: u64,
    /// The largest wall time the state machine has applied.
    pub applied_wall_ms: u64,
    /// The cluster's behaviour version, and the highest every member accepts (`None`
    /// until all have reported lately).
    pub behaviour: u32,
    pub behaviour_supported: Option<u32>,
}

/// What the ticker proposes at one look, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TickPlan {
    /// Replicate this leader's settings first.
    pub configure: Option<Config>,
    /// Raise the cluster's behaviour version to this.
    pub raise_behaviour: Option<u32>,
    pub tick: bool,
}

/// The ticker's decision, without I/O. Only a leader proposes. The state machine
/// promotes scheduled tasks by the largest wall time it has applied, so a new leader
/// whose wall clock is behind still ticks for what that time made due.
pub(crate) fn plan(view: &TickView) -> TickPlan {
    if !view.is_leader {
        return TickPlan::default();
    }
    TickPlan {
        configure: (view.desired != view.replicated).then_some(view.desired),
        raise_behaviour: behaviour::raise_to(view.behaviour, view.behaviour_supported),
        tick: view.due.is_due(
            view.cluster_now_ms,
            view.wall_now_ms.max(view.applied_wall_ms),
        ),
    }
}

pub(crate) async fn run<N: Tickable>(node: Weak<N>) {
    let mut interval = tokio::time::interval(Duration::from_millis(TICK_POLL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<(u64, Role)> = None;
    loop {
        interval.tick().await;
        let Some(node) = node.upgrade() else { return };
        let now = (node.term(), node.role());
        if seen != Some(now) {
            let id = node.node_id();
            match now.1 {
                Role::Leader => tracing::info!(node = id, term = now.0, "leading"),
                Role::Following(leader) => {
                    tracing::info!(node = id, term = now.0, leader, "following")
                }
                Role::NoLeader => tracing::info!(node = id, term = now.0, "no leader known"),
            }
            seen = Some(now);
        }
        if now.1 != Role::Leader {
            continue;
        }
        let look = node.look();
        let replicated = look.config;
        let decided = plan(&TickView {
            is_leader: true,
            desired: node.desired_config(),
            replicated,
            due: look.due,
            cluster_now_ms: node.cluster_now(),
            wall_now_ms: wall_ms(),
            applied_wall_ms: look.applied_wall_ms,
            behaviour: look.behaviour,
            behaviour_supported: node.behaviour_supported(look.behaviour),
        });
        if let Some(desired) = decided.configure {
            tracing::info!(
                node = node.node_id(),
                ?replicated,
                ?desired,
                "replicating this leader's settings"
            );
            let command = Command::Configure {
                retention_ms: desired.retention_ms,
                tasks_max: desired.tasks_max,
            };
            if let Err(e) = node.propose_command(command).await {
                tracing::debug!(error = %e, "configure not applied");
            }
        }
        if let Some(version) = decided.raise_behaviour {
            tracing::info!(
                node = node.node_id(),
                from = look.behaviour,
                to = version,
                "raising the cluster's behaviour version: every member accepts it"
            );
            if let Err(e) = node
                .propose_command(Command::RaiseBehaviour { version })
                .await
            {
                tracing::debug!(error = %e, "behaviour raise not applied");
            }
        }
        if decided.tick {
            // Waiting for the result keeps at most one tick in flight.
            if let Err(e) = node.propose_command(Command::Tick).await {
                tracing::debug!(error = %e, "tick not applied");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> TickView {
        TickView {
            is_leader: true,
            desired: Config::default(),
            replicated: Config::default(),
            due: NextDue::default(),
            cluster_now_ms: 10_000,
            wall_now_ms: 1_700_000_000_000,
            applied_wall_ms: 1_700_000_000_000,
            behaviour: 1,
            behaviour_supported: Some(1),
        }
    }

    #[test]
    fn the_ticker_plan() {
        let other = Config {
            retention_ms: 1,
            ..Config::default()
        };
        let due_cluster = NextDue {
            cluster_ms: Some(10_000),
            wall_ms: None,
        };
        let later_cluster = NextDue {
            cluster_ms: Some(10_001),
            wall_ms: None,
        };
        let cases = [
            ("idle leader", view(), TickPlan::default()),
            (
                "a follower never proposes",
                TickView {
                    is_leader: false,
                    desired: other,
                    due: due_cluster,
                    ..view()
                },
                TickPlan::default(),
            ),
            (
                "a lease due now",
                TickView {
                    due: due_cluster,
                    ..view()
                },
                TickPlan {
                    tick: true,
                    ..TickPlan::default()
                },
            ),
            (
                "not yet due",
                TickView {
                    due: later_cluster,
                    ..view()
                },
                TickPlan::default(),
            ),
            (
                "settings differ",
                TickView {
                    desired: other,
                    ..view()
                },
                TickPlan {
                    configure: Some(other),
                    ..TickPlan::default()
                },
            ),
            (
                "every member accepts a higher behaviour version",
                TickView {
                    behaviour_supported: Some(2),
                    ..view()
                },
                TickPlan {
                    raise_behaviour: Some(2),
                    ..TickPlan::default()
                },
            ),
            (
                "a member has not reported lately",
                TickView {
                    behaviour_supported: None,
                    ..view()
                },
                TickPlan::default(),
            ),
            (
                "a follower never raises",
                TickView {
                    is_leader: false,
                    behaviour_supported: Some(2),
                    ..view()
                },
                TickPlan::default(),
            ),
            (
                "a scheduled task due by the applied wall time, the leader's clock behind",
                TickView {
                    due: NextDue {
                        cluster_ms: None,
                        wall_ms: Some(1_700_000_000_500),
                    },
                    wall_now_ms: 1_700_000_000_000,
                    applied_wall_ms: 1_700_000_000_600,
                    ..view()
                },
                TickPlan {
                    tick: true,
                    ..TickPlan::default()
                },
            ),
            (
                "scheduled later than both clocks",
                TickView {
                    due: NextDue {
                        cluster_ms: None,
                        wall_ms: Some(1_700_000_001_000),
                    },
                    ..view()
                },
                TickPlan::default(),
            ),
        ];
        for (what, view, expected) in cases {
            assert_eq!(plan(&view), expected, "{what}");
        }
    }
}
