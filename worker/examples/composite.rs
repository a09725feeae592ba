//! forerunner's composite job: three steps in series on one worker, under one lease. Each
//! step gets the previous step's result; all of them see the same fencing token.
//!
//! Runs a worker in this process, submits one `report` task and prints its result.
//! Needs a cluster: `taskswarm dev` (or `TASKSWARM_SERVERS`).

use std::time::Duration;

use serde_json::{json, Value};
use taskswarm_worker::api::EnqueueRequest;
use taskswarm_worker::{compose, Client, Handler, TaskContext, TaskError, TaskOutcome, Worker};

/// Step 1: the numbers 1..=n.
async fn fetch(ctx: TaskContext, payload: Value) -> Result<Value, TaskError> {
    let n = payload["n"]
        .as_u64()
        .ok_or_else(|| TaskError::permanent("the payload needs `n`"))?;
    println!("fetch   (task {}, token {})", ctx.id(), ctx.token());
    Ok(json!((1..=n).collect::<Vec<u64>>()))
}

/// Step 2: their squares.
async fn square(ctx: TaskContext, numbers: Value) -> Result<Value, TaskError> {
    let numbers: Vec<u64> = serde_json::from_value(numbers)?;
    println!("square  (task {}, token {})", ctx.id(), ctx.token());
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(json!(numbers.iter().map(|x| x * x).collect::<Vec<u64>>()))
}

/// Step 3: the report.
async fn summarize(ctx: TaskContext, squares: Value) -> Result<Value, TaskError> {
    let squares: Vec<u64> = serde_json::from_value(squares)?;
    println!("summary (task {}, token {})", ctx.id(), ctx.token());
    Ok(json!({"count": squares.len(), "sum_of_squares": squares.iter().sum::<u64>()}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::from_env()?;
    // Each async fn has its own type: `Handler::new` makes them one type for the list.
    let report = compose([
        Handler::new(fetch),
        Handler::new(square),
        Handler::new(summarize),
    ]);
    let worker = Worker::builder(client.clone())
        .queue("reports")
        .handler("report", report)
        .build()?
        .start();
    let task = EnqueueRequest {
        queue: "reports".into(),
        kind: "report".into(),
        payload: json!({"n": 10}),
        ..Default::default()
    };
    let handle = client.submit(task).await?;
    match handle.wait(Duration::from_secs(30)).await? {
        Some(TaskOutcome::Succeeded(report)) => println!("report: {report}"),
        other => println!("report did not succeed: {other:?}"),
    }
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    println!("{stats:?}");
    Ok(())
}
