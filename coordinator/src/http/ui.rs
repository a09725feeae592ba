//! The dashboard at `/ui`: static assets from `coordinator/ui/`, compiled into the
//! binary (no build step: plain HTML, CSS and ES modules). The page reads the same v1 API
//! as every client, sending `x-taskswarm-forward: 1` so a follower's page works too. The
//! assets hold no data, so they are served without the API token (the page asks for it).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/ui");

/// Path prefix of the dashboard; `auth.rs` lets it through without a token.
pub const UI_PREFIX: &str = "/ui";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

fn asset(path: &str) -> Response {
    match ASSETS.get_file(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // Assets change with the binary; a reload after an upgrade must not mix
                // an old module with a new one.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.contents(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            super::error::ApiError::NotFound(format!("no dashboard asset {path:?}")),
        )
            .into_response(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Bytes the assets add to the binary.
#[cfg(test)]
fn assets_bytes() -> usize {
    fn walk(dir: &Dir<'_>) -> usize {
        dir.files().map(|f| f.contents().len()).sum::<usize>() + dir.dirs().map(walk).sum::<usize>()
    }
    walk(&ASSETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_and_its_modules_are_embedded() {
        let index = std::str::from_utf8(ASSETS.get_file("index.html").unwrap().contents()).unwrap();
        assert!(index.contains("<script"), "index.html loads a script");
        let bytes = assets_bytes();
        println!("dashboard assets: {bytes} bytes");
        assert!(bytes > 1_000);
        // Every asset the index names by a relative URL is embedded.
        for reference in index.split(['"', '\'']).filter(|s| s.starts_with("./")) {
            let path = reference.trim_start_matches("./");
            assert!(
                ASSETS.get_file(path).is_some(),
                "index.html names missing {path}"
            );
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
