//! Fuzz targets for what registry-api parses from a request, driven through
//! the in-process router as a client would reach it: the `/v2/...` path,
//! `Range` on a blob and `Content-Range` on an upload chunk. Each replays
//! its corpus under `fuzz/corpus/` first (see `test_support::fuzz`).

mod content_ranges;
mod endpoints;
mod ranges;

use axum::http::HeaderValue;
use test_support::TestApp;

/// The router behind a synchronous check: a single-threaded runtime, so a
/// panic in a handler fails the check that caused it.
struct Driver {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
}

impl Driver {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Driver {
            runtime,
            app: TestApp::new(),
        }
    }
}

/// The input as a header value a client could send; `None` for what no
/// client can send, which never reaches the parsers.
fn sendable_header(input: &[u8]) -> Option<&str> {
    std::str::from_utf8(input)
        .ok()
        .filter(|text| HeaderValue::from_str(text).is_ok())
}
