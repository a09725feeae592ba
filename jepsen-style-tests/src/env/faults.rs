//! Fault records and network partitions.
//!
//! A partition is made of nftables input-drop rules installed in the *receiving* node's
//! namespace: a node drops every packet from the nodes outside its group. Both directions
//! of a cut are dropped because both ends filter. The harness's own address is never
//! dropped, so clients can still try (and fail) to write to a cut-off node.

use std::time::Instant;

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
        self.apply("partition-isolate", &[vec![node], rest])
    }

    /// Splits the cluster into `groups`; a node in no group is cut off from everyone.
    /// Any partition in force is replaced.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<FaultEvent, EnvError> {
        self.apply("partition", groups)
    }

    fn apply(&mut self, kind: &str, groups: &[Vec<usize>]) -> Result<FaultEvent, EnvError> {
        for node in groups.iter().flatten() {
            if *node == 0 || *node > self.nodes {
                return Err(EnvError::NoSuchNode(*node, self.nodes));
            }
        }
        self.clear_rules()?;
        let mut effective = true;
        for node in 1..=self.nodes {
            let group = groups.iter().find(|g| g.contains(&node));
            let blocked: Vec<String> = (1..=self.nodes)
                .filter(|p| *p != node && group.is_none_or(|g| !g.contains(p)))
                .map(net::node_ip)
                .collect();
            if blocked.is_empty() {
                continue;
            }
            let ns = net::ns_name(node);
            let script = format!(
                "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {{ {} }} drop\n  }}\n}}\n",
                blocked.join(", ")
            );
            cmd::in_ns_with_stdin(&ns, "nft", &["-f", "-"], Some(&script))?;
            // Trust the kernel's listing, not our script: `effective` must mean installed.
            let listed = cmd::in_ns(&ns, "nft", &["list", "table", "inet", NFT_TABLE])?;
            effective &=
                listed.contains("drop") && blocked.iter().all(|ip| listed.contains(ip.as_str()));
        }
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
