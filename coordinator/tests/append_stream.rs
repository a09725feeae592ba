//! The AppendEntries stream (`raft/append_stream.rs`) in a cluster of real processes: a
//! leader streams to followers that serve it, sends POSTs to one that does not (as to a
//! build from before the stream, during a rolling upgrade), opens a new stream to a
//! restarted follower, and no acknowledged write is lost across all of it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, WAIT};
use serde_json::json;

/// The node started with `--no-append-stream`: it neither serves nor opens streams.
const WITHOUT_STREAM: usize = 3;

/// (streamed, posted) AppendEntries each node answered.
async fn received(c: &Cluster, ids: &[usize]) -> BTreeMap<usize, (u64, u64)> {
    let mut out = BTreeMap::new();
    for &id in ids {
        let streamed = c.metric(id, "taskswarm_raft_appends_streamed_total").await;
        let posted = c.metric(id, "taskswarm_raft_appends_posted_total").await;
        out.insert(id, (streamed, posted));
    }
    out
}

/// Writes 20 tasks through `leader`'s term and checks how each follower received the
/// appends: on a stream exactly when both ends serve it, else as POSTs, never both.
async fn write_and_check_transport(c: &Cluster, round: &str, acked: &mut Vec<u64>) {
    let leader = c.wait_leader().await;
    let followers: Vec<usize> = c.running().into_iter().filter(|id| *id != leader).collect();
    let before = received(c, &followers).await;
    for i in 0..20 {
        acked.push(c.enqueue(&format!("{round}-{i}"), json!({"i": i})).await);
    }
    let streams = |id: usize| id != WITHOUT_STREAM;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let after = received(c, &followers).await;
        let mut all_arrived = true;
        for &f in &followers {
            let streamed = after[&f].0 - before[&f].0;
            let posted = after[&f].1 - before[&f].1;
            if streams(leader) && streams(f) {
                assert_eq!(posted, 0, "{round}: leader {leader} posted to follower {f}");
                all_arrived &= streamed > 0;
            } else {
                assert_eq!(
                    streamed, 0,
                    "{round}: leader {leader} streamed to follower {f}"
                );
                all_arrived &= posted > 0;
            }
        }
        if all_arrived {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{round}: appends did not arrive: {before:?} → {after:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_stream_where_both_ends_serve_it_and_post_elsewhere_through_restarts_and_failover()
{
    let c = Cluster::start_with_node_flags(3, &[(WITHOUT_STREAM, &["--no-append-stream"])]).await;
    let mut acked = Vec::new();
    write_and_check_transport(&c, "first leader", &mut acked).await;
    let first = c.wait_leader().await;
    if first == WITHOUT_STREAM {
        // Failover to a leader that streams, for the restart below.
        c.kill(first);
        write_and_check_transport(&c, "failover from the node without", &mut acked).await;
        c.restart(first);
    }

    // A follower that restarts: the leader's old stream to it is dead, so it opens a new
    // one (the restarted process counts from zero).
    let leader = c.wait_leader().await;
    let follower = (1..=3)
        .find(|id| *id != leader && *id != WITHOUT_STREAM)
        .expect("a streaming follower in a 3-node cluster");
    c.kill(follower);
    c.restart(follower);
    write_and_check_transport(&c, "after a follower restart", &mut acked).await;

    if first != WITHOUT_STREAM {
        // Failover: the next leader streams or posts by the same rule.
        c.kill(leader);
        write_and_check_transport(&c, "second leader", &mut acked).await;
    }

    for id in acked {
        let task = c
            .retry_request("GET", &format!("/v1/tasks/{id}"), None, |s| s == 200)
            .await;
        assert_eq!(task["id"], id, "acknowledged task {id}");
    }
}
