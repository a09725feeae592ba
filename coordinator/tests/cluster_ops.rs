//! The runbook's membership steps: grow 3 → 5 with `add-node` (learner, catch up,
//! voter in one request) and shrink 5 → 3 removing the leader first, under a running
//! producer (every acknowledged task must be there at the end; the longest time without
//! an acknowledged write is printed per step); and replace a dead node with one that
//! starts with an empty disk.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::producer::Producer;
use common::Cluster;
use serde_json::{json, Value};

/// The node that says it leads (non-member nodes, which know no leader, are ignored;
/// `Cluster::wait_leader` wants every running node to agree).
async fn find_leader(c: &Cluster) -> usize {
    let deadline = Instant::now() + common::WAIT;
    loop {
        for id in c.running() {
            if let Some(s) = c.status(id).await {
                if s["leader_id"].as_u64() == Some(id as u64) {
                    return id;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn voters(c: &Cluster) -> Vec<u64> {
    let leader = find_leader(c).await;
    let status = c.status(leader).await.unwrap();
    status["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_to_five_and_shrink_to_three_removing_the_leader_loses_nothing() {
    let mut c = Cluster::start(3).await;
    let n4 = c.add_node();
    let n5 = c.add_node();
    let urls: Vec<String> = c.urls.clone();
    let c = Arc::new(c);

    let producer = Producer::start(&c, "ops", Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Refusals change nothing.
    let leader = find_leader(&c).await;
    let (s, body, _) = c
        .post(
            leader,
            "/v1/cluster/nodes",
            json!({"id": 1, "addr": urls[0]}),
        )
        .await;
    assert_eq!(s, 409, "{body}");

    for id in [n4, n5] {
        let started = Instant::now();
        let status = c
            .retry_post(
                "/v1/cluster/nodes",
                json!({"id": id, "addr": urls[id - 1]}),
                |s| s == 200,
            )
            .await;
        let took = started.elapsed();
        let gap = producer.longest_gap_ms(started, Instant::now());
        println!(
            "add-node {id}: {} ms, longest time without an acknowledged write {gap} ms",
            took.as_millis()
        );
        assert!(
            status["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == id as u64 && m["voter"] == true),
            "{status}"
        );
    }
    assert_eq!(voters(&c).await, vec![1, 2, 3, 4, 5]);

    // Shrink, the leader first.
    let leader = find_leader(&c).await as u64;
    let started = Instant::now();
    let resp = c
        .http
        .delete(format!(
            "{}/v1/cluster/nodes/{leader}",
            c.url(leader as usize)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    // A new leader among the others, then the removed one is out.
    let deadline = Instant::now() + common::WAIT;
    loop {
        let v = voters(&c).await;
        if !v.contains(&leader) && find_leader(&c).await as u64 != leader {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed leader is still a voter or leader: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "remove-node {leader} (the leader): longest time without an acknowledged write {} ms",
        producer.longest_gap_ms(started, Instant::now())
    );

    let remaining = voters(&c).await;
    assert_eq!(remaining.len(), 4);
    let current = find_leader(&c).await as u64;
    let victim = *remaining.iter().find(|id| **id != current).unwrap();
    let started = Instant::now();
    let status = c
        .retry_request(
            "DELETE",
            &format!("/v1/cluster/nodes/{victim}"),
            None,
            |s| s == 200,
        )
        .await;
    println!(
        "remove-node {victim}: longest time without an acknowledged write {} ms",
        producer.longest_gap_ms(started, Instant::now())
    );
    assert_eq!(status["members"].as_array().unwrap().len(), 3, "{status}");

    // Below three voters needs force.
    let leader = find_leader(&c).await;
    let other = *voters(&c)
        .await
        .iter()
        .find(|id| **id != leader as u64)
        .unwrap();
    let resp = c
        .http
        .delete(format!("{}/v1/cluster/nodes/{other}", c.url(leader)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("force"),
        "{body}"
    );

    let acked = producer.stop().await;
    assert!(
        acked.len() > 50,
        "the producer made progress: {}",
        acked.len()
    );
    for id in &acked {
        let (s, task) = c.get(leader, &format!("/v1/tasks/{id}")).await;
        assert_eq!(s, 200, "acknowledged task {id} lost: {task}");
    }
    println!("{} acknowledged tasks, all present", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_by_one_with_an_empty_disk() {
    let c = Cluster::start(3).await;
    let leader = find_leader(&c).await;
    for i in 0..20 {
        c.enqueue(&format!("before{i}"), json!({"i": i})).await;
    }
    let dead = c.follower(leader);
    c.kill(dead);

    // 1. Remove the dead voter (two of three still form a majority), forcing below three.
    let started = Instant::now();
    let status = c
        .retry_request(
            "DELETE",
            &format!("/v1/cluster/nodes/{dead}?force=true"),
            None,
            |s| s == 200,
        )
        .await;
    println!(
        "remove-node {dead} (dead): {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(status["members"].as_array().unwrap().len(), 2, "{status}");

    // 2. Its disk is gone; it starts empty, with the same id and address.
    std::fs::remove_dir_all(c.dir.path().join(format!("node-{dead}"))).unwrap();
    c.restart(dead);

    // 3. Add it back: learner, catch up (by snapshot or log), voter.
    let started = Instant::now();
    let addr = c.url(dead).to_owned();
    let status = c
        .retry_post(
            "/v1/cluster/nodes",
            json!({"id": dead, "addr": addr}),
            |s| s == 200,
        )
        .await;
    println!(
        "add-node {dead} (empty disk): {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(voters(&c).await.len(), 3, "{status}");

    // It serves the same state: a local read on it finds every task.
    for id in 1..=20u64 {
        let deadline = Instant::now() + common::WAIT;
        loop {
            let (s, _) = c
                .get(dead, &format!("/v1/tasks/{id}?consistency=local"))
                .await;
            if s == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached the new node"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The cluster of three takes writes again.
    let id = c.enqueue("after", json!({"after": true})).await;
    assert!(id > 20);
}

/// The lowest id is the node that forms a cluster on an empty disk: replaced with the
/// same flags, it must find its peers serving and wait to be added instead (it formed a
/// second cluster before), and add-node must wait until it has really caught up (it made
/// a node that could not talk to the others a voter at once). Then it must count as a
/// voter: with it and one other node, writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowest_id_replaced_with_an_empty_disk_rejoins_and_votes() {
    let c = Cluster::start(3).await;
    for i in 0..30 {
        c.enqueue(&format!("before{i}"), json!({"i": i})).await;
    }
    c.kill(1);
    c.retry_request("DELETE", "/v1/cluster/nodes/1?force=true", None, |s| {
        s == 200
    })
    .await;
    std::fs::remove_dir_all(c.dir.path().join("node-1")).unwrap();
    c.restart(1);
    let started = Instant::now();
    let addr = c.url(1).to_owned();
    c.retry_post("/v1/cluster/nodes", json!({"id": 1, "addr": addr}), |s| {
        s == 200
    })
    .await;
    println!(
        "add-node 1 (empty disk): {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        !c.log(1).contains("initialized a new cluster"),
        "node 1 formed a second cluster:\n{}",
        c.log(1)
    );
    assert_eq!(voters(&c).await.len(), 3);
    // It has the log (add-node waited for it) and applies it.
    let deadline = Instant::now() + common::WAIT;
    loop {
        let (s, _) = c.get(1, "/v1/tasks/30?consistency=local").await;
        if s == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 never caught up\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A voter that votes: with node 1 and one other, the cluster still takes writes.
    let leader = find_leader(&c).await;
    let other = (2..=3).find(|id| *id != leader).unwrap();
    c.kill(other);
    let id = c.enqueue("after", json!({"after": true})).await;
    assert!(id > 30);
}
