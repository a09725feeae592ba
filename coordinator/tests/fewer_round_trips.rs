//! Fewer round trips per task, against a real cluster: a completion that claims the next
//! task in the same request (granted only if the completion held), batched completes and
//! the client's automatic batching of concurrent enqueues (each item, each caller gets its
//! own answer).

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{json, Value};
use taskswarm_worker::{api, Client, Worker};

fn claim_body(max: u32) -> Value {
    json!({"worker": "w", "queues": ["q"], "max": max, "lease_ms": 30_000})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_with_next_claims_only_when_the_completion_holds() {
    let c = Cluster::start(1).await;
    let leader = c.wait_leader().await;
    let first = c.enqueue("a", json!(1)).await;
    let second = c.enqueue("b", json!(2)).await;
    let third = c.enqueue("c", json!(3)).await;
    let (status, body, _) = c.post(leader, "/v1/claim", claim_body(1)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["tasks"][0]["lease"]["token"].as_u64().unwrap();
    assert_eq!(body["tasks"][0]["id"].as_u64(), Some(first));

    // A stale token: refused, and the next task stays queued.
    let stale = json!({"token": token - 1, "result": 0, "next": claim_body(1)});
    let (status, body, _) = c
        .post(leader, &format!("/v1/tasks/{first}/complete"), stale)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("lease_lost")),
        "{body}"
    );
    // An invalid claim: refused whole, the completion did not happen either.
    let bad = json!({"token": token, "result": 0, "next": {"worker": "w", "queues": [], "max": 1}});
    let (status, body, _) = c
        .post(leader, &format!("/v1/tasks/{first}/complete"), bad)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (_, view) = c.get(leader, &format!("/v1/tasks/{second}")).await;
    assert_eq!(view["state"], "queued");
    let (_, view) = c.get(leader, &format!("/v1/tasks/{first}")).await;
    assert_eq!(view["state"], "running");

    // The real thing: completed, and the next task leased with a larger token.
    let good = json!({"token": token, "result": "done", "next": claim_body(1)});
    let (status, body, _) = c
        .post(leader, &format!("/v1/tasks/{first}/complete"), good)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "succeeded");
    let next = &body["next"][0];
    assert_eq!(next["id"].as_u64(), Some(second));
    let next_token = next["lease"]["token"].as_u64().unwrap();
    assert!(next_token > token);

    // Completing the last one with a long-poll: nothing left, so it waits, then answers
    // the completion with no tasks.
    let (_, body, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{second}/complete"),
            json!({"token": next_token, "next": claim_body(1)}),
        )
        .await;
    let third_token = body["next"][0]["lease"]["token"].as_u64().unwrap();
    assert_eq!(body["next"][0]["id"].as_u64(), Some(third));
    let mut wait = claim_body(1);
    wait["wait_ms"] = json!(300);
    let started = std::time::Instant::now();
    let (status, body, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{third}/complete"),
            json!({"token": third_token, "next": wait}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], json!([]));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it long-polled"
    );
    let (_, view) = c.get(leader, &format!("/v1/tasks/{third}")).await;
    assert_eq!(view["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_completes_answer_each_item() {
    let c = Cluster::start(3).await;
    c.wait_leader().await;
    let client = Client::new(c.urls.clone()).unwrap();
    for n in 0..3 {
        c.enqueue(&format!("t{n}"), json!(n)).await;
    }
    let claimed = client
        .claim(&api::ClaimRequest {
            worker: "w".into(),
            queues: vec!["q".into()],
            kinds: None,
            max: 3,
            lease_ms: Some(30_000),
            wait_ms: 0,
            min_priority: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let item = |t: &api::ClaimedTask, token: u64| api::CompleteItem {
        task: t.id,
        token,
        result: json!(t.id),
    };
    let items = vec![
        item(&claimed[0], claimed[0].lease.token),
        item(&claimed[1], claimed[1].lease.token - 1), // stale
        item(&claimed[2], claimed[2].lease.token),
        item(&claimed[0], claimed[0].lease.token), // a repeat in the same batch
    ];
    let results = client.complete_batch(items).await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        matches!(&results[0], api::CompleteItemResult::Ok(r) if r.state == api::TaskState::Succeeded)
    );
    assert!(
        matches!(&results[1], api::CompleteItemResult::Err(e) if e.error.code == "lease_lost"),
        "{:?}",
        results[1]
    );
    assert!(matches!(&results[2], api::CompleteItemResult::Ok(r) if !r.duplicate));
    assert!(matches!(&results[3], api::CompleteItemResult::Ok(r) if r.duplicate));
    assert_eq!(
        client.task(claimed[1].id).await.unwrap().state,
        api::TaskState::Running
    );
    let err = client.complete_batch(Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_claims_on_complete_runs_every_task_once() {
    let c = Cluster::start(3).await;
    c.wait_leader().await;
    let client = Client::new(c.urls.clone()).unwrap();
    let tasks_n = 60u64;
    let mut ids = Vec::new();
    for n in 0..tasks_n {
        let r = client
            .enqueue(api::EnqueueRequest {
                queue: "q".into(),
                kind: "double".into(),
                payload: json!(n),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push((r.id, n));
    }
    let worker = Worker::builder(client.clone())
        .queue("q")
        .slots(2)
        .handler("double", |_ctx, v: Value| async move {
            Ok(json!(v.as_u64().unwrap() * 2))
        })
        .build()
        .unwrap();
    let handle = worker.start();
    for (id, n) in &ids {
        let done = client.wait(*id, Duration::from_secs(20)).await.unwrap();
        assert_eq!(done.state, api::TaskState::Succeeded, "{done:?}");
        assert_eq!(done.result, Some(json!(n * 2)));
        assert_eq!(done.attempt, 1, "ran once: {done:?}");
    }
    let stats = handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.completed, tasks_n);
    // Tasks taken by completions count as claimed too: each exactly once.
    assert_eq!(stats.claimed, tasks_n);
    assert_eq!((stats.lease_lost, stats.released), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_enqueues_answer_each_caller_with_its_own_result() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let client = Client::new(c.urls.clone()).unwrap();
    let batcher = client.enqueue_batcher(Duration::from_millis(1));
    let before = commands_proposed(&c, leader).await;
    let callers: Vec<_> = (0..64u64)
        .map(|n| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                // Every 16th task names a queue the server refuses.
                let queue = if n % 16 == 5 { "bad queue" } else { "q" };
                let r = batcher
                    .enqueue(api::EnqueueRequest {
                        queue: queue.into(),
                        kind: "k".into(),
                        payload: json!(n),
                        ..Default::default()
                    })
                    .await;
                (n, r)
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for caller in callers {
        let (n, r) = caller.await.unwrap();
        if n % 16 == 5 {
            assert_eq!(r.unwrap_err().code(), Some("invalid_request"), "task {n}");
        } else {
            let r = r.unwrap();
            assert!(ids.insert(r.id), "task {n} got its own id");
            let (_, view) = c.get(leader, &format!("/v1/tasks/{}", r.id)).await;
            assert_eq!(view["payload"], json!(n), "task {n} got its own task");
        }
    }
    assert_eq!(ids.len(), 60);
    let proposed = commands_proposed(&c, leader).await - before;
    // Ticks may land in between; 64 single enqueues would be 64 commands at least.
    assert!(
        proposed < 32,
        "64 enqueues travelled in {proposed} commands"
    );
}

/// The leader's count of proposed commands, from its metrics.
async fn commands_proposed(c: &Cluster, leader: usize) -> u64 {
    c.metric(leader, "taskswarm_commands_proposed_total").await
}
