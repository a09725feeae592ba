//! `jepsen-run --nodes N --nemesis LIST --time S --seed X --workload W`: one recorded
//! fault-injection run, checked.
//!
//! Phases: start the nodes in namespaces → wait for a leader → start the workload
//! (producers and readers here, workers as separate processes) → the nemesis carries out
//! the seeded schedule → heal → producers stop → drain (every acknowledged task finished)
//! → workers stop → final state from every node → merge the history, check it, report.
//! Everything the run produced is kept in its run directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use jepsen_style_tests::availability::{longest_ok_write_gaps_ms, summarize};
use jepsen_style_tests::checker::{check_all, overall, Verdict};
use jepsen_style_tests::env::nodes::{ELECTION_MAX_MS, FAKETIME_LIB};
use jepsen_style_tests::env::{net, Nodes, NodesConfig};
use jepsen_style_tests::expect;
use jepsen_style_tests::history::{Header, History};
use jepsen_style_tests::history::{OpType, F};
use jepsen_style_tests::report::render;
use jepsen_style_tests::run::clients::{self, Acked, Ctx};
use jepsen_style_tests::run::clock::mono_ns;
use jepsen_style_tests::run::final_state;
use jepsen_style_tests::run::nemesis::Nemesis;
use jepsen_style_tests::run::recorder::{assemble, read_events, Event, EventBody, Recorder};
use jepsen_style_tests::run::replace::render_replacements;
use jepsen_style_tests::run::rng::Rng;
use jepsen_style_tests::run::roll::render_restarts;
use jepsen_style_tests::run::schedule::{self, NemesisKind, PlannedFault};
use jepsen_style_tests::run::wire::Wire;
use jepsen_style_tests::run::worker_procs::WorkerProcs;
use jepsen_style_tests::run::workload::Params;
use jepsen_style_tests::run::{PROBE_PROCESS, READER_PROCESS_BASE, WORKER_PROCESS_BASE};
use jepsen_style_tests::timeline;
use serde_json::json;

use crate::Args;

const CLUSTER_SECRET: &str = "jepsen-run-secret";
/// Longest wait for the first leader (process start-up plus elections).
const FIRST_LEADER_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for the nodes to agree on the final state.
const CONVERGE_WAIT: Duration = Duration::from_secs(30);

/// The verdict, plus what the caller prints.
#[derive(Debug)]
pub struct RunResult {
    pub verdict: Verdict,
    pub findings: Vec<jepsen_style_tests::checker::Findings>,
    /// The recovery targets whose faults ran, judged.
    pub recovery: Vec<expect::Judgement>,
    pub run_dir: PathBuf,
}

/// Run-relative seconds plus UTC wall time, so a line can be matched with the node logs.
fn log(start: Instant, msg: &str) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let day_ms = now_ms % 86_400_000;
    println!(
        "[{:>7.1} s | {:02}:{:02}:{:02}.{:03}Z] {msg}",
        start.elapsed().as_secs_f64(),
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1_000 % 60,
        day_ms % 1_000
    );
}

