//! Fault records and network partitions.
//!
//! A partition is made of nftables input-drop rules installed in the *receiving* node's
//! namespace: a node drops every packet from the nodes outside its group. Both directions
//! of a cut are dropped because both ends filter. The harness's own address is never
//! dropped, so clients can still try (and fail) to write to a cut-off node.

use std::time::Instant;

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Fault, NemesisRecord, NemesisType, NEMESIS_PROCESS};

use super::{cmd, net, EnvError};

/// The one nftables table the harness owns in each node namespace.
pub const NFT_TABLE: &str = "taskswarm_nemesis";

/// One start or stop of a fault, as it happened; turned into a history line by
/// [`FaultEvent::to_record`] once the caller has given it an index and a fault id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    pub phase: NemesisType,
    /// e.g. `partition-isolate`, `partition`, `kill`, `pause`.
    pub kind: String,
    /// Node names (`n1`...) or, for partitions, groups such as `n1,n2|n3`.
    pub targets: Vec<String>,
    /// Milliseconds since the environment was created.
    pub time_ms: u64,
    /// The fault verifiably took hold (rule listed, process gone or stopped). On a stop:
    /// it was verifiably undone.
    pub effective: bool,
}

impl FaultEvent {
    pub fn new(
        phase: NemesisType,
        kind: &str,
        targets: Vec<String>,
        epoch: Instant,
        effective: bool,
    ) -> FaultEvent {
        let time_ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        FaultEvent {
            phase,
            kind: kind.to_owned(),
            targets,
            time_ms,
            effective,
        }
    }

    pub fn to_record(&self, index: u64, fault_id: u64) -> NemesisRecord {
        NemesisRecord {
            index,
            time_ms: self.time_ms,
            process: NEMESIS_PROCESS.to_owned(),
            kind: self.phase,
            fault: Fault {
                id: fault_id,
                kind: self.kind.clone(),
                targets: self.targets.clone(),
            },
            effective: self.effective,
        }
    }
}

/// The partition state of a cluster of `nodes` nodes (ids 1..=nodes).
#[derive(Debug)]
pub struct Partitions {
    nodes: usize,
    epoch: Instant,
    /// Kind and targets of the partition in force, for the stop record `heal` returns.
    active: Option<(String, Vec<String>)>,
}

impl Partitions {
    pub fn new(nodes: usize, epoch: Instant) -> Partitions {
        Partitions {
            nodes,
            epoch,
            active: None,
        }
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(&mut self, node: usize) -> Result<FaultEvent, EnvError> {
        let rest: Vec<usize> = (1..=self.nodes).filter(|n| *n != node).collect();
        self.partition(&[vec![node], rest])
    }

    /// Splits the cluster into `groups`; a node in no group is cut off from everyone.
    /// Any partition in force is replaced.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<FaultEvent, EnvError> {
        for node in groups.iter().flatten() {
            self.check(*node)?;
        }
        let blocked = groups_blocked(self.nodes, groups);
        let targets = vec![groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|n| net::ns_name(*n))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("|")];
        self.install("partition", &blocked, "drop", targets)
    }

    /// Any topology: `blocked[n]` are the nodes whose packets node `n` drops. Used for
    /// shapes that are not groups (bridge, majorities ring).
    pub fn cut(&mut self, kind: &str, blocked: &Blocked) -> Result<FaultEvent, EnvError> {
        for (node, peers) in blocked {
            self.check(*node)?;
            for p in peers {
                self.check(*p)?;
            }
        }
        let targets = vec![describe(blocked)];
        self.install(kind, blocked, "drop", targets)
    }

    /// Every node drops `percent`% of the packets from the other nodes, at random
    /// (nftables `numgen`; `tc netem` does not exist in this kernel).
    pub fn packet_loss(&mut self, percent: u8) -> Result<FaultEvent, EnvError> {
        assert!(
            percent > 0 && percent < 100,
            "loss {percent}% is not a loss"
        );
        let all: Vec<usize> = (1..=self.nodes).collect();
        let blocked = groups_blocked(
            self.nodes,
            &all.iter().map(|n| vec![*n]).collect::<Vec<_>>(),
        );
        let verdict = format!("numgen random mod 100 < {percent} drop");
        self.install(
            "packet-loss",
            &blocked,
            &verdict,
            vec![format!("{percent}%")],
        )
    }

    fn check(&self, node: usize) -> Result<(), EnvError> {
        if node == 0 || node > self.nodes {
            return Err(EnvError::NoSuchNode(node, self.nodes));
        }
        Ok(())
    }

    fn install(
        &mut self,
        kind: &str,
        blocked: &Blocked,
        verdict: &str,
        targets: Vec<String>,
    ) -> Result<FaultEvent, EnvError> {
        self.clear_rules()?;
        let mut effective = true;
        for (&node, peers) in blocked {
            if peers.is_empty() {
                continue;
            }
            let ips: Vec<String> = peers.iter().map(|p| net::node_ip(*p)).collect();
            let ns = net::ns_name(node);
            let script = format!(
                "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {{ {} }} {verdict}\n  }}\n}}\n",
                ips.join(", ")
            );
            cmd::in_ns_with_stdin(&ns, "nft", &["-f", "-"], Some(&script))?;
            // Trust the kernel's listing, not our script: `effective` must mean installed.
            let listed = cmd::in_ns(&ns, "nft", &["list", "table", "inet", NFT_TABLE])?;
            effective &= listed.contains("drop")
                && (!verdict.contains("numgen") || listed.contains("numgen"))
                && ips.iter().all(|ip| listed.contains(ip.as_str()));
        }
        self.active = Some((kind.to_owned(), targets.clone()));
        Ok(FaultEvent::new(
            NemesisType::Start,
            kind,
            targets,
            self.epoch,
            effective,
        ))
    }

    /// Removes every partition rule; the stop record names the partition it ends.
    pub fn heal(&mut self) -> Result<FaultEvent, EnvError> {
        self.clear_rules()?;
        let mut effective = true;
        for node in 1..=self.nodes {
            let listed = cmd::in_ns(&net::ns_name(node), "nft", &["list", "ruleset"])?;
            effective &= !listed.contains(NFT_TABLE);
        }
        let (kind, targets) = self
            .active
            .take()
            .unwrap_or_else(|| ("partition".to_owned(), Vec::new()));
        Ok(FaultEvent::new(
            NemesisType::Stop,
            &kind,
            targets,
            self.epoch,
            effective,
        ))
    }

    fn clear_rules(&self) -> Result<(), EnvError> {
        for node in 1..=self.nodes {
            let ns = net::ns_name(node);
            let listed = cmd::in_ns(&ns, "nft", &["list", "tables"])?;
            if listed.contains(NFT_TABLE) {
                cmd::in_ns(&ns, "nft", &["delete", "table", "inet", NFT_TABLE])?;
            }
        }
        Ok(())
    }
}

