//! `chart.svg`, written by hand: one panel of horizontal bars per figure and workload
//! (lifecycles/s, server CPU per lifecycle), taskswarm in its own colour.

use std::fmt::Write;

use super::{ms, thousands};
use crate::stats::Summary;
use crate::system::System;
use crate::workload::Shape;

const WIDTH_PX: f64 = 760.0;
const LABEL_PX: f64 = 110.0;
const BAR_AREA_PX: f64 = 380.0;
const BAR_PX: f64 = 18.0;
const ROW_PX: f64 = 24.0;
const TITLE_PX: f64 = 30.0;
const PANEL_GAP_PX: f64 = 16.0;
const CAPTION_LINE_PX: f64 = 14.0;
const TASKSWARM_COLOUR: &str = "#d9480f";
const PEER_COLOUR: &str = "#4263eb";

struct Panel<'a> {
    title: String,
    rows: Vec<(&'a Summary, f64, String)>,
}

/// `caption` goes above the panels (what was run, and whether it was a smoke run).
pub fn render(summaries: &[Summary], shapes: &[Shape], caption: &str) -> String {
    // One clause per line, so a long caption stays inside the width.
    let caption_lines: Vec<&str> = caption.split("; ").collect();
    let mut panels = Vec::new();
    for &shape in shapes {
        let rows: Vec<&Summary> = summaries.iter().filter(|s| s.shape == shape).collect();
        if rows.is_empty() {
            continue;
        }
        panels.push(Panel {
            title: format!("{}: lifecycles/s (higher is better)", shape.name()),
            rows: rows
                .iter()
                .map(|s| (*s, s.lifecycles_per_s, thousands(s.lifecycles_per_s)))
                .collect(),
        });
        panels.push(Panel {
            title: format!(
                "{}: server CPU ms per lifecycle (lower is better)",
                shape.name()
            ),
            rows: rows
                .iter()
                .map(|s| {
                    (
                        *s,
                        s.server_cpu_ms_per_lifecycle,
                        ms(s.server_cpu_ms_per_lifecycle),
                    )
                })
                .collect(),
        });
    }
    let height: f64 = panels
        .iter()
        .map(|p| TITLE_PX + ROW_PX * p.rows.len() as f64 + PANEL_GAP_PX)
        .sum::<f64>()
        + PANEL_GAP_PX
        + CAPTION_LINE_PX * caption_lines.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" viewBox="0 0 {WIDTH_PX} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut y = PANEL_GAP_PX;
    for line in &caption_lines {
        let _ = writeln!(
            out,
            r##"<text x="8" y="{y}" fill="#444" font-size="11">{}</text>"##,
            escape(line)
        );
        y += CAPTION_LINE_PX;
    }
    for panel in &panels {
        let _ = writeln!(
            out,
            r#"<text x="8" y="{}" font-weight="bold" font-size="13">{}</text>"#,
            y + 16.0,
            escape(&panel.title)
        );
        y += TITLE_PX;
        let max = panel.rows.iter().map(|r| r.1).fold(0.0, f64::max);
        for (s, value, text) in &panel.rows {
            let w = if max > 0.0 {
                value / max * BAR_AREA_PX
            } else {
                0.0
            };
            let colour = if s.system == System::Taskswarm {
                TASKSWARM_COLOUR
            } else {
                PEER_COLOUR
            };
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LABEL_PX - 8.0,
                y + BAR_PX - 5.0,
                escape(s.system.name())
            );
            let _ = writeln!(
                out,
                r#"<rect x="{LABEL_PX}" y="{y}" width="{w:.1}" height="{BAR_PX}" fill="{colour}"/>"#
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{}">{} <tspan fill="#666">({})</tspan></text>"##,
                LABEL_PX + w + 6.0,
                y + BAR_PX - 5.0,
                escape(text),
                escape(s.durability)
            );
            y += ROW_PX;
        }
        y += PANEL_GAP_PX;
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
