//! taskdist's synopsis, worker side: computes fib(n) for tasks of kind `fib` on queue `fib`.
//!
//! ```sh
//! taskswarm dev                                                    # a 3-node cluster on :7001..7003
//! cargo run --release -p taskswarm-worker --example fibonacci_worker
//! cargo run --release -p taskswarm-worker --example fibonacci_producer
//! ```
//! `TASKSWARM_SERVERS` (comma-separated URLs) points it elsewhere. Ctrl-C stops it
//! gracefully: running tasks finish (or are given back after the grace period).

use serde_json::{json, Value};
use taskswarm_worker::{Client, TaskContext, TaskError, Worker};

/// Largest n whose fib fits in a u64.
const N_MAX: u64 = 93;

async fn fib(ctx: TaskContext, payload: Value) -> Result<Value, TaskError> {
    let n = payload["n"]
        .as_u64()
        .ok_or_else(|| TaskError::permanent("the payload needs a number `n`"))?;
    if n > N_MAX {
        return Err(
            TaskError::permanent(format!("n must be at most {N_MAX}")).with_code("n_too_large")
        );
    }
    let (mut a, mut b) = (0u128, 1u128);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    ctx.progress(json!({"done": n}))?;
    Ok(json!(a as u64))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let worker = Worker::builder(Client::from_env()?)
        .queue("fib")
        .handler("fib", fib)
        .slots(8)
        .build()?;
    println!(
        "worker {} serving queue `fib`; Ctrl-C stops it",
        worker.worker_id()
    );
    let stats = worker
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    println!("stopped: {stats:?}");
    Ok(())
}
