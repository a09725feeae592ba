//! The wire stays the same: JSON as v1 servers and clients send it (saved here as text)
//! decodes into the typed fields and encodes back to the same JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use taskswarm_api as api;

fn round_trip<T: DeserializeOwned + Serialize>(saved: &str) -> T {
    let typed: T = serde_json::from_str(saved).unwrap_or_else(|e| panic!("{e}: {saved}"));
    let again = serde_json::to_value(&typed).unwrap();
    let saved: Value = serde_json::from_str(saved).unwrap();
    assert_eq!(again, saved, "the encoding changed");
    typed
}

#[test]
fn a_task_view() {
    let t: api::TaskView = round_trip(
        r#"{"id":7,"queue":"emails","kind":"send","payload":{"to":"a@b"},"priority":0,
            "state":"running","attempt":1,"max_attempts":3,
            "lease":{"worker":"w1","token":196608,"lease_ms":30000,"expires_at_ms":1796059057000},
            "cancel_requested":false,"result":null,"error":null,"progress":{"pct":50},
            "group":"g","idempotency_key":"k7","coalesce_key":null,"joined":0,
            "created_at_ms":1796059027000,"run_at_ms":null,"finished_at_ms":null}"#,
    );
    assert_eq!(t.state, api::TaskState::Running);
}

#[test]
fn events_and_their_states() {
    let e: api::EventView = round_trip(
        r#"{"task":7,"queue":"emails","state":"succeeded","event":"succeeded","at_ms":1,"token":196608}"#,
    );
    assert_eq!(
        (e.event, e.state),
        (api::EventName::Succeeded, Some(api::TaskState::Succeeded))
    );
    let e: api::EventView = round_trip(
        r#"{"task":7,"queue":"q","event":"attempt_failed","at_ms":1,"error":{"code":"handler_error","message":"x"}}"#,
    );
    assert_eq!(e.event, api::EventName::AttemptFailed);
}

#[test]
fn queue_counts_by_state() {
    let q: api::QueuesResponse = round_trip(
        r#"{"queues":[{"name":"q","paused":true,"counts":{"cancelled":0,"expired":1,"failed":2,
            "queued":3,"running":4,"scheduled":5,"succeeded":6},"oldest_queued_at_ms":1796059027000}]}"#,
    );
    assert_eq!(q.queues[0].counts[&api::TaskState::Failed], 2);
}

#[test]
fn errors_keep_their_code_as_text() {
    let e: api::ErrorBody = round_trip(
        r#"{"error":{"code":"not_leader","message":"this node is not the leader","leader_id":1,"leader_addr":"http://n1:7001"}}"#,
    );
    assert_eq!(e.error.kind(), Some(api::ErrorCode::NotLeader));
    // A code this build does not know still decodes (a newer server).
    let e: api::ErrorBody = round_trip(r#"{"error":{"code":"from_the_future","message":"m"}}"#);
    assert_eq!(e.error.kind(), None);
}

#[test]
fn batch_answers_mix_results_and_errors() {
    let b: api::BatchEnqueueResponse = round_trip(
        r#"{"results":[{"id":1,"created":true,"coalesced":false,"state":"queued"},
            {"error":{"code":"invalid_request","message":"invalid queue: bad"}}]}"#,
    );
    assert!(matches!(b.results[1], api::ItemResult::Err(_)));
    let s: api::StateResponse = round_trip(r#"{"id":3,"state":"cancelled"}"#);
    assert_eq!(s.state, api::TaskState::Cancelled);
}
