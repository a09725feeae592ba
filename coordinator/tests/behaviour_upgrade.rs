//! Behaviour versions across builds: a rolling upgrade from this build (`taskswarm`) to
//! one that supports one version more (`taskswarm-next`, the test-only feature
//! `next-behaviour`) under a running producer and worker, with a rollback inside the
//! mixed-version window; the raise once every node runs the new build; an old build
//! refused on the raised state; and `--behaviour-version-max` holding a raise back.
//!
//! `taskswarm-next` must be built first (`./x test` does):
//! `cargo build --release -p taskswarm-coordinator --features next-behaviour --bin taskswarm-next`

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::producer::Producer;
use common::Cluster;
use serde_json::json;
use taskswarm_state_machine::BEHAVIOUR_VERSION_MAX;

/// This build's version; `taskswarm-next` supports one more.
const THIS: u64 = BEHAVIOUR_VERSION_MAX as u64;
const NEXT: u64 = THIS + 1;

fn next_build() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_taskswarm")).with_file_name("taskswarm-next");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p taskswarm-coordinator \
         --features next-behaviour --bin taskswarm-next` (./x test does)",
        path.display()
    );
    path
}

fn this_build() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_taskswarm"))
}

/// (applied behaviour version, accepted maximum) of a running node.
async fn behaviour(c: &Cluster, id: usize) -> Option<(u64, u64)> {
    let s = c.status(id).await?;
    Some((
        s["behaviour_version"].as_u64()?,
        s["behaviour_version_max"].as_u64()?,
    ))
}

