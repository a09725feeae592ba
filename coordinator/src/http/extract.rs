//! A JSON body extractor whose failures are our structured `invalid_request` errors
//! (axum's own answers plain text with 415/422).

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::Rejected(taskswarm_state_machine::Rejection::PayloadTooLarge {
                        field: "body".into(),
                        bytes: 0,
                        max: super::BODY_BYTES_MAX as u64,
                    })
                }
                _ => ApiError::BadRequest(e.body_text()),
            })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
