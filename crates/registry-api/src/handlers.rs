//! The endpoint handlers, one module per group of endpoints, and the
//! response pieces they share.

pub mod blobs;
pub mod listing;
pub mod manifests;
pub mod referrers;
pub mod uploads;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::TryStreamExt;
use registry_core::{Digest, RepositoryName};
use registry_storage::ByteStream;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// The request body as a stream of bytes for the store.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// A response with a status, headers and no body.
pub fn empty_response(status: StatusCode, headers: HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// A header value from text we built ourselves (digests, names, numbers),
/// which is always visible ASCII.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("registry-built header values are visible ASCII")
}

/// Headers naming a piece of content by digest.
pub fn digest_headers(digest: &Digest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let text = digest.to_string();
    headers.insert(DOCKER_CONTENT_DIGEST, header_value(&text));
    headers.insert(header::ETAG, header_value(&format!("\"{text}\"")));
    headers
}

/// The headers of `201 Created` for content now at `location`.
pub fn created_headers(digest: &Digest, location: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(DOCKER_CONTENT_DIGEST, header_value(&digest.to_string()));
    headers.insert(header::LOCATION, header_value(location));
    headers
}

/// `201 Created` for a blob now in the repository.
pub fn blob_created(name: &RepositoryName, digest: &Digest) -> Response {
    let headers = created_headers(digest, &format!("/v2/{name}/blobs/{digest}"));
    empty_response(StatusCode::CREATED, headers)
}
