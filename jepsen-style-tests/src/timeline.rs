//! A self-contained HTML timeline of a run, in the spirit of Jepsen's latency and rate
//! plots: operation latencies over time and completion rates by result, with the fault
//! windows shaded behind both.
//!
//! The output is one file with inline SVG and CSS, no script and no external asset, so it
//! can be attached to a CI run and opened anywhere. Rendering is a pure, deterministic
//! function of the history: the same history gives byte-identical HTML.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::availability::{fault_windows, FaultWindow};
use crate::history::{History, Record, F};
use crate::ops::{operations, Operation, Outcome};

/// More points than this make the file slow to open; the scatter keeps every k-th.
pub const MAX_SCATTER_POINTS: usize = 20_000;
/// Upper bound on rate bins, so hour-long runs get wider bins rather than a huge file.
const MAX_RATE_BINS: u64 = 2_000;
/// Narrowest rate bin: rates are per second.
const MIN_RATE_BIN_MS: u64 = 1_000;
const MS_PER_S: f64 = 1_000.0;

const SVG_WIDTH_PX: f64 = 960.0;
const MARGIN_LEFT_PX: f64 = 64.0;
const MARGIN_RIGHT_PX: f64 = 16.0;
const MARGIN_TOP_PX: f64 = 16.0;
const MARGIN_BOTTOM_PX: f64 = 44.0;
const LATENCY_PLOT_HEIGHT_PX: f64 = 360.0;
const RATE_PLOT_HEIGHT_PX: f64 = 200.0;
const TIME_TICKS_TARGET: f64 = 10.0;
const RATE_TICKS_TARGET: f64 = 5.0;
const MARKER_RADIUS_PX: f64 = 3.0;
const FAULT_OPACITY: f64 = 0.15;

/// Results in drawing order: failures last so that rare ones stay visible on top.
const RESULTS: [(Outcome, &str, &str); 3] = [
    (Outcome::Ok, "ok", "#2e9e3e"),
    (Outcome::Info, "info (unknown)", "#d4a20c"),
    (Outcome::Fail, "fail", "#e2502a"),
];

/// Fault colours avoid the result colours' green, yellow and red.
const FAULT_PALETTE: [&str; 6] = [
    "#3b6fd4", "#8a4fc9", "#1aa3b8", "#c0479b", "#7a6a58", "#4a5a7a",
];
const LEGEND_MARK_COLOUR: &str = "#444";

