//! The snapshot cadence (`raft/snapshot_cadence.rs`) in a cluster of real processes:
//! after the first build, enough entries alone do not bring another; the log written
//! since must reach the last snapshot's size.

mod common;

use std::time::Duration;

use common::{Cluster, WAIT};
use serde_json::json;

const BUILDS: &str = "taskswarm_snapshot_builds_total";

/// Waits until the leader's build count reaches `at_least`; returns it.
async fn builds_reach(c: &Cluster, leader: usize, at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let builds = c.metric(leader, BUILDS).await;
        if builds >= at_least {
            return builds;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "builds stayed at {builds}, expected {at_least}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_first_snapshot_the_next_waits_for_the_log_to_reach_its_size() {
    let c = Cluster::start_with(3, &["--snapshot-every", "20"]).await;
    let leader = c.wait_leader().await;
    let big = "x".repeat(1_000);
    // 30 tasks of 1 kB: the first build comes after 20 entries.
    for i in 0..30 {
        c.enqueue(&format!("big-{i}"), json!({"pad": big})).await;
    }
    let first = builds_reach(&c, leader, 1).await;
    // Let a build that was triggered land before measuring.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let first = c.metric(leader, BUILDS).await.max(first);
    let size = c.metric(leader, "taskswarm_snapshot_last_bytes").await;
    assert!(
        size > 20_000,
        "a snapshot of at least 20 tasks of 1 kB: {size} bytes"
    );

    // 30 more entries, each far smaller than a kB: more than --snapshot-every, far less
    // log than the snapshot's size. The loop looks every 250 ms: give it several looks.
    for i in 0..30 {
        c.enqueue(&format!("small-{i}"), json!({"i": i})).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        c.metric(leader, BUILDS).await,
        first,
        "no build before the log reaches the last snapshot's size ({size} bytes)"
    );

    // Then enough log: 1 kB tasks past the snapshot's size.
    let more = size / 1_000 + 5;
    for i in 0..more {
        c.enqueue(&format!("more-{i}"), json!({"pad": big})).await;
    }
    builds_reach(&c, leader, first + 1).await;
}
