//! Fuzz targets for what registry-api parses from a request, driven through
//! the in-process router as a client would reach it: the `/v2/...` path,
//! `Range` on a blob and `Content-Range` on an upload chunk. Each replays
//! its corpus under `fuzz/corpus/` first (see `test_support::fuzz`).

mod content_ranges;
mod endpoints;
mod ranges;

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
