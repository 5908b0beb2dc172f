//! `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose
//! subject is the digest, optionally filtered by `artifactType`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use oci_spec::image::Descriptor;
use registry_core::media_types::OCI_INDEX;
use registry_core::{Digest, RepositoryName};

use super::OCI_FILTERS_APPLIED;
use crate::AppState;
use crate::error::ApiResult;
use crate::query::Query;

pub async fn list(
    state: &AppState,
    name: &RepositoryName,
    subject: &Digest,
    query: &Query,
) -> ApiResult<Response> {
    let filter = query.get("artifactType").filter(|value| !value.is_empty());
    let mut manifests = Vec::new();
    for entry in state.store.referrers(name, subject).await? {
        let descriptor: Descriptor = match serde_json::from_slice(&entry) {
            Ok(descriptor) => descriptor,
            Err(error) => {
                tracing::warn!(repository = %name, %subject, %error, "skipping a corrupt referrers entry");
                continue;
            }
        };
        let artifact_type = descriptor.artifact_type().as_ref().map(ToString::to_string);
        if filter.is_none() || artifact_type.as_deref() == filter {
            manifests.push(descriptor);
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = index.to_string().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        headers.insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
