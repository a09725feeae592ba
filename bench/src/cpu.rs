//! Server CPU from /proc: utime + stime of every process of a server's process tree (the
//! PIDs the peer script started and all their descendants, e.g. RabbitMQ's beam.smp under
//! its wrapper script, PostgreSQL's backends under the postmaster, taskswarm's nodes under
//! `taskswarm dev`), plus cutime + cstime so children that exited and were waited for
//! still count once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;

/// Fields after the command name in /proc/PID/stat, counted from the state (0).
const STAT_PPID: usize = 1;
const STAT_UTIME: usize = 11;
/// utime, stime, cutime, cstime are consecutive.
const STAT_TIMES: usize = 4;

/// Clock ticks per second of the times in /proc/PID/stat (`getconf CLK_TCK`).
pub fn clock_ticks_per_s() -> anyhow::Result<u64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing getconf CLK_TCK")
}

/// The fields after `comm` of /proc/PID/stat (comm may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn ticks_of(fields: &[u64]) -> u64 {
    fields
        .get(STAT_UTIME..STAT_UTIME + STAT_TIMES)
        .map_or(0, |t| t.iter().sum())
}

/// Every live process's parent.
fn parents() -> BTreeMap<u32, u32> {
    let mut map = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(STAT_PPID).copied()) {
                map.insert(pid, ppid as u32);
            }
        }
    }
    map
}

/// `roots` and all their live descendants.
pub fn process_tree(roots: &[u32]) -> BTreeSet<u32> {
    let parents = parents();
    let mut tree: BTreeSet<u32> = roots
        .iter()
        .copied()
        .filter(|p| parents.contains_key(p))
        .collect();
    loop {
        let before = tree.len();
        for (&pid, ppid) in &parents {
            if tree.contains(ppid) {
                tree.insert(pid);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// CPU used so far by the process trees under `roots`, and how many processes they hold.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ticks: u64,
    pub processes: usize,
}

pub fn sample(roots: &[u32]) -> Sample {
    let tree = process_tree(roots);
    let ticks = tree
        .iter()
        .filter_map(|&p| stat_fields(p))
        .map(|f| ticks_of(&f))
        .sum();
    Sample {
        ticks,
        processes: tree.len(),
    }
}

/// CPU used so far by this process (the load generator), all threads.
pub fn self_ticks() -> u64 {
    stat_fields(std::process::id()).map_or(0, |f| ticks_of(&f))
}

pub fn ticks_to_duration(ticks: u64, ticks_per_s: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_s.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_its_tree_and_burns_cpu() {
        let me = std::process::id();
        assert!(process_tree(&[me]).contains(&me));
        let before = self_ticks();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(self_ticks() > before);
        assert!(clock_ticks_per_s().expect("getconf") > 0);
    }
}