pub async fn run(args: &Args) -> anyhow::Result<RunResult> {
    let t0 = Instant::now();
    let kinds = schedule::parse_kinds(&args.nemesis, args.nodes).map_err(anyhow::Error::msg)?;
    let workload = args.workload;
    let params = Params::of(workload);
    let seed = args.seed.unwrap_or_else(|| mono_ns() ^ 0x7A5C_5EED);
    let fault_phase_ms = args.time * 1_000;
    let upgrade_bin =
        schedule::upgrade_bin(&kinds, args.upgrade_bin.as_deref()).map_err(anyhow::Error::msg)?;
    let plan = schedule::plan(seed, &kinds, args.nodes, fault_phase_ms);
    if plan.is_empty() {
        bail!(
            "--time {} s is too short for any fault (warm-up {} ms + one fault)",
            args.time,
            schedule::WARMUP_MS
        );
    }
    check_settings(&kinds, &params)?;
    let bin = args.taskswarm_bin();
    if !bin.is_file() {
        bail!(
            "no taskswarm binary at {} (build it or pass --taskswarm-bin)",
            bin.display()
        );
    }
    let run_dir = args.run_dir_or_new("run");
    std::fs::create_dir_all(&run_dir)?;
    println!(
        "jepsen-run: seed {seed}, {} nodes, workload {workload:?}, {} faults over {} s ({}), binary {}{}, run dir {}",
        args.nodes,
        plan.len(),
        args.time,
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        bin.display(),
        upgrade_bin
            .as_ref()
            .map_or_else(String::new, |b| format!(", upgrade binary {}", b.display())),
        run_dir.display()
    );
    let mut header = Header::new(workload);
    header.nodes = u32::try_from(args.nodes)?;
    header.seed = seed;
    header.scheduled_faults = plan.iter().map(PlannedFault::to_fault).collect();
    // The probe only where a recovery target needs it: its tasks would otherwise change
    // the workload (a lease-contention run with few tasks gets a steady stream of them).
    let probe = plan
        .iter()
        .any(|f| expect::TARGETS.iter().any(|t| t.kind == f.kind.name()));
    header.probe_process = probe.then_some(PROBE_PROCESS);

    let faketime_lib = kinds
        .contains(&NemesisKind::ClockSkew)
        .then(|| PathBuf::from(FAKETIME_LIB));
    if let Some(lib) = &faketime_lib {
        if !lib.is_file() {
            bail!(
                "clock-skew needs libfaketime at {} (apt-get install libfaketime)",
                lib.display()
            );
        }
    }
    let nodes = Nodes::create(NodesConfig {
        count: args.nodes,
        bin,
        run_dir: run_dir.clone(),
        cluster_secret: CLUSTER_SECRET.to_owned(),
        extra_args: Vec::new(),
        faketime_lib,
    })
    .context("creating the environment")?;
    let urls: Vec<String> = (1..=args.nodes).map(net::node_url).collect();
    let wire = Arc::new(Wire::new(urls.clone())?);
    let rec = Recorder::memory();
    let rng = Rng::new(seed);

    // Workers: separate processes so that one can be paused.
    let exe = std::env::current_exe()?;
    let mut worker_args = Vec::new();
    let mut event_files = Vec::new();
    for i in 0..params.worker_procs {
        let events = run_dir.join(format!("worker-{i}.events.jsonl"));
        worker_args.push(vec![
            "worker".to_owned(),
            "--node-urls".to_owned(),
            urls.join(","),
            "--workload".to_owned(),
            format!("{workload:?}"),
            "--seed".to_owned(),
            seed.to_string(),
            "--first-process".to_owned(),
            (WORKER_PROCESS_BASE + 100 * i as u64).to_string(),
            "--count".to_owned(),
            params.workers_per_proc.to_string(),
            "--events".to_owned(),
            events.display().to_string(),
        ]);
        event_files.push(events);
    }
    let mut nemesis = Nemesis::new(
        nodes,
        WorkerProcs::none(),
        wire.clone(),
        rec.clone(),
        rng.fork(0x4E4D),
    )?;
    nemesis.upgrade_bin = upgrade_bin;
    let all: Vec<usize> = (1..=args.nodes).collect();
    let Some((leader, ms)) = nemesis.wait_leader(&all, FIRST_LEADER_WAIT).await else {
        bail!(
            "no leader within {FIRST_LEADER_WAIT:?}; see the node logs in {}",
            run_dir.display()
        );
    };
    // Workers start once there is a leader, so the baseline is not a start-up election.
    nemesis.workers =
        WorkerProcs::spawn(&exe, worker_args, event_files, &run_dir.join("workers.log"))?;
    log(t0, &format!("leader is n{leader} after {ms} ms"));

    // The workload starts; its clock starts with it.
    let epoch_ns = mono_ns();
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        wire: wire.clone(),
        rec: rec.clone(),
        params,
        stop: stop.clone(),
    };
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let mut clients_running = Vec::new();
    for p in 1..=params.producers as u64 {
        clients_running.push(tokio::spawn(clients::producer(
            ctx.clone(),
            p,
            rng.fork(p),
            acked.clone(),
        )));
    }
    if probe {
        clients_running.push(tokio::spawn(clients::probe(
            ctx.clone(),
            Arc::new(Wire::new(urls.clone())?),
            PROBE_PROCESS,
            rng.fork(PROBE_PROCESS),
            acked.clone(),
        )));
    }
    for i in 0..params.readers as u64 {
        let p = READER_PROCESS_BASE + i;
        clients_running.push(tokio::spawn(clients::reader(
            ctx.clone(),
            p,
            rng.fork(p),
            acked.clone(),
        )));
    }

    let started = Instant::now();
    let faults = run_schedule(&mut nemesis, &plan, started, fault_phase_ms, t0).await;
    // Whatever happened, leave nothing broken behind before judging anything.
    let healed = nemesis.stop().await;
    faults?;
    healed?;
    log(t0, "fault phase over, everything healed; producers stop");
    stop.store(true, Ordering::Relaxed);
    for c in clients_running {
        c.await?;
    }
    let acked_ids: BTreeSet<u64> = clients::acked_set(&acked);
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let drained = final_state::drain(&wire, &acked_ids, drain_timeout).await;
    match &drained {
        Ok(d) => log(t0, &format!("drained {} acknowledged tasks in {} ms", acked_ids.len(), d.as_millis())),
        Err(pending) => log(t0, &format!(
            "drain incomplete after {drain_timeout:?}: {} of {} acknowledged tasks unfinished, e.g. {:?}",
            pending.len(), acked_ids.len(), &pending[..pending.len().min(10)]
        )),
    }
    let killed = tokio::task::block_in_place(|| nemesis.workers.stop());
    if killed > 0 {
        log(
            t0,
            &format!("{killed} worker processes did not stop in time and were killed"),
        );
    }
    let mut events = rec.take();
    for file in &nemesis.workers.event_files {
        events.extend(read_events(file).with_context(|| format!("reading {}", file.display()))?);
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (mut fin, note) = final_state::collect(&wire, &http, CONVERGE_WAIT)
        .await
        .map_err(anyhow::Error::msg)
        .context("reading the final state")?;
    let final_ns = mono_ns();
    if let Some(note) = note {
        log(t0, &note);
    }
    // Which token completed a task matters where it had several leases: the fencing
    // checker then verifies the acknowledged completion carried the last one.
    let tokens = final_state::succeeded_tokens(&wire, &reclaimed_tasks(&events)).await;
    for (task, token) in tokens {
        if let Some(t) = fin.tasks.get_mut(&task) {
            t.token = Some(token);
        }
    }
    let history = assemble(header, events, epoch_ns, Some((final_ns, fin)))?;
    let history_path = run_dir.join("history.jsonl");
    history.write(std::io::BufWriter::new(std::fs::File::create(
        &history_path,
    )?))?;
    let findings = check_all(&history);
    let verdict = overall(&findings);
    let report = render(&history, &findings);
    let recovery = expect::judge(&summarize(&history));
    // What clients saw around each restart, on the history's own clock.
    let restart_spans: Vec<(u64, u64)> = nemesis
        .restarts
        .iter()
        .map(|r| r.rejoin.span_ms(epoch_ns))
        .collect();
    // And around each replacement, from the SIGKILL to the catch-up.
    let replacement_spans: Vec<(u64, u64)> = nemesis
        .replacements
        .iter()
        .map(|r| r.rejoin.span_ms(epoch_ns))
        .collect();
    let gaps = WriteGaps {
        restarts: longest_ok_write_gaps_ms(&history, &restart_spans),
        replacements: longest_ok_write_gaps_ms(&history, &replacement_spans),
    };
    let extra = format!(
        "{}{}{}\n{}",
        harness_section(&nemesis, &drained, acked_ids.len()),
        render_restarts(&nemesis.restarts, &gaps.restarts),
        render_replacements(&nemesis.replacements, &gaps.replacements),
        expect::render(&recovery)
    );
    std::fs::write(run_dir.join("report.txt"), format!("{report}{extra}"))?;
    write_summary(&run_dir, seed, &nemesis, &gaps, &drained, &history, verdict)?;
    let title = format!("taskswarm {workload:?}, {} nodes, seed {seed}", args.nodes);
    std::fs::write(
        run_dir.join("timeline.html"),
        timeline::render_html(&history, &title),
    )?;
    print!("{report}{extra}");
    println!(
        "history: {}\ntimeline: {}",
        history_path.display(),
        run_dir.join("timeline.html").display()
    );
    Ok(RunResult {
        verdict,
        findings,
        recovery,
        run_dir,
    })
}

