//! Task commands: enqueue, batch, get, wait, cancel, requeue, list, events.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::Value;
use taskswarm_worker::api;
use taskswarm_worker::TaskOutcome;

use super::client_args::ClientArgs;
use super::output;

/// Tasks per request when enqueueing a file.
pub const BATCH_REQUEST_TASKS: usize = 500;
/// Most tasks one `batch` file may hold (they are read before sending, for the progress
/// total).
pub const BATCH_FILE_TASKS_MAX: usize = 1_000_000;
/// Longest `--timeout-ms` for waits.
pub const WAIT_TIMEOUT_MS_MAX: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Args)]
pub struct EnqueueArgs {
    #[arg(long, default_value = "default")]
    pub queue: String,
    #[arg(long)]
    pub kind: String,
    /// The payload as JSON; `-` reads it from stdin.
    #[arg(long, conflicts_with = "payload_file")]
    pub payload: Option<String>,
    /// Read the JSON payload from a file.
    #[arg(long)]
    pub payload_file: Option<PathBuf>,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[arg(long)]
    pub coalesce_key: Option<String>,
    /// Not before this time (ms since the Unix epoch).
    #[arg(long)]
    pub run_at_ms: Option<u64>,
    #[arg(long)]
    pub delay_ms: Option<u64>,
    #[arg(long)]
    pub max_attempts: Option<u32>,
    #[arg(long, requires_all = ["backoff_multiplier", "backoff_max_ms"])]
    pub backoff_initial_ms: Option<u64>,
    #[arg(long)]
    pub backoff_multiplier: Option<f64>,
    #[arg(long)]
    pub backoff_max_ms: Option<u64>,
    #[arg(long)]
    pub lease_ms: Option<u64>,
    #[arg(long)]
    pub schedule_to_start_ms: Option<u64>,
    #[arg(long)]
    pub start_to_close_ms: Option<u64>,
    #[arg(long)]
    pub schedule_to_close_ms: Option<u64>,
    #[arg(long)]
    pub group: Option<String>,
    /// Wait for the task to finish and print its result.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 60_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TaskCmd {
    /// Enqueue one task.
    Enqueue(EnqueueArgs),
    /// Enqueue every task of a JSON-lines file (one enqueue request per line; `-` = stdin).
    Batch { file: PathBuf },
    /// Show a task.
    Get { id: u64 },
    /// Wait for a task to finish and print it.
    Wait {
        id: u64,
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
    },
    /// Cancel a task (a running one is told on its next heartbeat).
    Cancel { id: u64 },
    /// Queue a failed or expired task again with fresh attempts.
    Requeue { id: u64 },
    /// List tasks, optionally by queue and state.
    List {
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        after: Option<u64>,
    },
    /// Print a task's events, or with no id every task's events as they happen.
    Events {
        id: Option<u64>,
        /// With no id: only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Keep following new events.
        #[arg(long, short)]
        follow: bool,
    },
}

fn read_payload(args: &EnqueueArgs) -> anyhow::Result<Value> {
    let text = match (&args.payload, &args.payload_file) {
        (Some(p), _) if p == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the payload from stdin")?;
            s
        }
        (Some(p), _) => p.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => return Ok(Value::Null),
    };
    serde_json::from_str(&text).context("the payload is not valid JSON")
}

fn request(args: &EnqueueArgs) -> anyhow::Result<api::EnqueueRequest> {
    Ok(api::EnqueueRequest {
        queue: args.queue.clone(),
        kind: args.kind.clone(),
        payload: read_payload(args)?,
        priority: args.priority,
        idempotency_key: args.idempotency_key.clone(),
        coalesce_key: args.coalesce_key.clone(),
        run_at_ms: args.run_at_ms,
        delay_ms: args.delay_ms,
        max_attempts: args.max_attempts,
        backoff: match (
            args.backoff_initial_ms,
            args.backoff_multiplier,
            args.backoff_max_ms,
        ) {
            (Some(initial_ms), Some(multiplier), Some(max_ms)) => Some(api::BackoffSpec {
                initial_ms,
                multiplier,
                max_ms,
            }),
            _ => None,
        },
        lease_ms: args.lease_ms,
        schedule_to_start_ms: args.schedule_to_start_ms,
        start_to_close_ms: args.start_to_close_ms,
        schedule_to_close_ms: args.schedule_to_close_ms,
        group: args.group.clone(),
    })
}

