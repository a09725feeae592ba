//! The one place that maps errors to HTTP status codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use taskswarm_api::{codes, ErrorBody};
use taskswarm_state_machine::Rejection;

use crate::raft::{AdminError, NodeId, ProposeError};

/// Seconds a client should wait before retrying a `503`.
pub const RETRY_AFTER_S: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The state machine refused the command; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this node is not the leader")]
    NotLeader { leader: (NodeId, String) },
    #[error("no leader is known; retry shortly")]
    NoLeader,
    #[error("this node has not heard from a quorum for {0} ms (nothing was written); retry on another node")]
    NoQuorum(u64),
    #[error("the outcome is unknown: {0}; retry with the same idempotency key or read the task")]
    Indeterminate(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}; nothing was written, reads still work")]
    StorageFull(String),
    #[error("{0}")]
    Refused(String),
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    #[error("this API needs `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("the API token is not valid")]
    Forbidden,
}

/// Marks a redirect response; the redirect layer fills in `Location` with the leader's
/// address and the request's own path and query.
#[derive(Debug, Clone)]
pub struct LeaderRedirect(pub String);

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NotLeader {
                leader: Some(leader),
            } => ApiError::NotLeader { leader },
            ProposeError::NotLeader { leader: None } => ApiError::NoLeader,
            ProposeError::Indeterminate(why) => ApiError::Indeterminate(why),
            ProposeError::NoQuorum { since_ms } => ApiError::NoQuorum(since_ms),
            ProposeError::Overloaded => {
                ApiError::Unavailable("too many pending writes; retry shortly".into())
            }
            ProposeError::Unavailable(why) => ApiError::Unavailable(why),
            ProposeError::Stopped => ApiError::Unavailable("the node is stopping".into()),
            e @ ProposeError::StorageFull { .. } => ApiError::StorageFull(e.to_string()),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotLeader {
                leader: Some(leader),
            } => ApiError::NotLeader { leader },
            AdminError::NotLeader { leader: None } => ApiError::NoLeader,
            AdminError::Refused(why) => ApiError::Refused(why),
        }
    }
}

/// Status code of a state-machine rejection.
pub fn rejection_status(r: &Rejection) -> StatusCode {
    match r {
        Rejection::InvalidRequest { .. } | Rejection::BatchTooLarge { .. } => {
            StatusCode::BAD_REQUEST
        }
        Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Rejection::NotFound(_) => StatusCode::NOT_FOUND,
        Rejection::LeaseLost { .. }
        | Rejection::TaskFinished { .. }
        | Rejection::NotRequeueable { .. } => StatusCode::CONFLICT,
        Rejection::QueueFull { .. } | Rejection::TooManyQueues { .. } => {
            StatusCode::INSUFFICIENT_STORAGE
        }
    }
}

/// The JSON body of a rejection, as used inside batch results too.
pub fn rejection_body(r: &Rejection) -> ErrorBody {
    ErrorBody::new(r.code(), r.to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, mut body) = match &self {
            ApiError::Rejected(r) => (rejection_status(r), rejection_body(r)),
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                ErrorBody::new(codes::INVALID_REQUEST, message),
            ),
            ApiError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                ErrorBody::new(codes::NOT_FOUND, message),
            ),
            ApiError::NotLeader { .. } => (
                StatusCode::TEMPORARY_REDIRECT,
                ErrorBody::new(codes::NOT_LEADER, message),
            ),
            ApiError::NoLeader => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::NO_LEADER, message),
            ),
            ApiError::NoQuorum(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::NO_QUORUM, message),
            ),
            ApiError::Indeterminate(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::INDETERMINATE, message),
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::UNAVAILABLE, message),
            ),
            ApiError::StorageFull(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::STORAGE_FULL, message),
            ),
            ApiError::Refused(_) => (
                StatusCode::CONFLICT,
                ErrorBody::new(codes::REFUSED, message),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorBody::new(codes::METHOD_NOT_ALLOWED, message),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorBody::new(codes::UNAUTHORIZED, message),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                ErrorBody::new(codes::FORBIDDEN, message),
            ),
        };
        if let ApiError::NotLeader { leader: (id, addr) } = &self {
            body.error.leader_id = Some(*id);
            body.error.leader_addr = Some(addr.clone());
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
        }
        if let ApiError::NotLeader { leader: (_, addr) } = self {
            response.extensions_mut().insert(LeaderRedirect(addr));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskswarm_state_machine::{TaskId, TaskState, Token};

    fn code_of(e: ApiError) -> String {
        let response = e.into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 16))
            .unwrap();
        serde_json::from_slice::<ErrorBody>(&body)
            .unwrap()
            .error
            .code
    }

    /// The OpenAPI document's `ErrorCode` enum is the list of codes: every answer's code
    /// must be in it.
    #[test]
    fn every_code_the_server_answers_with_is_a_listed_error_code() {
        let rejections = [
            Rejection::InvalidRequest {
                field: "f".into(),
                reason: "r".into(),
            },
            Rejection::PayloadTooLarge {
                field: "f".into(),
                bytes: 2,
                max: 1,
            },
            Rejection::BatchTooLarge {
                what: "w".into(),
                len: 2,
                max: 1,
            },
            Rejection::NotFound(TaskId(1)),
            Rejection::LeaseLost {
                task: TaskId(1),
                token: Token(1),
            },
            Rejection::TaskFinished {
                task: TaskId(1),
                state: TaskState::Succeeded,
            },
            Rejection::NotRequeueable {
                task: TaskId(1),
                state: TaskState::Queued,
            },
            Rejection::QueueFull { max: 1 },
            Rejection::TooManyQueues { max: 1 },
        ];
        // Adding a variant fails to compile here until it is added to the list above.
        for r in &rejections {
            match r {
                Rejection::InvalidRequest { .. }
                | Rejection::PayloadTooLarge { .. }
                | Rejection::BatchTooLarge { .. }
                | Rejection::NotFound(_)
                | Rejection::LeaseLost { .. }
                | Rejection::TaskFinished { .. }
                | Rejection::NotRequeueable { .. }
                | Rejection::QueueFull { .. }
                | Rejection::TooManyQueues { .. } => {}
            }
        }
        let mut errors: Vec<ApiError> = rejections.into_iter().map(ApiError::Rejected).collect();
        errors.extend([
            ApiError::BadRequest("x".into()),
            ApiError::NotFound("x".into()),
            ApiError::NotLeader {
                leader: (1, "http://n1".into()),
            },
            ApiError::NoLeader,
            ApiError::NoQuorum(1),
            ApiError::Indeterminate("x".into()),
            ApiError::Unavailable("x".into()),
            ApiError::StorageFull("x".into()),
            ApiError::Refused("x".into()),
            ApiError::MethodNotAllowed,
            ApiError::Unauthorized,
            ApiError::Forbidden,
        ]);
        for e in errors {
            let what = format!("{e:?}");
            let code = code_of(e);
            assert!(
                taskswarm_api::ErrorCode::parse(&code).is_some(),
                "{what} answers {code}"
            );
        }
    }
}
