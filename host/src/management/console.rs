//! The console: the web UI at `/ui/`, served from assets built into the binary
//! (`console/dist`, built by `npm run build` in `console/`), so it needs no files beside the
//! binary and no CDN. The pages hold the admin token for the tab and call the API like any
//! client; serving them needs no token.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

#[derive(rust_embed::Embed)]
#[folder = "../console/dist"]
#[allow_missing = true]
struct Assets;

/// Scripts, styles and requests from this origin only, and never in a frame.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; \
                      object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/ui` and everything under it.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route("/ui/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        if Assets::get("index.html").is_none() {
            return super::api_error::problem(
                "not-found",
                "this binary was built without the console: run scripts/setup.sh (it builds console/) and build tollgate again",
                None,
            );
        }
        return (StatusCode::NOT_FOUND, "no such file in the console").into_response();
    };
    let mime = file.metadata.mimetype();
    // Vite names the assets by their content; index.html names the current ones.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut r = (StatusCode::OK, file.data.into_owned()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}
