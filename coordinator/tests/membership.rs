//! Membership changes and snapshot catch-up while tasks flow.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Cluster;
use serde_json::{json, Value};

/// Waits until every running node reports the same applied index and state hash.
async fn converged(c: &Cluster) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let mut seen = Vec::new();
        for id in c.running() {
            seen.push(
                c.status(id)
                    .await
                    .map(|s| (s["applied_index"].clone(), s["state_hash"].clone())),
            );
        }
        if seen.iter().all(|s| s.is_some() && *s == seen[0]) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes did not converge: {seen:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_grows_from_three_to_five_and_shrinks_to_three_while_tasks_flow() {
    let mut c = Cluster::start(3).await;
    let n4 = c.add_node();
    let n5 = c.add_node();
    let c = Arc::new(tokio::sync::Mutex::new(c));

    // A producer keeps enqueueing through every change.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = c
                    .lock()
                    .await
                    .enqueue(&format!("m{i}"), json!({"i": i}))
                    .await;
                acked.push(id);
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let c = c.lock().await;
        for id in [n4, n5] {
            c.retry_post(
                "/v1/cluster/learners",
                json!({"id": id, "addr": c.url(id)}),
                |s| s == 200,
            )
            .await;
        }
        let status = c
            .retry_post(
                "/v1/cluster/membership",
                json!({"voters": [1, 2, 3, 4, 5]}),
                |s| s == 200,
            )
            .await;
        let voters: Vec<u64> = status["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["voter"] == true)
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(voters, vec![1, 2, 3, 4, 5], "{status}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let c = c.lock().await;
        // Remove the first two: the leader may be among them and must hand over.
        let status = c
            .retry_post(
                "/v1/cluster/membership",
                json!({"voters": [3, 4, 5]}),
                |s| s == 200,
            )
            .await;
        let voters: Vec<u64> = status["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["voter"] == true)
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(voters, vec![3, 4, 5], "{status}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = producer.await.unwrap();
    assert!(
        acked.len() > 10,
        "tasks flowed during the changes: {}",
        acked.len()
    );
    let c = Arc::try_unwrap(c).ok().unwrap().into_inner();
    c.kill(1);
    c.kill(2);
    let leader = c.wait_leader().await;
    assert!([3, 4, 5].contains(&leader));
    for id in acked {
        let (status, task) = c.get(leader, &format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "acknowledged task {id} is present: {task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_was_down_while_the_log_was_compacted_catches_up_by_snapshot() {
    let c = Cluster::start_with(3, &["--snapshot-every", "20", "--snapshot-keep-logs", "0"]).await;
    let leader = c.wait_leader().await;
    let down = c.follower(leader);
    c.kill(down);
    let mut ids = Vec::new();
    for i in 0..150 {
        ids.push(c.enqueue(&format!("s{i}"), json!({"i": i})).await);
    }
    let leader = c.wait_leader().await;
    // openraft purges once no replication stream has the range in flight; the stream to
    // the dead node backs off between attempts, so this takes a moment.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let status: Value = c.status(leader).await.unwrap();
        if status["purged_index"].as_u64().unwrap() > 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader never compacted its log: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The leader's metrics report its snapshot builds and its memory.
    assert!(c.metric(leader, "taskswarm_snapshot_builds_total").await >= 1);
    assert!(c.metric(leader, "taskswarm_snapshot_last_tasks").await >= 1);
    assert!(c.metric(leader, "taskswarm_snapshot_last_bytes").await > 0);
    assert!(c.metric(leader, "process_resident_memory_bytes").await > 1024 * 1024);
    c.restart(down);
    converged(&c).await;
    let status: Value = c.status(down).await.unwrap();
    assert!(
        status["snapshot_index"].as_u64().unwrap() > 0,
        "caught up through a snapshot: {status}"
    );
    for id in ids {
        let (s, task) = c
            .get(down, &format!("/v1/tasks/{id}?consistency=local"))
            .await;
        assert_eq!(s, 200, "{task}");
    }
}

/// Regression: a follower far behind on large entries got the same oversized batch
/// resent forever (each try timed out at one heartbeat interval) and never caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_on_large_entries_catches_up() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let down = c.follower(leader);
    c.kill(down);
    let big = "x".repeat(200 * 1024);
    for batch in 0..20 {
        let tasks: Vec<Value> = (0..10).map(|i| json!({"queue": "big", "kind": "k", "payload": big, "idempotency_key": format!("b{batch}-{i}")})).collect();
        c.retry_post("/v1/tasks/batch", json!({"tasks": tasks}), |s| s == 200)
            .await;
    }
    c.restart(down);
    converged(&c).await;
}