/// Tasks granted under more than one token in the recorded events.
fn reclaimed_tasks(events: &[Event]) -> BTreeSet<u64> {
    let mut tokens: std::collections::BTreeMap<u64, BTreeSet<u64>> = Default::default();
    for e in events {
        if let EventBody::Op {
            kind: OpType::Ok,
            f: F::Claim,
            value,
            ..
        } = &e.body
        {
            for c in value.claimed.iter().flatten() {
                tokens.entry(c.task).or_default().insert(c.token);
            }
        }
    }
    tokens
        .into_iter()
        .filter(|(_, t)| t.len() > 1)
        .map(|(task, _)| task)
        .collect()
}

/// Fault durations must really test what they claim: a paused leader outlasts the
/// election timeout, a paused worker outlasts its lease.
fn check_settings(kinds: &[NemesisKind], params: &Params) -> anyhow::Result<()> {
    let pause_leader_min = NemesisKind::PauseLeader.duration_ms().0;
    if kinds.contains(&NemesisKind::PauseLeader) && pause_leader_min <= ELECTION_MAX_MS {
        bail!("pause-leader would not outlast the election timeout");
    }
    let pause_worker_min = NemesisKind::PauseWorker.duration_ms().0;
    if kinds.contains(&NemesisKind::PauseWorker) && pause_worker_min <= params.lease_ms {
        bail!(
            "pause-worker ({} ms lease) would not outlast the lease",
            params.lease_ms
        );
    }
    Ok(())
}

