//! `jepsen-check HISTORY [--json] [--timeline PATH]`: checks a recorded history and prints
//! the report; `--timeline` also writes an HTML latency/rate timeline of the run.
//! Exit code: 0 valid, 1 anomalies found, 2 unknown (unreadable history, inconclusive run).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use jepsen_style_tests::checker::{check_all, overall, Verdict};
use jepsen_style_tests::history::History;
use jepsen_style_tests::report::render;
use jepsen_style_tests::timeline::render_html;

#[derive(Debug, Parser)]
#[command(about = "Check a taskswarm fault-injection history")]
struct Args {
    /// The history file (JSON lines).
    history: PathBuf,
    /// Print the findings as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML timeline (latencies, rates, fault windows) here.
    #[arg(long, value_name = "PATH")]
    timeline: Option<PathBuf>,
}

fn run(args: &Args) -> anyhow::Result<Verdict> {
    let file =
        File::open(&args.history).with_context(|| format!("opening {}", args.history.display()))?;
    let history = History::read(BufReader::new(file))
        .with_context(|| format!("reading {}", args.history.display()))?;
    if let Some(path) = &args.timeline {
        let title = format!("taskswarm run: {}", args.history.display());
        std::fs::write(path, render_html(&history, &title))
            .with_context(|| format!("writing timeline {}", path.display()))?;
    }
    let findings = check_all(&history);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", render(&history, &findings));
    }
    Ok(overall(&findings))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(verdict) => ExitCode::from(verdict.exit_code() as u8),
        Err(e) => {
            eprintln!("jepsen-check: {e:#}");
            ExitCode::from(Verdict::Unknown.exit_code() as u8)
        }
    }
}
