//! The web UI's files, compiled into the binary from `assets/`: served
//! under `/assets/` with an `ETag` (so a new binary's files are fetched at
//! once and unchanged ones are not), and `index.html` for every page URL
//! (`/`, `/repo/...`, `/image/...`), where the script draws the page.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// Each file's entity tag, computed once.
fn etags() -> &'static HashMap<&'static str, HeaderValue> {
    static ETAGS: OnceLock<HashMap<&'static str, HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        let mut etags = HashMap::new();
        let mut pending = vec![&ASSETS];
        while let Some(dir) = pending.pop() {
            for file in dir.files() {
                let Some(path) = file.path().to_str() else {
                    continue;
                };
                let hash = Sha256::digest(file.contents());
                let tag: String = hash[..12]
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                let value = HeaderValue::from_str(&format!("\"{tag}\""))
                    .expect("hex is a valid header value");
                etags.insert(path, value);
            }
            pending.extend(dir.dirs());
        }
        etags
    })
}

/// `GET /assets/{*path}`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// Any page URL: the one HTML page the script draws every page in.
pub async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let (Some(file), Some(etag)) = (ASSETS.get_file(path), etags().get(path)) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|presented| presented == etag);
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = HeaderValue::from_static(content_type(path));
    (
        common,
        [(header::CONTENT_TYPE, content_type)],
        file.contents(),
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
