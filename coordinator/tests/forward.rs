//! `--forward-to-leader`: a follower serves requests for the leader by forwarding them
//! (for clients that cannot reach the leader's advertised address), streams the answer
//! back (long-polls included), still gives the 307 to a client that asks for it, and
//! keeps working after the leader moves.

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{json, Value};

const FORWARDED_TO: &str = "x-taskswarm-forwarded-to";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_writes_and_long_polls_to_the_leader() {
    let c = Cluster::start_with(3, &["--forward-to-leader"]).await;
    let leader = c.wait_leader().await;
    let follower = c.follower(leader);

    // A write through the follower is the leader's answer. Right after an election a
    // follower may answer `503 no_leader` for up to one elector tick (its judgement of
    // the leader's freshness predates the first append): retryable by contract, and
    // the idempotency key makes the retry safe.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let (status, body, headers) = loop {
        let answer = c
            .post(
                follower,
                "/v1/tasks",
                json!({"queue": "fw", "kind": "k", "payload": {"n": 1}, "idempotency_key": "fw-1"}),
            )
            .await;
        let no_leader = answer.0 == 503 && answer.1["error"]["code"] == "no_leader";
        if !no_leader || tokio::time::Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 201, "created: {body}");
    assert_eq!(
        headers.get(FORWARDED_TO).and_then(|v| v.to_str().ok()),
        Some(c.url(leader))
    );
    let id = body["id"].as_u64().unwrap();
    let (status, task) = c.get(leader, &format!("/v1/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["payload"], json!({"n": 1}));

    // Refusals come back as the leader gave them.
    let (status, body, _) = c
        .post(follower, "/v1/tasks", json!({"queue": "fw", "kind": ""}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    // A client that wants the redirect gets it.
    let resp = c
        .http
        .post(format!("{}/v1/tasks", c.url(follower)))
        .header("x-taskswarm-no-forward", "1")
        .json(&json!({"queue": "fw", "kind": "k", "idempotency_key": "fw-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 307);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{}/v1/tasks", c.url(leader)).as_str())
    );

    // A long-poll claim through the follower waits at the leader and returns what is
    // enqueued meanwhile.
    let claim = {
        let http = c.http.clone();
        let url = format!("{}/v1/claim", c.url(follower));
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .json(&json!({"worker": "w", "queues": ["late"], "wait_ms": 5000}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = c
        .post(
            leader,
            "/v1/tasks",
            json!({"queue": "late", "kind": "k", "idempotency_key": "fw-late"}),
        )
        .await;
    assert_eq!(late.0, 201, "{}", late.1);
    let (status, claimed) = claim.await.unwrap();
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["tasks"][0]["id"], late.1["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_follows_the_leader_when_it_moves() {
    let c = Cluster::start_with(3, &["--forward-to-leader"]).await;
    let old = c.wait_leader().await;
    c.kill(old);
    let leader = c.wait_leader().await;
    let follower = c.follower(leader);
    // The follower may still believe in the old leader for a moment: its answers are then
    // `no_leader` (nothing written), never a failure; retried, the write lands.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (status, body, headers) = c
            .post(
                follower,
                "/v1/tasks",
                json!({"queue": "moved", "kind": "k", "idempotency_key": "moved-1"}),
            )
            .await;
        if status == 201 {
            assert_eq!(
                headers.get(FORWARDED_TO).and_then(|v| v.to_str().ok()),
                Some(c.url(leader))
            );
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            ["no_leader", "no_quorum", "indeterminate"]
                .contains(&body["error"]["code"].as_str().unwrap()),
            "{body}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never forwarded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Regression: an open event stream kept a node from stopping (Docker killed it after its
/// grace, exit 137), and a pending long-poll claim added seconds. Now both answer at once
/// when the node begins to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_open_streams_and_long_polls_stops_at_once() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let stream = c
        .http
        .get(format!("{}/v1/events", c.url(leader)))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let poll = {
        let http = c.http.clone();
        let url = format!("{}/v1/claim", c.url(leader));
        tokio::spawn(async move {
            http.post(url)
                .json(&json!({"worker": "w", "queues": ["empty"], "wait_ms": 20000}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = c.stop(leader);
    eprintln!("the leader stopped in {took:?}");
    // Answered by the node (empty), not cut off by the end of the grace period.
    let answered = poll.await.unwrap();
    assert!(
        matches!(answered, Ok(200)),
        "the long-poll got {answered:?}"
    );
    // The stream ended cleanly: the node closed it, it was not cut off.
    let rest = stream.bytes().await;
    assert!(rest.is_ok(), "the event stream was cut off: {rest:?}");
}
