//! Optional API authentication: with `--api-token` set, every request but the health
//! probes and the dashboard's assets must carry `Authorization: Bearer <token>`. Missing → 401, wrong → 403.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::secret::secrets_match;

/// Paths a load balancer or orchestrator probes without credentials.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The probes, and the dashboard's assets (they hold no data; the page asks for the
/// token and sends it with every API request).
fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path)
        || path
            .strip_prefix(super::ui::UI_PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = token else {
        return next.run(req).await;
    };
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => ApiError::Unauthorized.into_response(),
        Some(given) if !secrets_match(given.as_bytes(), expected.as_bytes()) => {
            ApiError::Forbidden.into_response()
        }
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::is_open;

    #[test]
    fn only_the_probes_and_the_dashboard_assets_are_open() {
        for open in ["/healthz", "/readyz", "/ui", "/ui/", "/ui/js/app.js"] {
            assert!(is_open(open), "{open}");
        }
        for closed in ["/v1/queues", "/uix", "/uiabc/x", "/metrics", "/"] {
            assert!(!is_open(closed), "{closed}");
        }
    }
}