/// Node → the nodes whose packets it drops.
pub type Blocked = BTreeMap<usize, BTreeSet<usize>>;

/// Each node drops every node outside its own group (a node in no group drops everyone).
pub fn groups_blocked(nodes: usize, groups: &[Vec<usize>]) -> Blocked {
    (1..=nodes)
        .map(|node| {
            let group = groups.iter().find(|g| g.contains(&node));
            let peers = (1..=nodes)
                .filter(|p| *p != node && group.is_none_or(|g| !g.contains(p)))
                .collect();
            (node, peers)
        })
        .collect()
}

/// Two halves that see each other only through `bridge`, which sees everyone.
pub fn bridge_blocked(left: &[usize], bridge: usize, right: &[usize]) -> Blocked {
    let mut blocked = Blocked::new();
    for &l in left {
        blocked.insert(l, right.iter().copied().collect());
    }
    for &r in right {
        blocked.insert(r, left.iter().copied().collect());
    }
    blocked.insert(bridge, BTreeSet::new());
    blocked
}

/// `order` arranged in a ring; each node sees itself and its two neighbours only. On 5
/// nodes every node's view is a majority (3), and no two views are the same.
pub fn ring_blocked(order: &[usize]) -> Blocked {
    let n = order.len();
    assert!(n >= 3, "a ring needs 3 nodes");
    (0..n)
        .map(|i| {
            let near = [order[(i + n - 1) % n], order[i], order[(i + 1) % n]];
            let peers = order
                .iter()
                .copied()
                .filter(|p| !near.contains(p))
                .collect();
            (order[i], peers)
        })
        .collect()
}

/// `n1!n3,n4 n2!...`: who drops whom, for the history's fault targets.
fn describe(blocked: &Blocked) -> String {
    blocked
        .iter()
        .map(|(node, peers)| {
            let peers: Vec<String> = peers.iter().map(|p| net::ns_name(*p)).collect();
            format!("{}!{}", net::ns_name(*node), peers.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[usize]) -> BTreeSet<usize> {
        v.iter().copied().collect()
    }

    #[test]
    fn groups_drop_everyone_outside() {
        let b = groups_blocked(3, &[vec![1], vec![2, 3]]);
        assert_eq!(b[&1], set(&[2, 3]));
        assert_eq!(b[&2], set(&[1]));
        assert_eq!(b[&3], set(&[1]));
    }

    #[test]
    fn majorities_ring_gives_every_node_a_different_majority() {
        let b = ring_blocked(&[1, 2, 3, 4, 5]);
        let views: BTreeSet<BTreeSet<usize>> = (1..=5)
            .map(|n| (1..=5).filter(|p| !b[&n].contains(p)).collect())
            .collect();
        assert_eq!(views.len(), 5);
        assert!(views.iter().all(|v| v.len() == 3));
        // Symmetric: if a drops b, b drops a.
        for (n, peers) in &b {
            for p in peers {
                assert!(b[p].contains(n));
            }
        }
    }

    #[test]
    fn bridge_sees_both_halves() {
        let b = bridge_blocked(&[1, 2], 3, &[4, 5]);
        assert!(b[&3].is_empty());
        assert_eq!(b[&1], set(&[4, 5]));
        assert_eq!(describe(&bridge_blocked(&[1], 2, &[3])), "n1!n3 n2! n3!n1");
    }
}