fn print_task(t: &api::TaskView, json: bool) {
    if json {
        return output::json(t);
    }
    println!(
        "task {}  {}  queue={} kind={} priority={} attempt {}/{}",
        t.id, t.state, t.queue, t.kind, t.priority, t.attempt, t.max_attempts
    );
    println!("  payload  {}", output::brief(&t.payload, 200));
    if let Some(l) = &t.lease {
        println!(
            "  lease    worker={} token={} lease_ms={}",
            l.worker, l.token, l.lease_ms
        );
    }
    if let Some(p) = &t.progress {
        println!("  progress {}", output::brief(p, 200));
    }
    if let Some(r) = &t.result {
        println!("  result   {}", output::brief(r, 200));
    }
    if let Some(e) = &t.error {
        println!("  error    {}: {}", e.code, e.message);
    }
}

fn print_event(e: &api::EventView, json: bool) {
    if json {
        println!("{}", serde_json::to_string(e).expect("serializable"));
        return;
    }
    let mut extra = String::new();
    if let Some(w) = &e.worker {
        extra += &format!(" worker={w}");
    }
    if let Some(t) = e.token {
        extra += &format!(" token={t}");
    }
    if let Some(p) = &e.progress {
        extra += &format!(" progress={}", output::brief(p, 80));
    }
    if let Some(err) = &e.error {
        extra += &format!(" error={}: {}", err.code, err.message);
    }
    let state = e.state.map(|s| format!(" -> {s}")).unwrap_or_default();
    println!(
        "{}  task {} [{}] {}{state}{extra}",
        e.at_ms, e.task, e.queue, e.event
    );
}

