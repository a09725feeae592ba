//! The comparison table, as Markdown (it goes straight into notes and issues).

use std::fmt::Write;

use super::{ms, thousands};
use crate::stats::Summary;
use crate::workload::{Shape, Workload};

/// One table per workload.
pub fn render(summaries: &[Summary], workloads: &[Workload], runs: usize) -> String {
    let mut out = String::new();
    for w in workloads {
        let rows: Vec<&Summary> = summaries.iter().filter(|s| s.shape == w.shape).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {}\n\n{}\n", w.shape.name(), describe(w, runs));
        out.push_str("| system | durability of the ack | lifecycles/s | enqueue p50 / p99 ms | end-to-end p50 / p99 ms | server CPU ms per lifecycle | taskswarm ÷ this | errors |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for s in rows {
            let mut name = s.setup.to_owned();
            for extra in [&s.version, &s.client] {
                if !extra.is_empty() {
                    name += &format!(" ({extra})");
                }
            }
            let ratio = s
                .taskswarm_ratio
                .map_or("–".to_owned(), |r| format!("{r:.2}×"));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} / {} | {} / {} | {:.3} | {ratio} | {} |",
                s.durability,
                thousands(s.lifecycles_per_s),
                ms(s.enqueue_p50_ms),
                ms(s.enqueue_p99_ms),
                ms(s.end_to_end_p50_ms),
                ms(s.end_to_end_p99_ms),
                s.server_cpu_ms_per_lifecycle,
                s.errors,
            );
        }
    }
    out
}

/// The workload in one sentence.
pub fn describe(w: &Workload, runs: usize) -> String {
    let enqueue = match w.shape {
        Shape::Unbatched => format!(
            "{} producers × {} enqueues in flight",
            w.producers, w.inflight
        ),
        Shape::Batched => format!(
            "{} producers × {} batch enqueues of {} in flight",
            w.producers, w.inflight, w.enqueue_batch
        ),
    };
    format!(
        "{enqueue}, {} workers claiming up to {} and completing, {} B payloads, at most {} unfinished; {} s warm-up, {} s measured, median of {runs} run(s).",
        w.workers,
        w.claim_max,
        crate::payload::PAYLOAD_BYTES,
        w.unfinished_max,
        w.warmup_s,
        w.measure_s,
    )
}
