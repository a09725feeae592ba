//! Live streams over server-sent events: a task's events, every task's events (served by
//! a follower too), and broadcasts.

mod common;

use std::time::Duration;

use common::Cluster;
use futures::StreamExt;
use serde_json::json;

/// Reads SSE `event:` names from a response until `stop` is seen, the stream ends, or
/// the time runs out.
async fn event_names(resp: reqwest::Response, stop: &str, limit: Duration) -> Vec<String> {
    let mut names = Vec::new();
    let mut buf = String::new();
    let mut body = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            if let Some(name) = line.trim_end().strip_prefix("event:") {
                names.push(name.trim().to_owned());
                if name.trim() == stop {
                    return names;
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stream_replays_the_history_then_follows_it_to_the_end() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let id = c.enqueue("s1", json!({})).await;
    let (_, claimed, _) = c
        .post(
            leader,
            "/v1/claim",
            json!({"worker": "w", "queues": ["q"], "wait_ms": 5000}),
        )
        .await;
    let token = claimed["tasks"][0]["lease"]["token"].as_u64().unwrap();
    let resp = c
        .http
        .get(format!("{}/v1/tasks/{id}/events", c.url(leader)))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let reader = tokio::spawn(event_names(resp, "succeeded", Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/heartbeat"),
            json!({"token": token, "progress": {"pct": 50}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(
            leader,
            &format!("/v1/tasks/{id}/complete"),
            json!({"token": token, "result": 1}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        reader.await.unwrap(),
        vec!["enqueued", "claimed", "progress", "succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_streams_every_lifecycle_event_filtered_by_queue() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = c.follower(leader);
    let resp = c
        .http
        .get(format!("{}/v1/events?queue=watched", c.url(follower)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let reader = tokio::spawn(event_names(resp, "cancelled", Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.post(leader, "/v1/tasks", json!({"queue": "other", "kind": "k"}))
        .await;
    let (_, t, _) = c
        .post(
            leader,
            "/v1/tasks",
            json!({"queue": "watched", "kind": "k"}),
        )
        .await;
    c.post(leader, &format!("/v1/tasks/{}/cancel", t["id"]), json!({}))
        .await;
    assert_eq!(reader.await.unwrap(), vec!["enqueued", "cancelled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_are_numbered_and_resumable() {
    let c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    for i in 1..=3 {
        let (s, body, _) = c
            .post(
                leader,
                "/v1/broadcast",
                json!({"channel": "ops", "message": {"i": i}}),
            )
            .await;
        assert_eq!((s, body["seq"].as_u64()), (200, Some(i)));
    }
    let (_, after_one) = c.get(leader, "/v1/broadcast?after=1").await;
    assert_eq!(after_one.as_array().unwrap().len(), 2);
    let resp = c
        .http
        .get(format!("{}/v1/broadcast", c.url(leader)))
        .header("accept", "text/event-stream")
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(event_names(resp, "late", Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.post(
        leader,
        "/v1/broadcast",
        json!({"channel": "late", "message": 4}),
    )
    .await;
    assert_eq!(reader.await.unwrap(), vec!["ops", "late"]);
}
