//! Multi-node clusters of real processes on loopback: redirects, failover, restart from
//! disk, and the HTTP error contract.

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{json, Value};

async fn claim_one(c: &Cluster, leader: usize, lease_ms: u64) -> Value {
    let (status, body, _) =
        c.post(leader, "/v1/claim", json!({"worker": "w1", "queues": ["q"], "max": 1, "lease_ms": lease_ms, "wait_ms": 5000})).await;
    assert_eq!(status, 200, "{body}");
    body["tasks"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_to_a_follower_is_redirected_to_the_leader_and_lands() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = c.follower(leader);
    let (status, body, headers) = c
        .post(
            follower,
            "/v1/tasks?x=1",
            json!({"kind": "k", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 307, "{body}");
    assert_eq!(body["error"]["code"], "not_leader");
    assert_eq!(body["error"]["leader_id"], leader as u64);
    let location = headers["location"].to_str().unwrap();
    assert_eq!(location, format!("{}/v1/tasks?x=1", c.url(leader)));
    // Nothing was written by the follower.
    let (_, queues) = c.get(leader, "/v1/queues").await;
    assert_eq!(queues["queues"], json!([]));
    // Following the redirect lands the task.
    let resp = c
        .http
        .post(location)
        .json(&json!({"kind": "k", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let (status, _) = c.get(follower, "/v1/tasks/1?consistency=local").await;
    assert!(
        status == 200 || status == 404,
        "a local read on a follower answers without redirect"
    );
    let (status, _) = c.get(follower, "/v1/tasks/1").await;
    assert_eq!(
        status, 307,
        "a linearizable read on a follower is redirected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_through_enqueue_claim_complete_and_a_waiting_read_sees_the_result() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let (status, body, _) = c
        .post(
            leader,
            "/v1/tasks",
            json!({"queue": "q", "kind": "fib", "payload": {"n": 10}, "idempotency_key": "a"}),
        )
        .await;
    assert_eq!(
        (status, body["created"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let id = body["id"].as_u64().unwrap();
    let (status, again, _) = c
        .post(
            leader,
            "/v1/tasks",
            json!({"queue": "q", "kind": "fib", "payload": {"n": 10}, "idempotency_key": "a"}),
        )
        .await;
    assert_eq!(
        (status, again["id"].as_u64(), again["created"].as_bool()),
        (200, Some(id), Some(false))
    );

    let waiter = {
        let http = c.http.clone();
        let url = format!("{}/v1/tasks/{id}?wait_ms=10000", c.url(leader));
        tokio::spawn(async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let task = claim_one(&c, leader, 30_000).await;
    assert_eq!(task["id"].as_u64(), Some(id));
    assert_eq!(task["payload"], json!({"n": 10}));
    let token = task["lease"]["token"].as_u64().unwrap();
    let (status, body, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/complete"),
            json!({"token": token, "result": 55}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let done = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done["state"].as_str(), done["result"].as_u64()),
        (Some("succeeded"), Some(55))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_structured_error_and_changes_nothing() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let cases: Vec<(&str, &str, u16, &str)> = vec![
        ("/v1/tasks", "{not json", 400, "invalid_request"),
        (
            "/v1/tasks",
            r#"{"kind":"k","colour":"red"}"#,
            400,
            "invalid_request",
        ),
        (
            "/v1/tasks",
            r#"{"kind":"k","queue":"bad queue"}"#,
            400,
            "invalid_request",
        ),
        (
            "/v1/tasks",
            r#"{"kind":"k","priority":5000}"#,
            400,
            "invalid_request",
        ),
        (
            "/v1/claim",
            r#"{"worker":"w","queues":[],"max":1}"#,
            400,
            "invalid_request",
        ),
        ("/v1/tasks/77/complete", r#"{"token":1}"#, 404, "not_found"),
        (
            "/v1/tasks/abc/complete",
            r#"{"token":1}"#,
            400,
            "invalid_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, value) = c.post_raw(leader, path, body).await;
        assert_eq!(
            (got, value["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {value}"
        );
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let big = "x".repeat(taskswarm_state_machine::limits::PAYLOAD_BYTES_MAX + 1);
    let (status, value, _) = c
        .post(leader, "/v1/tasks", json!({"kind": "k", "payload": big}))
        .await;
    assert_eq!(
        (status, value["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (_, queues) = c.get(leader, "/v1/queues").await;
    assert_eq!(queues["queues"], json!([]), "nothing was enqueued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_token_is_refused_after_the_lease_expired_and_the_task_was_claimed_again() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let id = c.enqueue("stale", json!({})).await;
    let first = claim_one(&c, leader, 500).await;
    let old_token = first["lease"]["token"].as_u64().unwrap();
    // The lease expires; the leader's tick requeues the task (default backoff ~1s).
    let second = claim_one(&c, leader, 30_000).await;
    assert_eq!(second["id"].as_u64(), Some(id));
    let new_token = second["lease"]["token"].as_u64().unwrap();
    assert!(new_token > old_token);
    let (status, body, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/complete"),
            json!({"token": old_token, "result": 1}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("lease_lost"))
    );
    let (status, body, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/heartbeat"),
            json!({"token": old_token}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("lease_lost"))
    );
    let (status, _, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/complete"),
            json!({"token": new_token, "result": 2}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_a_new_one_and_loses_no_acknowledged_task() {
    let c = Cluster::start(3).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(c.enqueue(&format!("k{i}"), json!({"i": i})).await);
    }
    let old = c.wait_leader().await;
    c.kill(old);
    let new = c.wait_leader().await;
    assert_ne!(new, old);
    for i in 20..30 {
        ids.push(c.enqueue(&format!("k{i}"), json!({"i": i})).await);
    }
    for id in &ids {
        let (status, task) = c.get(new, &format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "task {id}: {task}");
    }
    c.restart(old);
    // The restarted node catches up to the same state.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let a = c.status(new).await.unwrap();
        let b = c.status(old).await;
        if b.is_some_and(|b| {
            b["state_hash"] == a["state_hash"] && b["applied_index"] == a["applied_index"]
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {old} did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_task_is_back_after_all_nodes_are_killed_and_restarted() {
    let c = Cluster::start(3).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(c.enqueue(&format!("k{i}"), json!({"i": i})).await);
    }
    let leader = c.wait_leader().await;
    let claimed = claim_one(&c, leader, 60_000).await;
    for id in 1..=3 {
        c.kill(id);
    }
    for id in 1..=3 {
        c.restart(id);
    }
    let leader = c.wait_leader().await;
    for (i, id) in ids.iter().enumerate() {
        let (status, task) = c.get(leader, &format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "task {id}: {task}");
        assert_eq!(task["payload"], json!({"i": i}));
    }
    let (_, task) = c.get(leader, &format!("/v1/tasks/{}", claimed["id"])).await;
    assert_eq!(
        task["state"], "running",
        "the lease survived the restart: {task}"
    );
    assert_eq!(task["lease"]["token"], claimed["lease"]["token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_of_three_nodes_down_writes_are_never_acknowledged() {
    let c = Cluster::start_with(3, &["--write-timeout-ms", "1500"]).await;
    let leader = c.wait_leader().await;
    let others: Vec<usize> = c.running().into_iter().filter(|id| *id != leader).collect();
    for id in others {
        c.kill(id);
    }
    for i in 0..3 {
        let (status, body, _) = c
            .post(
                leader,
                "/v1/tasks",
                json!({"kind": "k", "idempotency_key": format!("m{i}")}),
            )
            .await;
        assert!(status == 503 || status == 307, "status {status}: {body}");
        if status == 503 {
            let code = body["error"]["code"].as_str().unwrap();
            assert!(
                code == "indeterminate" || code == "no_leader" || code == "no_quorum",
                "{body}"
            );
        }
    }
    // Once an election timeout has passed without a quorum, the cut-off leader refuses
    // before proposing: a definite `no_quorum`, so clients move on instead of waiting
    // out the write timeout. Reads are refused the same way.
    tokio::time::sleep(Duration::from_millis(2 * common::ELECTION_MAX_MS)).await;
    let before = c.status(leader).await.expect("the leader answers");
    let (status, body, _) = c
        .post(
            leader,
            "/v1/tasks",
            json!({"kind": "k", "idempotency_key": "late"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_quorum", "{body}");
    let (status, body) = c.get(leader, "/v1/tasks?limit=1").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_quorum", "{body}");
    // Nothing was proposed: the leader's log did not grow.
    let after = c.status(leader).await.expect("the leader answers");
    assert_eq!(
        before["last_log_index"], after["last_log_index"],
        "a refused write must not reach the log: {before} → {after}"
    );
}

/// Regression: reading a leased task took the state lock twice; with writers waiting in
/// between, the node deadlocked (std's RwLock queues new readers behind a writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_of_running_tasks_under_write_load_never_stall_the_node() {
    let c = Cluster::start(1).await;
    let id = c.enqueue("r", json!({})).await;
    for i in 0..40 {
        c.enqueue(&format!("r{i}"), json!({})).await;
    }
    // Many leased tasks: a list converts each one's lease while holding the state.
    let (status, _, _) = c
        .post(
            1,
            "/v1/claim",
            json!({"worker": "w", "queues": ["q"], "max": 64, "lease_ms": 600000}),
        )
        .await;
    assert_eq!(status, 200);
    let mut loops = Vec::new();
    for reader in 0..8 {
        let (http, base) = (c.http.clone(), c.url(1).to_owned());
        loops.push(tokio::spawn(async move {
            for _ in 0..1_500 {
                let path = if reader % 2 == 0 {
                    format!("/v1/tasks/{id}")
                } else {
                    "/v1/tasks?consistency=local".to_owned()
                };
                assert!(http
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .is_success());
            }
        }));
    }
    for writer in 0..4 {
        let (http, base) = (c.http.clone(), c.url(1).to_owned());
        loops.push(tokio::spawn(async move {
            for i in 0..500 {
                let body = json!({"kind": "k", "idempotency_key": format!("w{writer}-{i}")});
                assert!(http
                    .post(format!("{base}/v1/tasks"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .is_success());
            }
        }));
    }
    let all = futures::future::join_all(loops);
    let finished = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("no request hangs");
    for r in finished {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_from_the_flags_is_replicated_and_drops_finished_tasks_everywhere() {
    let c = Cluster::start_with(3, &["--retention-ms", "500"]).await;
    let leader = c.wait_leader().await;
    let id = c.enqueue("gone-soon", json!({})).await;
    let (status, _, _) = c
        .post(leader, &format!("/v1/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let mut gone = true;
        for node in c.running() {
            let (status, _) = c
                .get(node, &format!("/v1/tasks/{id}?consistency=local"))
                .await;
            gone &= status == 404;
        }
        if gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the finished task was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The idempotency key went with it: the same key now makes a new task.
    let again = c.enqueue("gone-soon", json!({})).await;
    assert_ne!(again, id);
}

/// A long-polling claim gets tasks that become claimable while it waits: one coming due
/// on a tick, one given back by another worker. (Waiters are woken by the `ready` signal;
/// a 500 ms leadership re-check is the backstop.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_wakes_for_a_task_coming_due_and_for_a_released_task() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let claim =
        |worker: &str| json!({"worker": worker, "queues": ["later"], "max": 1, "wait_ms": 10_000});
    let waiting = {
        let (http, url, body) = (
            c.http.clone(),
            format!("{}/v1/claim", c.url(leader)),
            claim("a"),
        );
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            let v: Value = http
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, _, _) = c
        .post(
            leader,
            "/v1/tasks",
            json!({"queue": "later", "kind": "k", "delay_ms": 700}),
        )
        .await;
    assert_eq!(s, 201);
    let (v, took) = waiting.await.unwrap();
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(
        took < Duration::from_secs(8),
        "woken by the promotion, not the timeout: {took:?}"
    );
    let token = v["tasks"][0]["lease"]["token"].as_u64().unwrap();
    let id = v["tasks"][0]["id"].as_u64().unwrap();

    let waiting = {
        let (http, url, body) = (
            c.http.clone(),
            format!("{}/v1/claim", c.url(leader)),
            claim("b"),
        );
        tokio::spawn(async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/release"),
            json!({"token": token}),
        )
        .await;
    assert_eq!(s, 200);
    let v = tokio::time::timeout(Duration::from_secs(8), waiting)
        .await
        .expect("woken by the release")
        .unwrap();
    assert_eq!(v["tasks"][0]["id"].as_u64(), Some(id), "{v}");
}
