//! The OpenAPI 3.1 document, `GET /v1/openapi.json`.
//!
//! Generated, never written by hand: the schemas come from the `api` crate's wire types
//! (the handlers' own request and response types), and the paths from each handler's
//! `#[utoipa::path]`, which `utoipa-axum` also uses to register the route. What the
//! annotations cannot say per handler is added here once, by rule: the error body on
//! every operation, the leader redirect and `503` on requests the leader serves, and the
//! bearer token. The coordinator's integration tests validate the server's real answers
//! against this document.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use taskswarm_api as api;
use utoipa::OpenApi;

pub const DOCUMENT_PATH: &str = "/v1/openapi.json";

/// Operations answered by whichever node is asked: no redirect to the leader.
const LOCAL_OPERATIONS: [(&str, &str); 8] = [
    ("get", "/v1/cluster"),
    ("get", "/v1/cluster/nodes"),
    ("get", "/v1/rates"),
    ("get", "/v1/events"),
    ("get", DOCUMENT_PATH),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

/// Operations open without the API token.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "taskswarm",
        description = "A Raft-replicated task coordinator: producers enqueue tasks, workers claim them under leases with fencing tokens, heartbeat and end them.\n\nAny node answers. Writes and (by default linearizable) reads are served by the leader: another node answers `307` with `Location` on the leader, or forwards the request itself when it runs with `--forward-to-leader` or the request carries `x-taskswarm-forward: 1`. A `503` with code `indeterminate` means the outcome of a write is unknown, never that it failed: retry with the same idempotency key or read the task.\n\nEvery error is `{\"error\": {\"code\", \"message\"}}`; the codes are listed in the `ErrorCode` schema.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(api::ErrorCode, api::TaskState, api::EventName))
)]
struct Base;

pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// The document of the routes `super::api_routes` serves, built once per process.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, openapi) = super::api_routes().split_for_parts();
        finish(openapi)
    })
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops", responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn document_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

/// Adds what holds for every operation by rule, and serializes.
pub fn finish(openapi: utoipa::openapi::OpenApi) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut doc = serde_json::to_value(&openapi).expect("the document serializes");
    doc["info"]["version"] = json!(version);
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Required when the node runs with `--api-token`."
        }
    });
    doc["components"]["headers"] = json!({
        "Location": {
            "description": "The same path and query on the leader.",
            "schema": {"type": "string", "format": "uri"}
        },
        "RetryAfter": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0}
        }
    });
    doc["components"]["responses"] = json!({
        "Error": error_response("An error; `error.code` says which (see `ErrorCode`).", None),
        "NotLeader": error_response(
            "`not_leader`: this node is not the leader; `Location` and the body name it. Follow the redirect (or send `x-taskswarm-forward: 1`).",
            Some(("Location", "#/components/headers/Location")),
        ),
        "Unavailable": error_response(
            "`no_leader`, `no_quorum`, `unavailable` (nothing was written: retry), or `indeterminate` (a write's outcome is unknown: retry with the same idempotency key or read the task).",
            Some(("Retry-After", "#/components/headers/RetryAfter")),
        ),
        "Unauthorized": error_response("`unauthorized`: no bearer token; `forbidden` (403): a wrong one.", None),
    });
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let open = OPEN_PATHS.contains(&path.as_str());
        for (method, operation) in item.as_object_mut().expect("path item").iter_mut() {
            let leader_served = !LOCAL_OPERATIONS.contains(&(method.as_str(), path.as_str()));
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let responses = operation
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses");
            // OpenAPI requires a description on every response: the reason phrase where
            // the annotation gave none.
            for (status, response) in responses.iter_mut() {
                if response.get("$ref").is_none() && response.get("description").is_none() {
                    let reason = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Answer");
                    response["description"] = json!(reason);
                }
            }
            let reference = |name: &str| json!({"$ref": format!("#/components/responses/{name}")});
            if leader_served {
                responses.insert("307".into(), reference("NotLeader"));
                responses.insert("503".into(), reference("Unavailable"));
            }
            if !open {
                responses.insert("401".into(), reference("Unauthorized"));
                responses.insert("403".into(), reference("Unauthorized"));
            }
            responses.insert("default".into(), reference("Error"));
            if open {
                operation.insert("security".into(), json!([]));
            }
        }
    }
    doc["security"] = json!([{}, {"bearer": []}]);
    serde_json::to_string_pretty(&doc).expect("the document serializes")
}

fn error_response(description: &str, header: Option<(&str, &str)>) -> Value {
    let mut response = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    if let Some((name, reference)) = header {
        response["headers"] = json!({ name: {"$ref": reference} });
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    #[test]
    fn it_is_openapi_3_1_with_every_route() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/v1/tasks",
            "/v1/tasks/{id}",
            "/v1/claim",
            "/v1/tasks/{id}/complete",
            "/v1/events",
            "/v1/cluster/nodes",
            "/v1/rates",
            DOCUMENT_PATH,
            "/healthz",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let text = document();
        let mut rest = text;
        let mut checked = 0;
        while let Some(at) = rest.find("\"$ref\": \"#/") {
            rest = &rest[at + "\"$ref\": \"#".len()..];
            let pointer = &rest[..rest.find('"').unwrap()];
            assert!(doc.pointer(pointer).is_some(), "dangling $ref #{pointer}");
            checked += 1;
        }
        assert!(checked > 20, "{checked} references");
    }

    #[test]
    fn leader_served_operations_document_the_redirect_and_local_ones_do_not() {
        let doc = doc();
        let enqueue = &doc["paths"]["/v1/tasks"]["post"]["responses"];
        assert!(enqueue["307"].is_object() && enqueue["503"].is_object());
        assert!(enqueue["201"].is_object() && enqueue["default"].is_object());
        let status = &doc["paths"]["/v1/cluster"]["get"]["responses"];
        assert!(status["307"].is_null());
        assert!(doc["paths"]["/v1/cluster/nodes"]["get"]["responses"]["307"].is_null());
        assert!(doc["paths"]["/v1/cluster/nodes"]["post"]["responses"]["307"].is_object());
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
    }

    #[test]
    fn the_event_streams_are_documented_as_server_sent_events() {
        let doc = doc();
        for (path, method) in [
            ("/v1/events", "get"),
            ("/v1/tasks/{id}/events", "get"),
            ("/v1/broadcast", "get"),
        ] {
            let content = &doc["paths"][path][method]["responses"]["200"]["content"];
            assert!(
                content["text/event-stream"].is_object(),
                "{path}: {content}"
            );
        }
    }

    #[test]
    fn the_error_code_schema_lists_every_code() {
        let doc = doc();
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // error.rs's tests check that every code the server answers with is an ErrorCode.
        for code in api::ErrorCode::ALL {
            assert!(listed.contains(&code.as_str()));
        }
    }
}
