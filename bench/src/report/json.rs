//! `results.json`: every run's figures, the summaries, the workloads and what failed.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::stats::{Measurement, Summary};
use crate::workload::Workload;

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub unix_time_s: u64,
    pub cores: usize,
    pub kernel: String,
    pub smoke: bool,
    pub runs: usize,
    pub workloads: &'a [Workload],
    pub summaries: &'a [Summary],
    pub measurements: &'a [Measurement],
    pub failures: &'a [String],
}

impl<'a> Report<'a> {
    pub fn new(
        smoke: bool,
        runs: usize,
        workloads: &'a [Workload],
        summaries: &'a [Summary],
        measurements: &'a [Measurement],
        failures: &'a [String],
    ) -> Self {
        Report {
            unix_time_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: kernel(),
            smoke,
            runs,
            workloads,
            summaries,
            measurements,
            failures,
        }
    }
}

pub fn write(path: &Path, report: &Report<'_>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
