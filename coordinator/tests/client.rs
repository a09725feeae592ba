//! The Rust client against a real cluster: redirects from a follower-only configuration,
//! idempotent enqueues, refusals told apart from unknown outcomes.

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::json;
use taskswarm_worker::{api, Client, ClientConfig, ClientError, TaskOutcome};

fn task(kind: &str) -> api::EnqueueRequest {
    api::EnqueueRequest {
        queue: "q".into(),
        kind: kind.into(),
        payload: json!({"n": 1}),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_knows_only_a_follower_follows_redirects_to_the_leader() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = c.follower(leader);
    let client = Client::new([c.url(follower)]).unwrap();
    let r = client.enqueue(task("k")).await.unwrap();
    assert!(r.created);
    let claimed = client
        .claim(&api::ClaimRequest {
            worker: "w".into(),
            queues: vec!["q".into()],
            kinds: None,
            max: 1,
            lease_ms: None,
            wait_ms: 2000,
            min_priority: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed[0].id, r.id);
    client
        .complete(r.id, claimed[0].lease.token, json!(42))
        .await
        .unwrap();
    // A retried complete (same token) is acknowledged again, not refused.
    let again = client
        .complete(r.id, claimed[0].lease.token, json!(42))
        .await
        .unwrap();
    assert!(again.duplicate);
    let done = client.wait(r.id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        TaskOutcome::of(&done),
        Some(TaskOutcome::Succeeded(json!(42)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_retried_with_its_key_never_creates_a_second_task() {
    let c = Cluster::start(3).await;
    let client = Client::new(c.urls.clone()).unwrap();
    let keyed = api::EnqueueRequest {
        idempotency_key: Some("order-7".into()),
        ..task("k")
    };
    let first = client.enqueue(keyed.clone()).await.unwrap();
    let second = client.enqueue(keyed).await.unwrap();
    assert_eq!((second.id, second.created), (first.id, false));
    // Without a key the client makes one per call: two calls, two tasks.
    let a = client.enqueue(task("k")).await.unwrap();
    let b = client.enqueue(task("k")).await.unwrap();
    assert_ne!(a.id, b.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_rejected_and_a_lost_quorum_is_never_reported_as_success() {
    let c = Cluster::start_with(3, &["--write-timeout-ms", "1000"]).await;
    let client = Client::with_config(
        c.urls.clone(),
        ClientConfig {
            retry_budget: Duration::from_secs(4),
            ..ClientConfig::default()
        },
    )
    .unwrap();
    let err = client
        .enqueue(api::EnqueueRequest {
            queue: "no spaces".into(),
            ..task("k")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Rejected { status: 400, code, .. } if code == "invalid_request"),
        "{err:?}"
    );
    let err = client.complete(999, 1, json!(null)).await.unwrap_err();
    assert_eq!(err.code(), Some("not_found"));

    let leader = c.wait_leader().await;
    for id in c.running() {
        if id != leader {
            c.kill(id);
        }
    }
    match client.enqueue(task("k")).await {
        Err(ClientError::Indeterminate(_) | ClientError::Unavailable { .. }) => {}
        other => panic!("a write without a quorum must not succeed: {other:?}"),
    }
    match client
        .claim(&api::ClaimRequest {
            worker: "w".into(),
            queues: vec!["q".into()],
            kinds: None,
            max: 1,
            lease_ms: None,
            wait_ms: 0,
            min_priority: None,
        })
        .await
    {
        // Nothing is claimable (no task was acknowledged) or the read/write is refused.
        Ok(tasks) => assert!(tasks.is_empty()),
        Err(ClientError::Indeterminate(_) | ClientError::Unavailable { .. }) => {}
        Err(other) => panic!("{other:?}"),
    }
}

/// proletariat's work groups: per-item results as they finish, then the whole group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_group_yields_each_result_and_then_all_in_order() {
    use futures::StreamExt;
    use taskswarm_worker::{TaskContext, TaskError, Worker};

    let c = Cluster::start(3).await;
    let client = Client::new(c.urls.clone()).unwrap();
    async fn double(
        _ctx: TaskContext,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, TaskError> {
        let x = payload["x"]
            .as_i64()
            .ok_or_else(|| TaskError::permanent("x is missing"))?;
        if x == 3 {
            return Err(TaskError::permanent("three is refused"));
        }
        Ok(json!(x * 2))
    }
    let worker = Worker::builder(client.clone())
        .queue("g")
        .handler("double", double)
        .slots(4)
        .build()
        .unwrap()
        .start();
    let items: Vec<api::EnqueueRequest> = (0..6)
        .map(|x| api::EnqueueRequest {
            queue: "g".into(),
            kind: "double".into(),
            payload: json!({"x": x}),
            ..Default::default()
        })
        .collect();
    let group = client.submit_group("batch-1", items).await.unwrap();
    assert_eq!(group.ids.len(), 6);
    let mut seen: Vec<usize> = group
        .results(Duration::from_secs(20))
        .map(|(i, _, r)| {
            assert!(r.is_ok());
            i
        })
        .collect()
        .await;
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 5], "every item reported once");
    let all = group.wait_all(Duration::from_secs(20)).await;
    for (x, outcome) in all.into_iter().enumerate() {
        match (x, outcome.unwrap()) {
            (3, Some(TaskOutcome::Failed(e))) => assert!(e.message.contains("three")),
            (x, Some(TaskOutcome::Succeeded(v))) => assert_eq!(v, json!(x as i64 * 2)),
            (x, other) => panic!("item {x}: {other:?}"),
        }
    }
    let task = client.task(group.ids[0]).await.unwrap();
    assert_eq!(task.group.as_deref(), Some("batch-1"));
    worker.shutdown(Duration::from_secs(2)).await;
}

/// Regression: a client that reached only a follower whose leader advertises a name it
/// cannot resolve (a compose-internal hostname, seen from the host) retried for its whole
/// budget (~29 s) and then said only "error sending request". Now it gives up after a
/// few tries past an election's length and names the unresolvable address and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_an_unreachable_leader_fails_fast_and_names_it() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    const LEADER: &str = "http://taskswarm-leader.invalid:7001";
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    // A follower that always redirects to the unreachable leader.
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            let body = json!({"error": {"code": "not_leader", "message": "this node is not the leader",
                "leader_id": 2, "leader_addr": LEADER}});
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, format!("{LEADER}{uri}"))],
                axum::Json(body),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::with_config([format!("http://{addr}")], ClientConfig::default()).unwrap();
    let err = client.enqueue(task("k")).await.unwrap_err();
    match &err {
        ClientError::Unavailable { message, elapsed } => {
            assert!(message.contains(LEADER), "{message}");
            assert!(message.contains("--forward-to-leader"), "{message}");
            // It gave up on the unresolvable name, not at the end of its retry budget.
            assert!(
                *elapsed < ClientConfig::default().retry_budget / 2,
                "{elapsed:?}"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(hits.load(Ordering::Relaxed) >= taskswarm_worker::REDIRECT_UNREACHABLE_MAX);
}
