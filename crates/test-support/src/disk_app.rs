//! The in-process tier over a store in a temporary directory that already
//! holds one image, for tests that must show that a refused request left
//! not one file behind.

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use registry_api::{AppState, WriteGate};

use crate::{Image, TestApp, TestResponse, files_under};

/// registry-api in process over a store on disk holding `r:v1`.
#[derive(Debug)]
pub struct DiskApp {
    pub app: TestApp,
    /// The image pushed as `r:v1`.
    pub image: Image,
    root: tempfile::TempDir,
    /// The files the store should go on holding.
    before: BTreeSet<PathBuf>,
}

impl DiskApp {
    pub async fn start() -> Self {
        let root = tempfile::tempdir().expect("temporary directory");
        let location = root.path().to_str().expect("a UTF-8 path");
        let store = registry_storage::Store::open(location).expect("a store on disk");
        let app = TestApp {
            state: AppState::new(
                store,
                WriteGate::default(),
                None,
                registry_api::UploadSlots::new(16),
            ),
        };
        let image = Image::random(1, 1000);
        app.push_image("r", "v1", &image).await;
        let before = files_under(root.path());
        DiskApp {
            app,
            image,
            root,
            before,
        }
    }

    /// Takes what the store holds now as what it should go on holding.
    pub fn remember_files(&mut self) {
        self.before = files_under(self.root.path());
    }

    /// Fails unless the store holds exactly the files it held before.
    #[track_caller]
    pub fn assert_nothing_stored(&self, after: &str) {
        let now = files_under(self.root.path());
        let changed: Vec<_> = now.symmetric_difference(&self.before).collect();
        assert!(
            changed.is_empty(),
            "after {after} the store changed: {changed:?}"
        );
    }

    /// `PUT /v2/r/manifests/<reference>` with a `Content-Type`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        body: impl Into<Body>,
    ) -> TestResponse {
        let uri = format!("/v2/r/manifests/{reference}");
        let content_type = [("content-type", media_type)];
        self.app.send(Method::PUT, &uri, &content_type, body).await
    }

    /// Opens an upload session in `r`; returns its location.
    pub async fn start_session(&self) -> String {
        let started = self
            .app
            .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
        started.header("location").expect("Location").to_owned()
    }

    /// Cancels the session at `location`, which must still be open.
    pub async fn cancel_session(&self, location: &str) {
        let cancelled = self.app.delete(location).await;
        assert_eq!(cancelled.status, StatusCode::NO_CONTENT, "{cancelled:?}");
    }
}
