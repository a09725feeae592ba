//! proletariat's work group: submit N items as one group, print each item's result as it
//! finishes, then the group's total.
//!
//! Runs a worker in this process (so it works on its own against `taskswarm dev`, or
//! `TASKSWARM_SERVERS`); other workers serving queue `groups` would share the items.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use taskswarm_worker::api::EnqueueRequest;
use taskswarm_worker::{Client, TaskContext, TaskError, TaskOutcome, Worker};

/// Items in the group.
const ITEMS: u64 = 12;
/// How long to wait for the whole group.
const GROUP_WAIT: Duration = Duration::from_secs(60);

/// Squares `x`, taking longer for some items so results arrive out of order.
async fn square(_ctx: TaskContext, payload: Value) -> Result<Value, TaskError> {
    let x = payload["x"]
        .as_u64()
        .ok_or_else(|| TaskError::permanent("the payload needs `x`"))?;
    tokio::time::sleep(Duration::from_millis(50 * ((x * 7) % 5))).await;
    Ok(json!(x * x))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone())
        .queue("groups")
        .handler("square", square)
        .slots(4)
        .build()?
        .start();

    let group = format!("squares-{}", client.new_key());
    let items = (1..=ITEMS).map(|x| EnqueueRequest {
        queue: "groups".into(),
        kind: "square".into(),
        payload: json!({"x": x}),
        ..Default::default()
    });
    let handle = client.submit_group(&group, items.collect()).await?;
    println!("group {group}: {} items", handle.ids.len());

    let mut total = 0;
    let mut results = std::pin::pin!(handle.results(GROUP_WAIT));
    while let Some((i, id, outcome)) = results.next().await {
        match outcome? {
            Some(TaskOutcome::Succeeded(v)) => {
                total += v.as_u64().unwrap_or(0);
                println!("item {} (task {id}) = {v}", i + 1);
            }
            other => println!("item {} (task {id}): {other:?}", i + 1),
        }
    }
    println!("group total = {total}");
    println!("{:?}", worker.shutdown(Duration::from_secs(5)).await);
    Ok(())
}