/// Waits until every running node has applied `version`.
async fn wait_version(c: &Cluster, version: u64) {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let mut seen = Vec::new();
        for id in c.running() {
            seen.push(behaviour(c, id).await.map(|b| b.0));
        }
        if seen.iter().all(|v| *v == Some(version)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "behaviour version {version} not reached: {seen:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until node `id` has applied what the leader had applied when asked.
async fn wait_caught_up(c: &Cluster, id: usize) {
    let leader = c.wait_leader().await;
    let target = c.status(leader).await.unwrap()["applied_index"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + common::WAIT;
    loop {
        let applied = c.status(id).await.and_then(|s| s["applied_index"].as_u64());
        if applied.is_some_and(|a| a >= target) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} did not catch up to {target}: {applied:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With no writes in flight: every running node holds the same state.
async fn assert_same_state(c: &Cluster) {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let mut seen = Vec::new();
        for id in c.running() {
            let s = c.status(id).await.unwrap();
            seen.push((s["applied_index"].clone(), s["state_hash"].clone()));
        }
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes differ: {seen:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event names in a task's history, as node `id` has it.
async fn history(c: &Cluster, id: usize, task: u64) -> Vec<String> {
    let (status, body) = c
        .get(id, &format!("/v1/tasks/{task}/events?consistency=local"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

/// A sequential producer (`common::producer`) and a worker that claims one task at a
/// time, reports the same progress twice and completes it, recording every acknowledged
/// completion.
struct Load {
    producer: Producer,
    stop: Arc<AtomicBool>,
    completed: Arc<Mutex<Vec<u64>>>,
    worker: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(c: &Arc<Cluster>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed: Arc<Mutex<Vec<u64>>> = Arc::default();
        let worker = {
            let (c, stop, completed) = (c.clone(), stop.clone(), completed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let claim = json!({"worker": "w1", "queues": ["q"], "max": 1, "lease_ms": 10_000, "wait_ms": 200});
                    let got = c.retry_post("/v1/claim", claim, |s| s == 200).await;
                    let Some(task) = got["tasks"].as_array().and_then(|t| t.first()).cloned()
                    else {
                        continue;
                    };
                    let (id, token) =
                        (task["id"].as_u64().unwrap(), task["lease"]["token"].clone());
                    // The same progress twice: version 2 records the second as nothing.
                    for _ in 0..2 {
                        let beat = json!({"token": token, "progress": {"n": 1}});
                        c.retry_post(&format!("/v1/tasks/{id}/heartbeat"), beat, |s| {
                            s == 200 || s == 409
                        })
                        .await;
                    }
                    let done = json!({"token": token, "result": {"ok": true}});
                    let answer = c
                        .retry_post(&format!("/v1/tasks/{id}/complete"), done, |s| {
                            s == 200 || s == 409
                        })
                        .await;
                    if answer.get("error").is_none() {
                        completed.lock().unwrap().push(id);
                    }
                }
            })
        };
        Load {
            producer: Producer::start(c, "up", Duration::from_millis(10)),
            stop,
            completed,
            worker,
        }
    }

    fn longest_gap_ms(&self, from: Instant, to: Instant) -> u128 {
        self.producer.longest_gap_ms(from, to)
    }

    /// (acknowledged enqueues, acknowledged completions).
    async fn stop(self) -> (Vec<u64>, Vec<u64>) {
        let enqueued = self.producer.stop().await;
        self.stop.store(true, Ordering::Relaxed);
        self.worker.await.unwrap();
        let completed = self.completed.lock().unwrap().clone();
        (enqueued, completed)
    }
}

/// Stops node `id` (SIGTERM), starts it from `bin`, waits until it has caught up; prints
/// the step's longest time without an acknowledged write.
async fn swap_build(c: &Cluster, load: &Load, id: usize, bin: &Path, what: &str) {
    let started = Instant::now();
    c.stop(id);
    c.set_binary(id, bin);
    c.restart(id);
    wait_caught_up(c, id).await;
    println!(
        "{what}: node {id} back and caught up in {} ms; longest time without an acknowledged write {} ms",
        started.elapsed().as_millis(),
        load.longest_gap_ms(started, Instant::now())
    );
}

/// Ids of the running nodes, followers first and the leader last (the runbook's order:
/// one leader change per upgrade).
async fn upgrade_order(c: &Cluster) -> Vec<usize> {
    let leader = c.wait_leader().await;
    let mut order: Vec<usize> = c.running().into_iter().filter(|id| *id != leader).collect();
    order.push(leader);
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_upgrade_across_a_behaviour_version_with_a_rollback_loses_nothing() {
    let next = next_build();
    let c = Arc::new(Cluster::start(3).await);
    // A new cluster of this build is raised to this build's version at once.
    wait_version(&c, THIS).await;
    let load = Load::start(&c);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let order = upgrade_order(&c).await;
    // The mixed window: the first node on the new build, then rolled back, then again.
    swap_build(&c, &load, order[0], &next, "upgrade").await;
    assert_eq!(behaviour(&c, order[0]).await, Some((THIS, NEXT)));
    swap_build(&c, &load, order[0], &this_build(), "rollback").await;
    swap_build(&c, &load, order[0], &next, "upgrade again").await;
    swap_build(&c, &load, order[1], &next, "upgrade").await;
    // Two new builds, one old: still this version, and every node applies the same.
    for id in c.running() {
        assert_eq!(behaviour(&c, id).await.unwrap().0, THIS, "node {id}");
    }
    let mixed = c.enqueue("mixed-window", json!({})).await;
    // The last (the leader): once it runs the new build too, the leader raises.
    swap_build(&c, &load, order[2], &next, "upgrade").await;
    let raised_at = Instant::now();
    wait_version(&c, NEXT).await;
    println!(
        "raised to {NEXT} {} ms after the last node was back",
        raised_at.elapsed().as_millis()
    );
    let after = c.enqueue("after-raise", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (enqueued, completed) = load.stop().await;

    // Nothing acknowledged was lost; every acknowledged completion held.
    let leader = c.wait_leader().await;
    for id in &enqueued {
        let (status, body) = c.get(leader, &format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "acknowledged task {id} missing: {body}");
    }
    for id in &completed {
        let (_, body) = c.get(leader, &format!("/v1/tasks/{id}")).await;
        assert_eq!(body["state"], "succeeded", "task {id}: {body}");
    }
    assert!(
        enqueued.len() > 20 && !completed.is_empty(),
        "{} enqueued, {} completed",
        enqueued.len(),
        completed.len()
    );
    println!(
        "{} enqueued and {} completed, all there",
        enqueued.len(),
        completed.len()
    );
    assert_same_state(&c).await;
    // Version 2 (a report that changes nothing records nothing) held through the window:
    // a worked task has one progress line, whichever build applied it.
    let worked = history(&c, leader, completed[0]).await;
    assert_eq!(
        worked.iter().filter(|e| *e == "progress").count(),
        1,
        "{worked:?}"
    );
    // The test-only version 3 drops the `enqueued` line: applied by the state's
    // version, not the build's, on every node.
    for id in c.running() {
        let (before, since) = (history(&c, id, mixed).await, history(&c, id, after).await);
        assert_eq!(
            before.first().map(String::as_str),
            Some("enqueued"),
            "node {id}: {before:?}"
        );
        assert!(
            !since.iter().any(|e| e == "enqueued"),
            "node {id}: {since:?}"
        );
    }

    // The old build refuses the raised state, with the reason, and changes nothing.
    let victim = c.follower(leader);
    c.stop(victim);
    c.set_binary(victim, &this_build());
    c.restart(victim);
    let exit = c.wait_exit(victim, Duration::from_secs(20));
    let log = c.log(victim);
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the old build started: {exit:?}
{log}"
    );
    assert!(
        log.contains(&format!(
            "the cluster applies behaviour version {NEXT}, and this node accepts at most {THIS}"
        )),
        "{log}"
    );
    c.set_binary(victim, &next);
    c.restart(victim);
    wait_caught_up(&c, victim).await;
    assert_same_state(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_pinned_below_holds_the_raise_back_and_refuses_a_state_above_its_pin() {
    let c = Cluster::start_with_node_flags(3, &[(3, &["--behaviour-version-max", "1"])]).await;
    // Every node has answered heartbeats for well over the report freshness: no raise.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    c.enqueue("pinned", json!({})).await;
    for id in c.running() {
        assert_eq!(behaviour(&c, id).await.unwrap().0, 1, "node {id}");
    }
    assert_eq!(behaviour(&c, 3).await, Some((1, 1)));
    // Without the pin, the leader raises.
    c.stop(3);
    c.set_node_flags(3, &[]);
    c.restart(3);
    wait_version(&c, THIS).await;
    // Pinned again, the node refuses the state it helped raise.
    c.stop(3);
    c.set_node_flags(3, &["--behaviour-version-max", "1"]);
    c.restart(3);
    let exit = c.wait_exit(3, Duration::from_secs(20));
    let log = c.log(3);
    assert!(
        exit.is_some_and(|s| !s.success()),
        "{exit:?}
{log}"
    );
    assert!(log.contains("--behaviour-version-max"), "{log}");
}