/// Renders the whole HTML page.
pub fn render_html(history: &History, title: &str) -> String {
    let ops = operations(history);
    let axis = TimeAxis::of(history);
    let faults = FaultLayer::new(fault_windows(history));
    let mut html = String::new();
    page_head(&mut html, title);
    summary_line(&mut html, history, ops.len(), faults.windows.len());
    legend(&mut html, &ops, &faults);
    latency_figure(&mut html, &ops, &axis, &faults);
    rate_figure(&mut html, &ops, &axis, &faults);
    html.push_str("</body>\n</html>\n");
    html
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page_head(html: &mut String, title: &str) {
    let title = escape(title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
}

const STYLE: &str = "body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
.meta, figcaption { color: #555; font-size: 0.9em; }
figure { margin: 1em 0; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; font-size: 0.9em; }
ul.legend li { display: flex; align-items: center; gap: 0.3em; }
svg text { font-family: sans-serif; font-size: 11px; fill: #333; }
.grid { stroke: #e4e4e4; stroke-width: 1; }
.axis { stroke: #333; stroke-width: 1; }
.fault-label { font-size: 10px; fill: #333; }
";

fn summary_line(html: &mut String, history: &History, op_count: usize, window_count: usize) {
    let h = history.header();
    let _ = writeln!(
        html,
        "<p class=\"meta\">workload {}, {} nodes, seed {}; {op_count} operations, \
         {window_count} fault windows; time is seconds since the first event.</p>",
        escape(&format!("{:?}", h.workload)),
        h.nodes,
        h.seed
    );
}

/// Where the run sits on the x axis: from the first record to the last.
#[derive(Debug, Clone, Copy)]
struct TimeAxis {
    origin_ms: u64,
    /// At least 1, so an empty or instantaneous history still maps to a finite plot.
    span_ms: u64,
}

impl TimeAxis {
    fn of(history: &History) -> Self {
        let records = history.records();
        let origin_ms = records.first().map_or(0, Record::time_ms);
        let last_ms = records.last().map_or(origin_ms, Record::time_ms);
        Self {
            origin_ms,
            span_ms: last_ms.saturating_sub(origin_ms).max(1),
        }
    }

    fn offset_ms(&self, time_ms: u64) -> u64 {
        time_ms.saturating_sub(self.origin_ms).min(self.span_ms)
    }

    fn x(&self, frame: &Frame, time_ms: u64) -> f64 {
        frame.left + frame.width * self.offset_ms(time_ms) as f64 / self.span_ms as f64
    }
}

/// The plot area inside one SVG.
#[derive(Debug, Clone, Copy)]
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Frame {
    fn with_height(height: f64) -> Self {
        Self {
            left: MARGIN_LEFT_PX,
            top: MARGIN_TOP_PX,
            width: SVG_WIDTH_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX,
            height,
        }
    }

    fn right(&self) -> f64 {
        self.left + self.width
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    fn svg_height(&self) -> f64 {
        self.bottom() + MARGIN_BOTTOM_PX
    }
}

/// Fault windows with a colour per kind (by sorted kind, so colours are stable).
#[derive(Debug)]
struct FaultLayer {
    windows: Vec<FaultWindow>,
    kinds: Vec<String>,
}

impl FaultLayer {
    fn new(windows: Vec<FaultWindow>) -> Self {
        let kinds: BTreeSet<&str> = windows.iter().map(|w| w.kind.as_str()).collect();
        let kinds = kinds.into_iter().map(str::to_owned).collect();
        Self { windows, kinds }
    }

    fn colour(&self, kind: &str) -> &'static str {
        let i = self.kinds.iter().position(|k| k == kind).unwrap_or(0);
        FAULT_PALETTE[i % FAULT_PALETTE.len()]
    }

    /// One translucent rectangle per window, labelled with its kind, clipped to the plot.
    fn draw(&self, svg: &mut String, frame: &Frame, axis: &TimeAxis, clip_id: &str) {
        let _ = writeln!(svg, "<g clip-path=\"url(#{clip_id})\">");
        for w in &self.windows {
            let x0 = axis.x(frame, w.start_ms);
            let x1 = axis.x(frame, w.end_ms);
            let kind = escape(&w.kind);
            // Which node a restart step or a kill hit, in the hover text.
            let targets = if w.targets.is_empty() {
                String::new()
            } else {
                format!(" {}", escape(&w.targets.join(" ")))
            };
            let until = w.stop_ms.map_or_else(
                || "end (never stopped)".to_owned(),
                |ms| format!("{:.3} s", seconds(axis.offset_ms(ms))),
            );
            let _ = writeln!(
                svg,
                "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{}\" fill-opacity=\"{FAULT_OPACITY}\"><title>{kind}{targets} (fault {}): {:.3} s to {until}</title></rect>",
                frame.top,
                (x1 - x0).max(1.0),
                frame.height,
                self.colour(&w.kind),
                w.id,
                seconds(axis.offset_ms(w.start_ms)),
            );
            let _ = writeln!(
                svg,
                "<text class=\"fault-label\" x=\"{:.1}\" y=\"{:.1}\">{kind}</text>",
                x0 + 2.0,
                frame.top + 10.0,
            );
        }
        svg.push_str("</g>\n");
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / MS_PER_S
}

fn svg_open(svg: &mut String, frame: &Frame, label: &str, clip_id: &str) {
    let height = frame.svg_height();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SVG_WIDTH_PX} {height}\" \
         width=\"{SVG_WIDTH_PX}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">\n\
         <defs><clipPath id=\"{clip_id}\"><rect class=\"clip\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath></defs>",
        escape(label),
        frame.left,
        frame.top,
        frame.width,
        frame.height,
    );
}

/// Vertical grid lines and second labels along the bottom.
fn time_axis(svg: &mut String, frame: &Frame, axis: &TimeAxis) {
    let span_s = seconds(axis.span_ms);
    let step_s = nice_step(span_s, TIME_TICKS_TARGET);
    let decimals = decimals_for(step_s);
    for i in 0..=ticks_within(span_s, step_s) {
        let at_s = step_s * i as f64;
        let x = frame.left + frame.width * at_s / span_s;
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{at_s:.decimals$}</text>",
            frame.top,
            frame.bottom(),
            frame.bottom() + 14.0,
        );
    }
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{:.1}\" y1=\"{b:.1}\" x2=\"{:.1}\" y2=\"{b:.1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>",
        frame.left,
        frame.right(),
        frame.left + frame.width / 2.0,
        frame.bottom() + 34.0,
        b = frame.bottom(),
    );
}

/// The left axis line and its rotated title.
fn y_axis_title(svg: &mut String, frame: &Frame, title: &str) {
    let mid = frame.top + frame.height / 2.0;
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{l:.1}\" y1=\"{:.1}\" x2=\"{l:.1}\" y2=\"{:.1}\"/>\
         <text x=\"14\" y=\"{mid:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {mid:.1})\">{}</text>",
        frame.top,
        frame.bottom(),
        escape(title),
        l = frame.left,
    );
}

fn y_tick(svg: &mut String, frame: &Frame, y: f64, label: &str) {
    let _ = writeln!(
        svg,
        "<line class=\"grid\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        frame.left,
        frame.right(),
        frame.left - 6.0,
        y + 4.0,
        escape(label),
    );
}

/// A 1-2-5 step giving about `target` ticks over `range`.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = (range / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// Index of the last tick not past `range` (tolerating float error at the end).
fn ticks_within(range: f64, step: f64) -> u64 {
    (range / step + 1e-9).floor() as u64
}

fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
}

fn shape_of(f: F) -> Shape {
    match f {
        F::Enqueue => Shape::Circle,
        F::Claim => Shape::Square,
        F::Heartbeat => Shape::TriangleUp,
        F::Complete => Shape::Diamond,
        F::Fail => Shape::TriangleDown,
        F::Release => Shape::Plus,
        F::Read => Shape::Ring,
        F::Cancel => Shape::Cross,
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
    Plus,
    Ring,
    Cross,
}

/// One marker centred on (x, y); colour comes from the enclosing group so that each
/// point costs only its geometry. Open shapes override the group's zero stroke width.
fn marker(svg: &mut String, shape: Shape, x: f64, y: f64) {
    let r = MARKER_RADIUS_PX;
    let d = 2.0 * r;
    let _ = match shape {
        Shape::Circle => write!(svg, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\"/>"),
        Shape::Ring => write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"none\" stroke-width=\"1.5\"/>"
        ),
        Shape::Square => write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{d}\" height=\"{d}\"/>",
            x - r,
            y - r
        ),
        Shape::TriangleUp => write!(
            svg,
            "<path d=\"M{x:.1},{:.1}l{r},{d}h-{d}z\"/>",
            y - r
        ),
        Shape::TriangleDown => write!(
            svg,
            "<path d=\"M{x:.1},{:.1}l{r},-{d}h-{d}z\"/>",
            y + r
        ),
        Shape::Diamond => write!(
            svg,
            "<path d=\"M{x:.1},{:.1}l{r},{r}l-{r},{r}l-{r},-{r}z\"/>",
            y - r
        ),
        Shape::Plus => write!(
            svg,
            "<path d=\"M{:.1},{y:.1}h{d}M{x:.1},{:.1}v{d}\" fill=\"none\" stroke-width=\"1.5\"/>",
            x - r,
            y - r
        ),
        Shape::Cross => write!(
            svg,
            "<path d=\"M{:.1},{:.1}l{d},{d}M{:.1},{:.1}l{d},-{d}\" fill=\"none\" stroke-width=\"1.5\"/>",
            x - r,
            y - r,
            x - r,
            y + r
        ),
    };
}

fn legend(html: &mut String, ops: &[Operation<'_>], faults: &FaultLayer) {
    html.push_str("<ul class=\"legend\">\n");
    for (_, name, colour) in RESULTS {
        let _ = writeln!(
            html,
            "<li>{}{name}</li>",
            legend_icon(Shape::Circle, colour)
        );
    }
    let present: BTreeSet<F> = ops.iter().map(|op| op.f).collect();
    for f in present {
        let _ = writeln!(
            html,
            "<li>{}{}</li>",
            legend_icon(shape_of(f), LEGEND_MARK_COLOUR),
            f.name()
        );
    }
    for kind in &faults.kinds {
        let _ = writeln!(
            html,
            "<li><svg width=\"18\" height=\"12\"><rect class=\"swatch\" width=\"18\" height=\"12\" \
             fill=\"{}\" fill-opacity=\"{}\" stroke=\"#999\"/></svg>fault: {}</li>",
            faults.colour(kind),
            FAULT_OPACITY * 2.0,
            escape(kind)
        );
    }
    html.push_str("</ul>\n");
}

fn legend_icon(shape: Shape, colour: &str) -> String {
    let mut icon = format!(
        "<svg width=\"12\" height=\"12\"><g fill=\"{colour}\" stroke=\"{colour}\" stroke-width=\"0\">"
    );
    marker(&mut icon, shape, 6.0, 6.0);
    icon.push_str("</g></svg>");
    icon
}

/// Log-scale latency axis spanning whole decades of milliseconds.
#[derive(Debug, Clone, Copy)]
struct LatencyAxis {
    low_decade: u32,
    high_decade: u32,
}

impl LatencyAxis {
    /// Latencies under 1 ms are drawn at 1 ms: a log scale has no zero.
    fn of(latencies_ms: impl Iterator<Item = u64>) -> Self {
        let (low, high) =
            latencies_ms.fold((u64::MAX, 1), |(lo, hi), l| (lo.min(l.max(1)), hi.max(l)));
        let low_decade = if low == u64::MAX { 0 } else { low.ilog10() };
        let high_decade = high.ilog10() + u32::from(!is_power_of_ten(high));
        Self {
            low_decade,
            high_decade: high_decade.max(low_decade + 1),
        }
    }

    fn y(self, frame: &Frame, latency_ms: u64) -> f64 {
        let log = (latency_ms.max(1) as f64).log10();
        let fraction =
            (log - f64::from(self.low_decade)) / f64::from(self.high_decade - self.low_decade);
        frame.bottom() - frame.height * fraction.clamp(0.0, 1.0)
    }

    fn draw(self, svg: &mut String, frame: &Frame) {
        for decade in self.low_decade..=self.high_decade {
            let ms = 10u64.pow(decade);
            y_tick(svg, frame, self.y(frame, ms), &ms.to_string());
        }
        y_axis_title(svg, frame, "latency (ms, log)");
    }
}

fn is_power_of_ten(v: u64) -> bool {
    v > 0 && 10u64.pow(v.ilog10()) == v
}

fn latency_figure(html: &mut String, ops: &[Operation<'_>], axis: &TimeAxis, faults: &FaultLayer) {
    let completed: Vec<(&Operation<'_>, u64)> = ops
        .iter()
        .filter_map(|op| op.latency_ms().map(|l| (op, l)))
        .collect();
    let every = sampling_stride(completed.len());
    let shown: Vec<(&Operation<'_>, u64)> = completed.iter().copied().step_by(every).collect();
    let frame = Frame::with_height(LATENCY_PLOT_HEIGHT_PX);
    let latency = LatencyAxis::of(shown.iter().map(|&(_, l)| l));

    html.push_str("<figure>\n");
    let clip_id = "clip-latency";
    svg_open(html, &frame, "latency of each operation over time", clip_id);
    faults.draw(html, &frame, axis, clip_id);
    time_axis(html, &frame, axis);
    latency.draw(html, &frame);
    for (outcome, _, colour) in RESULTS {
        for f in F::ALL {
            let mut group = shown
                .iter()
                .filter(|(op, _)| op.f == f && op.outcome() == outcome)
                .peekable();
            if group.peek().is_none() {
                continue;
            }
            let _ = write!(
                html,
                "<g fill=\"{colour}\" stroke=\"{colour}\" stroke-width=\"0\" fill-opacity=\"0.7\">"
            );
            for &(op, l) in group {
                marker(
                    html,
                    shape_of(f),
                    axis.x(&frame, op.invoke.time_ms),
                    latency.y(&frame, l),
                );
            }
            html.push_str("</g>\n");
        }
    }
    html.push_str("</svg>\n");
    latency_caption(html, ops.len(), completed.len(), shown.len(), every);
    html.push_str("</figure>\n");
}

/// Keep every k-th point so at most [`MAX_SCATTER_POINTS`] are drawn.
fn sampling_stride(points: usize) -> usize {
    points.div_ceil(MAX_SCATTER_POINTS).max(1)
}

fn latency_caption(html: &mut String, total: usize, completed: usize, shown: usize, every: usize) {
    let _ = write!(
        html,
        "<figcaption>Latency: one point per completed operation at its invoke time \
         (colour = result, shape = operation); {completed} of {total} operations completed"
    );
    if completed < total {
        let _ = write!(
            html,
            ", {} without a completion are not shown",
            total - completed
        );
    }
    if every > 1 {
        let _ = write!(
            html,
            ". Sampled: 1 of every {every} completed operations is drawn ({shown} points, limit {MAX_SCATTER_POINTS})"
        );
    }
    html.push_str(".</figcaption>\n");
}

/// Completions per bin for each result in [`RESULTS`] order.
#[derive(Debug)]
struct Rates {
    bin_ms: u64,
    counts: [Vec<u64>; 3],
}

impl Rates {
    fn of(ops: &[Operation<'_>], axis: &TimeAxis) -> Self {
        let bin_ms = axis
            .span_ms
            .div_ceil(MAX_RATE_BINS)
            .next_multiple_of(MIN_RATE_BIN_MS)
            .max(MIN_RATE_BIN_MS);
        let bins = usize::try_from(axis.span_ms / bin_ms + 1).unwrap_or(usize::MAX);
        let mut counts = [vec![0; bins], vec![0; bins], vec![0; bins]];
        for op in ops {
            let Some(done) = op.completion else { continue };
            let slot = RESULTS
                .iter()
                .position(|&(o, _, _)| o == op.outcome())
                .unwrap_or(0);
            let bin = usize::try_from(axis.offset_ms(done.time_ms) / bin_ms).unwrap_or(0);
            if let Some(c) = counts[slot].get_mut(bin) {
                *c += 1;
            }
        }
        Self { bin_ms, counts }
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 * MS_PER_S / self.bin_ms as f64
    }

    fn max_per_second(&self) -> f64 {
        let max = self.counts.iter().flatten().copied().max().unwrap_or(0);
        self.per_second(max)
    }
}

fn rate_figure(html: &mut String, ops: &[Operation<'_>], axis: &TimeAxis, faults: &FaultLayer) {
    let rates = Rates::of(ops, axis);
    let frame = Frame::with_height(RATE_PLOT_HEIGHT_PX);
    let max = rates.max_per_second().max(1.0);
    let step = nice_step(max, RATE_TICKS_TARGET);
    let top = step * (max / step).ceil();
    let y = |rate: f64| frame.bottom() - frame.height * rate / top;

    html.push_str("<figure>\n");
    let clip_id = "clip-rate";
    svg_open(
        html,
        &frame,
        "operations completed per second by result",
        clip_id,
    );
    faults.draw(html, &frame, axis, clip_id);
    time_axis(html, &frame, axis);
    let decimals = decimals_for(step);
    for i in 0..=ticks_within(top, step) {
        let rate = step * i as f64;
        y_tick(html, &frame, y(rate), &format!("{rate:.decimals$}"));
    }
    y_axis_title(html, &frame, "ops/s");
    for (slot, (_, _, colour)) in RESULTS.iter().enumerate() {
        let counts = &rates.counts[slot];
        if counts.iter().all(|&c| c == 0) {
            continue;
        }
        let _ = write!(
            html,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\""
        );
        for (bin, &c) in counts.iter().enumerate() {
            // Each bin's rate is drawn at the bin's middle.
            let mid_ms = axis.origin_ms + bin as u64 * rates.bin_ms + rates.bin_ms / 2;
            let sep = if bin == 0 { "" } else { " " };
            let _ = write!(
                html,
                "{sep}{:.1},{:.1}",
                axis.x(&frame, mid_ms),
                y(rates.per_second(c))
            );
        }
        html.push_str("\"/>\n");
    }
    html.push_str("</svg>\n");
    let _ = writeln!(
        html,
        "<figcaption>Rate: operations completed per second by result, in {} s bins; \
         operations without a completion are not counted.</figcaption>\n</figure>",
        seconds(rates.bin_ms)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{NemesisType, OpType, Workload};
    use crate::testkit::*;

    fn two_faults(kind: &str) -> History {
        let mut b = Builder::new(Workload::Q);
        b.schedule(1, kind).schedule(2, "kill");
        b.enqueue(1, "c1", OpType::Ok, Some(1))
            .nemesis(NemesisType::Start, 1, true)
            .enqueue(1, "c2", OpType::Fail, None)
            .nemesis(NemesisType::Stop, 1, true)
            .nemesis(NemesisType::Start, 2, true)
            .enqueue(2, "c3", OpType::Info, None)
            .enqueue(1, "c4", OpType::Ok, Some(2));
        b.build()
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn page_has_two_plots_each_with_one_shaded_rect_per_fault_window() {
        let html = render_html(&two_faults("partition"), "run 1");
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        let svgs: Vec<&str> = html
            .split("<svg xmlns=")
            .skip(1)
            .map(|s| s.split("</svg>").next().unwrap_or_default())
            .collect();
        assert_eq!(svgs.len(), 2, "{html}");
        for svg in svgs {
            assert_eq!(count(svg, "<rect class=\"fault\""), 2, "{svg}");
        }
        assert!(html.contains("fault: partition"), "{html}");
        assert!(
            html.contains("latency (ms, log)") && html.contains("ops/s"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn scatter_draws_one_point_per_completed_operation_coloured_by_result() {
        // valid(): 13 operations, all completed: 11 ok, 1 fail, 1 info.
        let html = render_html(&valid(), "valid");
        let points =
            count(&html, "<circle cx=") + count(&html, "<rect x=") + count(&html, "<path d=");
        // Legend icons draw one marker each: 3 results + 5 operation kinds present.
        assert_eq!(points - (3 + 5), 13, "{html}");
        assert!(
            html.contains("fill=\"#e2502a\" stroke=\"#e2502a\" stroke-width=\"0\" fill-opacity")
        );
        assert!(html.contains("13 of 13 operations completed"), "{html}");
        assert!(!html.contains("Sampled"), "{html}");
    }

    #[test]
    fn output_is_deterministic() {
        let h = valid();
        assert_eq!(render_html(&h, "x"), render_html(&h, "x"));
    }

    #[test]
    fn text_is_escaped() {
        let html = render_html(&two_faults("<script>alert(1)</script>"), "a & \"b\" <c>");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<title>a &amp; &quot;b&quot; &lt;c&gt;</title>"),
            "{html}"
        );
    }

    #[test]
    fn large_histories_are_sampled_and_say_so() {
        let mut b = Builder::new(Workload::Q);
        let n = MAX_SCATTER_POINTS + 5;
        for i in 0..n {
            b.enqueue(1, &format!("c{i}"), OpType::Ok, Some(i as u64));
        }
        let html = render_html(&b.build(), "big");
        assert_eq!(sampling_stride(n), 2);
        let shown = n.div_ceil(2);
        assert_eq!(count(&html, "<circle cx=") - 3 - 1, shown);
        assert!(
            html.contains(&format!(
                "1 of every 2 completed operations is drawn ({shown} points"
            )),
            "caption missing"
        );
    }

    #[test]
    fn axes_helpers() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(nice_step(10.0, 10.0), 1.0));
        assert!(close(nice_step(0.3, 10.0), 0.05));
        assert!(close(nice_step(73.0, 5.0), 20.0));
        assert_eq!(decimals_for(0.05), 2);
        assert_eq!(decimals_for(20.0), 0);
        let axis = LatencyAxis::of([3, 10, 250].into_iter());
        assert_eq!((axis.low_decade, axis.high_decade), (0, 3));
        let axis = LatencyAxis::of([0, 100].into_iter());
        assert_eq!((axis.low_decade, axis.high_decade), (0, 2));
        let axis = LatencyAxis::of(std::iter::empty());
        assert_eq!((axis.low_decade, axis.high_decade), (0, 1));
    }
}
