//! `taskswarm worker --exec CMD`: a worker for any language. Each task runs `sh -c CMD`
//! with the payload on stdin and the task's metadata in `TASKSWARM_*` variables; stdout
//! (JSON, or text taken as a JSON string) is the result; a non-zero exit fails the task
//! with the tail of stderr. The command is killed when the task is cancelled or its lease
//! is lost, and heartbeats run while it works.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::Value;
use taskswarm_worker::{TaskContext, TaskError, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client_args::ClientArgs;

/// Largest result read from a command's stdout (the cluster's payload limit).
pub const STDOUT_BYTES_MAX: u64 = 256 * 1024;
/// Bytes of stderr kept for the error message: the end, where the reason usually is.
pub const STDERR_TAIL_BYTES: usize = 2 * 1024;
/// Most stderr read before the rest is discarded.
pub const STDERR_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, Clone, Args)]
pub struct ExecWorkerArgs {
    /// Queue(s) to take tasks from.
    #[arg(long = "queue", default_value = "default")]
    pub queues: Vec<String>,
    /// Only these kinds (repeatable); all kinds when absent.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// The shell command run for each task.
    #[arg(long)]
    pub exec: String,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// Lease length; heartbeats renew it while the command runs.
    #[arg(long, default_value_t = 30_000)]
    pub lease_ms: u64,
    /// On Ctrl-C/SIGTERM, how long running commands may finish before their tasks are
    /// given back.
    #[arg(long, default_value_t = 10_000)]
    pub grace_ms: u64,
}

pub async fn run(args: ExecWorkerArgs, c: &ClientArgs) -> anyhow::Result<()> {
    let command = Arc::new(args.exec.clone());
    let handler = move |ctx: TaskContext, payload: Value| {
        let command = command.clone();
        async move { run_command(&command, ctx, payload).await }
    };
    let mut builder = Worker::builder(c.client()?)
        .queues(args.queues.clone())
        .slots(args.slots)
        .lease(Duration::from_millis(args.lease_ms))
        .shutdown_grace(Duration::from_millis(args.grace_ms));
    builder = if args.kinds.is_empty() {
        builder.fallback(handler)
    } else {
        args.kinds
            .iter()
            .fold(builder, |b, kind| b.handler(kind.clone(), handler.clone()))
    };
    let worker = builder.build()?;
    eprintln!(
        "worker {} on {:?} running `{}`; Ctrl-C stops it",
        worker.worker_id(),
        args.queues,
        args.exec
    );
    let stats = worker.run(super::node::shutdown_signal()).await;
    eprintln!(
        "stopped: {} completed, {} failed, {} released, {} lease lost",
        stats.completed, stats.failed, stats.released, stats.lease_lost
    );
    Ok(())
}

async fn run_command(command: &str, ctx: TaskContext, payload: Value) -> Result<Value, TaskError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("TASKSWARM_TASK_ID", ctx.id().to_string())
        .env("TASKSWARM_TASK_QUEUE", ctx.queue())
        .env("TASKSWARM_TASK_KIND", ctx.kind())
        .env("TASKSWARM_TASK_PRIORITY", ctx.priority().to_string())
        .env("TASKSWARM_TASK_ATTEMPT", ctx.attempt().to_string())
        .env(
            "TASKSWARM_TASK_MAX_ATTEMPTS",
            ctx.max_attempts().to_string(),
        )
        .env("TASKSWARM_TASK_TOKEN", ctx.token().to_string())
        .env("TASKSWARM_TASK_GROUP", ctx.group().unwrap_or(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let input = serde_json::to_vec(&payload).expect("a Value serializes");
    // Feed stdin and drain both outputs at once: a command that writes a lot before
    // reading would otherwise block on a full pipe.
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let out = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout
            .take(STDOUT_BYTES_MAX + 1)
            .read_to_end(&mut buf)
            .await;
        buf
    });
    let err = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.take(STDERR_BYTES_MAX).read_to_end(&mut buf).await;
        buf
    });
    let status = tokio::select! {
        status = child.wait() => status?,
        () = ctx.cancelled() => {
            let _ = child.kill().await;
            return Err(TaskError::retryable(format!("command killed: {:?}", ctx.cancel_reason())));
        }
    };
    let _ = feed.await;
    let stdout = out.await.unwrap_or_default();
    let stderr = err.await.unwrap_or_default();
    if !status.success() {
        let tail =
            String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..])
                .trim()
                .to_owned();
        let how = status.code().map_or_else(
            || "killed by a signal".to_owned(),
            |c| format!("exit status {c}"),
        );
        return Err(TaskError::retryable(format!("{how}: {tail}")).with_code("command_failed"));
    }
    if stdout.len() as u64 > STDOUT_BYTES_MAX {
        return Err(TaskError::permanent(format!(
            "the command wrote more than {STDOUT_BYTES_MAX} bytes"
        ))
        .with_code("result_too_large"));
    }
    let text = String::from_utf8_lossy(&stdout);
    let text = text.trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())))
}
