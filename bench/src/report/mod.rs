//! What a comparison leaves behind: the table on stdout, `results.json` and `chart.svg`.

pub mod json;
pub mod svg;
pub mod table;

use std::path::Path;

use anyhow::Context;

/// Writes `table.md`, `results.json` and `chart.svg` into `dir`.
pub fn write_all(
    dir: &Path,
    table: &str,
    caption: &str,
    report: &json::Report<'_>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("table.md"), table)?;
    json::write(&dir.join("results.json"), report)?;
    let shapes: Vec<_> = report.workloads.iter().map(|w| w.shape).collect();
    std::fs::write(
        dir.join("chart.svg"),
        svg::render(report.summaries, &shapes, caption),
    )?;
    Ok(())
}

/// A number with thousands separators and no decimals, e.g. 12,345.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with precision that suits their size.
pub fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(ms(0.123), "0.12");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(123.4), "123");
    }
}
