//! Runs → one summary per system and workload: the median of each figure over the runs.

use serde::Serialize;

use crate::harness::RunResult;
use crate::system::System;
use crate::workload::Shape;

/// One run of one system on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub system: System,
    pub shape: Shape,
    pub run: usize,
    pub version: String,
    /// How the driver used the client when not the default way (e.g. taskswarm's
    /// complete-and-claim); empty otherwise.
    pub client: String,
    pub result: RunResult,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub system: System,
    pub setup: &'static str,
    pub version: String,
    pub client: String,
    pub durability: &'static str,
    pub shape: Shape,
    pub runs: usize,
    pub lifecycles_per_s: f64,
    pub enqueue_p50_ms: f64,
    pub enqueue_p99_ms: f64,
    pub end_to_end_p50_ms: f64,
    pub end_to_end_p99_ms: f64,
    pub server_cpu_ms_per_lifecycle: f64,
    pub client_cpu_ms_per_lifecycle: f64,
    /// Errors summed over the runs.
    pub errors: u64,
    /// taskswarm's lifecycles/s divided by this system's (the goals are stated
    /// this way: "≥ 2× NATS" is 2.0 on the NATS row). None without a taskswarm figure.
    pub taskswarm_ratio: Option<f64>,
}

/// The median; for an even count, the mean of the middle two.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Summaries in the order of `systems` then `shapes`; pairs without a run are left out.
pub fn summarize(
    measurements: &[Measurement],
    systems: &[System],
    shapes: &[Shape],
) -> Vec<Summary> {
    let mut out = Vec::new();
    for &shape in shapes {
        for &system in systems {
            let runs: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| m.system == system && m.shape == shape)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let med =
                |f: fn(&RunResult) -> f64| median(runs.iter().map(|m| f(&m.result)).collect());
            out.push(Summary {
                system,
                setup: system.setup(),
                version: runs[0].version.clone(),
                client: runs[0].client.clone(),
                durability: system.durability(),
                shape,
                runs: runs.len(),
                lifecycles_per_s: med(|r| r.lifecycles_per_s),
                enqueue_p50_ms: med(|r| r.enqueue.p50_ms),
                enqueue_p99_ms: med(|r| r.enqueue.p99_ms),
                end_to_end_p50_ms: med(|r| r.end_to_end.p50_ms),
                end_to_end_p99_ms: med(|r| r.end_to_end.p99_ms),
                server_cpu_ms_per_lifecycle: med(|r| r.server_cpu_ms_per_lifecycle),
                client_cpu_ms_per_lifecycle: med(|r| r.client_cpu_ms_per_lifecycle),
                errors: runs
                    .iter()
                    .map(|m| {
                        m.result.errors_enqueue + m.result.errors_claim + m.result.errors_complete
                    })
                    .sum(),
                taskswarm_ratio: None,
            });
        }
    }
    for shape in shapes {
        let base = out
            .iter()
            .find(|s| s.system == System::Taskswarm && s.shape == *shape)
            .map(|s| s.lifecycles_per_s);
        for s in out.iter_mut().filter(|s| s.shape == *shape) {
            s.taskswarm_ratio = base
                .filter(|_| s.lifecycles_per_s > 0.0)
                .map(|b| b / s.lifecycles_per_s);
        }
    }
    out
}

/// A failure for every system and workload that completed no lifecycle at all.
pub fn idle_systems(summaries: &[Summary]) -> Vec<String> {
    summaries
        .iter()
        .filter(|s| s.lifecycles_per_s <= 0.0)
        .map(|s| {
            format!(
                "{} {}: completed zero lifecycles",
                s.system.name(),
                s.shape.name()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::RunResult;
    use crate::recorder::Percentiles;

    fn measurement(system: System, run: usize, lifecycles_per_s: f64) -> Measurement {
        Measurement {
            system,
            shape: Shape::Unbatched,
            run,
            version: String::new(),
            client: String::new(),
            result: RunResult {
                lifecycles: lifecycles_per_s as u64,
                lifecycles_per_s,
                enqueued_tasks: 0,
                enqueue: Percentiles::default(),
                end_to_end: Percentiles::default(),
                claim: Percentiles::default(),
                complete: Percentiles::default(),
                server_cpu_ms_per_lifecycle: 0.0,
                server_cpu_s: 0.0,
                server_processes: 0,
                client_cpu_ms_per_lifecycle: 0.0,
                errors_enqueue: 0,
                errors_claim: 0,
                errors_complete: 0,
                claims_empty: 0,
                measure_s: 1.0,
            },
        }
    }

    #[test]
    fn medians_ratios_and_idle_systems() {
        let runs = [
            measurement(System::Taskswarm, 0, 100.0),
            measurement(System::Taskswarm, 1, 300.0),
            measurement(System::Taskswarm, 2, 200.0),
            measurement(System::Nats, 0, 400.0),
            measurement(System::Etcd, 0, 0.0),
        ];
        let systems = [System::Taskswarm, System::Nats, System::Etcd];
        let s = summarize(&runs, &systems, &[Shape::Unbatched]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].lifecycles_per_s, 200.0);
        assert_eq!(s[0].taskswarm_ratio, Some(1.0));
        assert_eq!(s[1].taskswarm_ratio, Some(0.5));
        assert_eq!(s[2].taskswarm_ratio, None);
        assert_eq!(
            idle_systems(&s),
            vec!["etcd unbatched: completed zero lifecycles"]
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