async fn sleep_until(started: Instant, at_ms: u64) {
    let at = started + Duration::from_millis(at_ms);
    tokio::time::sleep_until(at.into()).await;
}

async fn run_schedule(
    nemesis: &mut Nemesis,
    plan: &[PlannedFault],
    started: Instant,
    fault_phase_ms: u64,
    t0: Instant,
) -> anyhow::Result<()> {
    for f in plan {
        sleep_until(started, f.start_ms).await;
        nemesis
            .start(f)
            .await
            .with_context(|| format!("starting fault {} ({})", f.id, f.kind))?;
        log(
            t0,
            &format!(
                "fault {} {} started ({} ms){}",
                f.id,
                f.kind,
                f.duration_ms,
                nemesis.restart_note(f.id)
            ),
        );
        sleep_until(started, f.start_ms + f.duration_ms).await;
        nemesis
            .stop()
            .await
            .with_context(|| format!("stopping fault {} ({})", f.id, f.kind))?;
        log(
            t0,
            &format!(
                "fault {} {} stopped{}",
                f.id,
                f.kind,
                nemesis.restart_note(f.id)
            ),
        );
    }
    sleep_until(started, fault_phase_ms).await;
    Ok(())
}

/// What only the harness measured: elections after each fault, and the drain.
fn harness_section(
    nemesis: &Nemesis,
    drained: &Result<Duration, Vec<u64>>,
    acked: usize,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{:<24} {:>6} {:<12} {:>8} {:>8} {:>8}",
        "leader elected after", "count", "phase", "p50 ms", "max ms", "missed"
    );
    let mut groups: std::collections::BTreeMap<(&str, &str), Vec<Option<u64>>> = Default::default();
    for r in &nemesis.recoveries {
        groups
            .entry((r.kind, r.phase))
            .or_default()
            .push(r.leader_ms);
    }
    for ((kind, phase), v) in groups {
        let mut seen: Vec<u64> = v.iter().flatten().copied().collect();
        seen.sort_unstable();
        let missed = v.len() - seen.len();
        let p50 =
            jepsen_style_tests::report::percentile(&seen, 50).map_or("-".into(), |x| x.to_string());
        let max = seen.last().map_or("-".into(), ToString::to_string);
        let _ = writeln!(
            s,
            "{kind:<24} {:>6} {phase:<12} {p50:>8} {max:>8} {missed:>8}",
            v.len()
        );
    }
    let _ = match drained {
        Ok(d) => writeln!(
            s,
            "\ndrain: {acked} acknowledged tasks finished {} ms after the producers stopped",
            d.as_millis()
        ),
        Err(p) => writeln!(
            s,
            "\ndrain: {} of {acked} acknowledged tasks still unfinished at the deadline",
            p.len()
        ),
    };
    s
}

/// The longest time without an acknowledged write around each restart and each
/// replacement, in the order of [`Nemesis::restarts`] and [`Nemesis::replacements`].
struct WriteGaps {
    restarts: Vec<Option<u64>>,
    replacements: Vec<Option<u64>>,
}

fn write_summary(
    run_dir: &Path,
    seed: u64,
    nemesis: &Nemesis,
    gaps: &WriteGaps,
    drained: &Result<Duration, Vec<u64>>,
    history: &History,
    verdict: Verdict,
) -> anyhow::Result<()> {
    let restarts = with_gaps(&nemesis.restarts, &gaps.restarts)?;
    let replacements = with_gaps(&nemesis.replacements, &gaps.replacements)?;
    let summary = json!({
        "seed": seed,
        "verdict": verdict,
        "records": history.records().len(),
        "recoveries": nemesis.recoveries,
        "restarts": restarts,
        "replacements": replacements,
        "drain_ms": drained.as_ref().ok().map(|d| d.as_millis() as u64),
        "undrained": drained.as_ref().err().map(Vec::len),
    });
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(())
}

/// One JSON row per restart or replacement, with the longest time no client saw a write
/// acknowledged around it (`gaps[i]` for `rows[i]`).
fn with_gaps<T: serde::Serialize>(
    rows: &[T],
    gaps: &[Option<u64>],
) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    rows.iter()
        .zip(gaps)
        .map(|(r, gap)| {
            let mut row = serde_json::to_value(r)?;
            row["longest_ok_write_gap_ms"] = json!(gap);
            Ok(row)
        })
        .collect()
}