pub async fn run(cmd: TaskCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let client = c.client()?;
    match cmd {
        TaskCmd::Enqueue(args) => {
            if args.timeout_ms > WAIT_TIMEOUT_MS_MAX {
                bail!("--timeout-ms must be at most {WAIT_TIMEOUT_MS_MAX}");
            }
            let r = client.enqueue(request(&args)?).await?;
            if !args.wait {
                if c.json {
                    output::json(&r);
                } else {
                    let how = if r.coalesced {
                        "joined"
                    } else if r.created {
                        "created"
                    } else {
                        "already existed"
                    };
                    println!("task {} {how} ({})", r.id, r.state);
                }
                return Ok(());
            }
            let task = client
                .wait(r.id, Duration::from_millis(args.timeout_ms))
                .await?;
            print_task(&task, c.json);
            finished_or_fail(&task)
        }
        TaskCmd::Batch { file } => batch(&client, &file, c.json).await,
        TaskCmd::Get { id } => {
            print_task(&client.task(id).await?, c.json);
            Ok(())
        }
        TaskCmd::Wait { id, timeout_ms } => {
            if timeout_ms > WAIT_TIMEOUT_MS_MAX {
                bail!("--timeout-ms must be at most {WAIT_TIMEOUT_MS_MAX}");
            }
            let task = client.wait(id, Duration::from_millis(timeout_ms)).await?;
            print_task(&task, c.json);
            finished_or_fail(&task)
        }
        TaskCmd::Cancel { id } => {
            let r = client.cancel(id).await?;
            if c.json {
                output::json(&r)
            } else {
                println!(
                    "task {id}: {}",
                    if r.state == api::TaskState::Running {
                        "cancel requested (running)"
                    } else {
                        r.state.as_str()
                    }
                )
            }
            Ok(())
        }
        TaskCmd::Requeue { id } => {
            let r = client.requeue(id).await?;
            if c.json {
                output::json(&r)
            } else {
                println!("task {id}: {}", r.state)
            }
            Ok(())
        }
        TaskCmd::List {
            queue,
            state,
            limit,
            after,
        } => {
            let page = client
                .list(queue.as_deref(), state.as_deref(), after, limit)
                .await?;
            if c.json {
                output::json(&page);
            } else {
                let rows: Vec<Vec<String>> = page
                    .tasks
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.queue.clone(),
                            t.kind.clone(),
                            t.state.to_string(),
                            t.priority.to_string(),
                            format!("{}/{}", t.attempt, t.max_attempts),
                            output::brief(&t.payload, 40),
                        ]
                    })
                    .collect();
                output::table(
                    &["id", "queue", "kind", "state", "prio", "attempt", "payload"],
                    &rows,
                );
                if let Some(next) = page.next {
                    println!("(more: --after {next})");
                }
            }
            Ok(())
        }
        TaskCmd::Events {
            id: Some(id),
            follow: false,
            ..
        } => {
            let events = client.events(id).await?;
            for e in &events.events {
                print_event(e, c.json);
            }
            Ok(())
        }
        TaskCmd::Events {
            id: Some(id),
            follow: true,
            ..
        } => {
            let mut stream = std::pin::pin!(client.task_events(id).await?);
            while let Some(e) = stream.next().await {
                print_event(&e?, c.json);
            }
            Ok(())
        }
        TaskCmd::Events {
            id: None, queue, ..
        } => {
            let mut stream = std::pin::pin!(client.watch(queue.as_deref()).await?);
            while let Some(e) = stream.next().await {
                print_event(&e?, c.json);
            }
            Ok(())
        }
    }
}

/// Exit non-zero when a waited-for task did not succeed (or did not finish).
fn finished_or_fail(task: &api::TaskView) -> anyhow::Result<()> {
    match TaskOutcome::of(task) {
        Some(TaskOutcome::Succeeded(_)) => Ok(()),
        Some(_) => bail!("task {} ended {}", task.id, task.state),
        None => bail!("task {} is still {} after the timeout", task.id, task.state),
    }
}

async fn batch(
    client: &taskswarm_worker::Client,
    file: &PathBuf,
    json: bool,
) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let mut tasks = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("reading the batch file")?;
        if line.trim().is_empty() {
            continue;
        }
        let task: api::EnqueueRequest = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not an enqueue request", n + 1))?;
        tasks.push(task);
        if tasks.len() > BATCH_FILE_TASKS_MAX {
            bail!("more than {BATCH_FILE_TASKS_MAX} tasks in one file; split it");
        }
    }
    let total = tasks.len();
    let (mut created, mut existing, mut refused) = (0usize, 0usize, 0usize);
    let mut done = 0;
    for chunk in tasks.chunks(BATCH_REQUEST_TASKS) {
        for item in client.enqueue_batch(chunk.to_vec()).await? {
            match item {
                api::BatchItem::Ok(e) if e.created => created += 1,
                api::BatchItem::Ok(_) => existing += 1,
                api::BatchItem::Err(e) => {
                    refused += 1;
                    eprintln!("refused: {}: {}", e.error.code, e.error.message);
                }
            }
        }
        done += chunk.len();
        if !json {
            eprint!("\r{done}/{total} enqueued");
            let _ = std::io::stderr().flush();
        }
    }
    if json {
        output::json(
            &serde_json::json!({"total": total, "created": created, "existing": existing, "refused": refused}),
        );
    } else {
        eprintln!();
        println!("{total} tasks: {created} created, {existing} already existed, {refused} refused");
    }
    if refused > 0 {
        bail!("{refused} tasks were refused");
    }
    Ok(())
}
