//! taskdist's synopsis, producer side: submits fib(n) tasks and awaits each result
//! (`await put(task)`). Run `fibonacci_worker` alongside; see its header.

use std::time::Duration;

use serde_json::json;
use taskswarm_worker::api::EnqueueRequest;
use taskswarm_worker::{Client, TaskOutcome};

/// How long to wait for each result.
const RESULT_WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mut handles = Vec::new();
    for n in (10..=90).step_by(10) {
        let task = EnqueueRequest {
            queue: "fib".into(),
            kind: "fib".into(),
            payload: json!({"n": n}),
            ..Default::default()
        };
        handles.push((n, client.submit(task).await?));
    }
    println!("submitted {} tasks", handles.len());
    for (n, handle) in handles {
        match handle.wait(RESULT_WAIT).await? {
            Some(TaskOutcome::Succeeded(v)) => println!("fib({n}) = {v}"),
            Some(other) => println!("fib({n}): {other:?}"),
            None => {
                println!("fib({n}): not finished within {RESULT_WAIT:?} (is a worker running?)")
            }
        }
    }
    Ok(())
}
