//! Rolling restarts and rolling upgrades, one node at a time: a roll step's start is
//! its node stopped gracefully, its stop the node started again (from the upgrade binary
//! in a rolling upgrade); the step then waits for the node to catch up with the leader,
//! so the next step never stops a second node while the first is still behind. The
//! steps themselves are carried out by [`Nemesis`](super::nemesis::Nemesis), which holds
//! the nodes and the roll's order; this is what they record and decide.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::rejoin::{gap_cell, Rejoin};
use super::schedule::NemesisKind;
use crate::env::net;

/// One node's restart in a roll, as the harness saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub fault_id: u64,
    pub kind: &'static str,
    pub node: usize,
    /// It led the cluster when it was stopped.
    pub was_leader: bool,
    /// From SIGTERM until the process was reaped.
    pub exit_ms: u64,
    /// It outlived [`STOP_GRACE`](crate::env::nodes::STOP_GRACE) and was SIGKILLed.
    pub killed: bool,
    /// The binary it was started from again.
    pub bin: PathBuf,
    /// How it came back: the leader's applied index once the node was started again
    /// (what it had to reach), the time from its start until it got there, and the span
    /// from the SIGTERM until then.
    #[serde(flatten)]
    pub rejoin: Rejoin,
}

impl Restart {
    pub(super) fn stopped_note(&self) -> String {
        format!(
            "{}{} stopped, exit {} ms after SIGTERM{}",
            net::ns_name(self.node),
            if self.was_leader { " (leader)" } else { "" },
            self.exit_ms,
            if self.killed { ", SIGKILLed" } else { "" }
        )
    }

    pub(super) fn started_note(&self) -> String {
        format!(
            "{} started from {}, {}",
            net::ns_name(self.node),
            self.bin.display(),
            self.rejoin.caught_note()
        )
    }
}

/// The next node of a roll: the first of `remaining` (a seeded order) that does not lead,
/// so the leader goes last. Why leader last rather than the seeded order alone: a
/// follower's restart costs clients nothing while the rest keep a quorum, the leader's
/// costs an election; last, it is restarted once, and leadership cannot move onto a node
/// that is still to be restarted, which would cost a second election. The seeded order
/// decides among the followers, so seeds vary which node goes first. Asked afresh at each
/// step, since leadership may move during the roll.
pub fn next_to_restart(remaining: &[usize], leader: Option<usize>) -> Option<usize> {
    remaining
        .iter()
        .copied()
        .find(|n| Some(*n) != leader)
        .or_else(|| remaining.first().copied())
}

/// The binary a rolled node starts from: its own for a restart (after an upgrade, the
/// upgraded one), the upgrade binary for an upgrade; `None` when that is missing.
pub fn roll_bin(kind: NemesisKind, current: &Path, upgrade: Option<&Path>) -> Option<PathBuf> {
    match kind {
        NemesisKind::RollingUpgrade => upgrade.map(Path::to_path_buf),
        _ => Some(current.to_path_buf()),
    }
}

/// The restarts of a run, one row each, with the longest time no client saw a write
/// acknowledged around each (`gaps_ms[i]` for `restarts[i]`, from
/// [`crate::availability::longest_ok_write_gaps_ms`] over [`Rejoin::span_ms`]).
pub fn render_restarts(restarts: &[Restart], gaps_ms: &[Option<u64>]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if restarts.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nrestarts (write gap: longest time without an acknowledged write, from the last ack before the SIGTERM to the first after the catch-up)"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>5} {:<5} {:<6} {:>8} {:<7} {:<24} {:>11} {:>9} {:>12}",
        "kind",
        "fault",
        "node",
        "leader",
        "exit ms",
        "sigkill",
        "binary",
        "catch-up ms",
        "to index",
        "write gap ms"
    );
    for (i, r) in restarts.iter().enumerate() {
        let bin = r.bin.file_name().map_or_else(
            || r.bin.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let _ = writeln!(
            s,
            "{:<16} {:>5} {:<5} {:<6} {:>8} {:<7} {:<24} {:>11} {:>9} {:>12}",
            r.kind,
            r.fault_id,
            net::ns_name(r.node),
            if r.was_leader { "yes" } else { "no" },
            r.exit_ms,
            if r.killed { "yes" } else { "no" },
            bin,
            r.rejoin.catch_up_cell(),
            r.rejoin.target_cell(),
            gap_cell(gaps_ms, i),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roll_takes_followers_in_seeded_order_and_the_leader_last() {
        assert_eq!(next_to_restart(&[3, 1, 2], Some(3)), Some(1));
        assert_eq!(next_to_restart(&[3, 1, 2], None), Some(3));
        assert_eq!(next_to_restart(&[2], Some(2)), Some(2));
        assert_eq!(next_to_restart(&[], Some(2)), None);
        // A whole roll under a steady leader: every node once, the leader last.
        let (mut remaining, mut order) = (vec![2, 3, 1], Vec::new());
        while let Some(n) = next_to_restart(&remaining, Some(2)) {
            remaining.retain(|x| *x != n);
            order.push(n);
        }
        assert_eq!(order, vec![3, 1, 2]);
    }

    #[test]
    fn only_an_upgrade_changes_the_binary() {
        let (old, new) = (Path::new("/bin/old"), Path::new("/bin/new"));
        let restart = NemesisKind::RollingRestart;
        let upgrade = NemesisKind::RollingUpgrade;
        assert_eq!(roll_bin(restart, old, Some(new)), Some(old.to_path_buf()));
        assert_eq!(roll_bin(restart, new, None), Some(new.to_path_buf()));
        assert_eq!(roll_bin(upgrade, old, Some(new)), Some(new.to_path_buf()));
        assert_eq!(roll_bin(upgrade, old, None), None);
    }

    fn restart(fault_id: u64, node: usize, was_leader: bool, catch_up_ms: Option<u64>) -> Restart {
        Restart {
            fault_id,
            kind: "rolling-upgrade",
            node,
            was_leader,
            exit_ms: 40,
            killed: false,
            bin: PathBuf::from("/x/taskswarm-next"),
            rejoin: Rejoin {
                target_index: Some(500),
                catch_up_ms,
                from_ns: 2_000_000_000,
                to_ns: 3_500_000_000,
            },
        }
    }

    #[test]
    fn restarts_render_one_row_each_with_their_gap() {
        assert_eq!(render_restarts(&[], &[]), "");
        let rows = [restart(4, 2, false, Some(300)), restart(5, 1, true, None)];
        let text = render_restarts(&rows, &[Some(120), None]);
        // A blank line, the title, the column names, then one row per restart.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[3].starts_with("rolling-upgrade      4 n2    no"),
            "{text}"
        );
        assert!(
            lines[3].contains("taskswarm-next") && lines[3].ends_with(" 120"),
            "{text}"
        );
        assert!(lines[4].contains("n1    yes"), "{text}");
        assert!(lines[4].ends_with(" -"), "{text}");
        assert_eq!(rows[0].rejoin.span_ms(1_000_000_000), (1_000, 2_500));
        assert!(rows[1]
            .started_note()
            .contains("NOT caught up to index 500"));
        assert_eq!(
            rows[1].stopped_note(),
            "n1 (leader) stopped, exit 40 ms after SIGTERM"
        );
    }
}
