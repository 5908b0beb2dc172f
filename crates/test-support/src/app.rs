//! The in-process tier: the registry-api router over an in-memory store,
//! driven with `oneshot` requests.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use registry_api::{AppState, WriteGate};
use registry_storage::Store;
use tower::ServiceExt;

/// A registry-api router over a fresh in-memory store.
#[derive(Clone, Debug)]
pub struct TestApp {
    pub state: AppState,
}

/// What a client saw.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Fails unless this is an error with `status` and the OCI `code`;
    /// `what` names the request in the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(self.status.as_u16(), status, "{what}: {self:?}");
        assert_eq!(self.error_code(), code, "{what}");
    }

    /// The code of the first error in an OCI error body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "not an OCI error body: {}",
                    String::from_utf8_lossy(&self.body)
                )
            })
            .to_owned()
    }
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    pub fn new() -> Self {
        TestApp {
            state: AppState::new(
                Store::in_memory(),
                WriteGate::default(),
                None,
                registry_api::UploadSlots::new(16),
            ),
        }
    }

    /// Sends a request with headers and a body.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).expect("a valid test request");
        let response = registry_api::router(self.state.clone())
            .oneshot(request)
            .await
            .expect("the router never fails");
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .expect("reading the response body")
            .to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    pub async fn head(&self, uri: &str) -> TestResponse {
        self.send(Method::HEAD, uri, &[], Body::empty()).await
    }

    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.send(Method::DELETE, uri, &[], Body::empty()).await
    }

    /// Pushes a blob monolithically; asserts it was created.
    pub async fn push_blob(&self, repository: &str, blob: &crate::Blob) {
        let uri = format!("/v2/{repository}/blobs/uploads/?digest={}", blob.digest);
        let response = self.send(Method::POST, &uri, &[], blob.bytes.clone()).await;
        assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    }

    /// Pushes a manifest under `reference`; returns the response.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &crate::Blob,
    ) -> TestResponse {
        let uri = format!("/v2/{repository}/manifests/{reference}");
        let content_type = [("content-type", manifest.media_type.as_str())];
        self.send(Method::PUT, &uri, &content_type, manifest.bytes.clone())
            .await
    }

    /// Pushes an image's blobs and manifest; asserts the manifest was created.
    pub async fn push_image(&self, repository: &str, tag: &str, image: &crate::Image) {
        for blob in image.blobs() {
            self.push_blob(repository, blob).await;
        }
        let response = self.put_manifest(repository, tag, &image.manifest).await;
        assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    }
}
