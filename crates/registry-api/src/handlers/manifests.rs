//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use registry_core::{
    Digest, DigestHasher, ErrorCode, Reference, RegistryError, RepositoryName, TagError,
};
use registry_storage::StorageError;

use super::{OCI_SUBJECT, created_headers, digest_headers, empty_response, header_value};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use registry_core::manifest::{self, MAX_MANIFEST_SIZE, ParsedManifest, Referenced};

/// Existence checks in flight at once while validating a manifest.
const CHECK_CONCURRENCY: usize = 16;

fn manifest_unknown(name: &RepositoryName, reference: &Reference) -> ApiError {
    RegistryError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference} is not in repository {name}"),
    )
    .into()
}

/// The answer on a manifest path whose reference is neither a tag nor a
/// digest: no such manifest exists to be read or deleted (404
/// `MANIFEST_UNKNOWN`), and none may be pushed there (400 `TAG_INVALID`,
/// or `DIGEST_INVALID` for what looks like a digest).
pub fn bad_reference(name: &RepositoryName, text: &str, method: &Method) -> ApiError {
    if *method != Method::PUT {
        return RegistryError::new(
            ErrorCode::ManifestUnknown,
            format!(
                "manifest {text:?} is not in repository {name}: it is neither a tag nor a digest"
            ),
        )
        .into();
    }
    let error = match text.parse::<Digest>() {
        Err(error) if text.contains(':') => {
            RegistryError::new(ErrorCode::DigestInvalid, error.to_string())
        }
        _ => RegistryError::new(ErrorCode::TagInvalid, TagError(text.to_owned()).to_string()),
    };
    error.into()
}

pub async fn get(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
    request_headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let found = match reference {
        Reference::Tag(tag) => state
            .store
            .read_tagged_manifest(name, tag)
            .await
            .map(|tagged| (tagged.digest, tagged.bytes, Some(tagged.tagged_at))),
        Reference::Digest(digest) => state
            .store
            .read_manifest(name, digest)
            .await
            .map(|body| (digest.clone(), body, None)),
    };
    let (digest, body, tagged_at) = found.map_err(|error| match error {
        StorageError::NotFound => manifest_unknown(name, reference),
        other => other.into(),
    })?;
    let media_type = manifest::media_type_of(&body);
    if matches!(reference, Reference::Tag(_)) && !accepts(request_headers, &media_type) {
        return Err(RegistryError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is {media_type}, which the Accept header does not list"),
        )
        .into());
    }
    let mut headers = digest_headers(&digest);
    headers.insert(header::CONTENT_TYPE, header_value(&media_type));
    headers.insert(header::CONTENT_LENGTH, body.len().into());
    if let Some(tagged_at) = tagged_at {
        // When the tag was last pointed here: what a UI shows as "pushed".
        headers.insert(
            header::LAST_MODIFIED,
            header_value(&httpdate::fmt_http_date(tagged_at)),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    Ok(response)
}

/// Whether the `Accept` headers admit `media_type`; no `Accept` admits all.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut listed = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.split(';').next().unwrap_or("").trim())
        .filter(|entry| !entry.is_empty())
        .peekable();
    if listed.peek().is_none() {
        return true;
    }
    let family = media_type.split('/').next().unwrap_or("");
    listed.any(|entry| {
        entry == media_type || entry == "*/*" || entry.strip_suffix("/*") == Some(family)
    })
}

pub async fn put(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
    request_headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_manifest_body(request_headers, body).await?;
    let digest = match reference {
        Reference::Digest(expected) => {
            let mut hasher = DigestHasher::new(expected.algorithm());
            hasher.update(&body);
            let computed = hasher.finish();
            if &computed != expected {
                return Err(RegistryError::new(
                    ErrorCode::DigestInvalid,
                    format!("manifest body has digest {computed}, not {expected}"),
                )
                .into());
            }
            computed
        }
        Reference::Tag(_) => Digest::sha256_of(&body),
    };
    let content_type = request_headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or("").trim());
    let parsed = manifest::parse(content_type, &body)?;
    check_references(state, name, &parsed).await?;
    let tag = match reference {
        Reference::Tag(tag) => Some(tag),
        Reference::Digest(_) => None,
    };
    let subject = match &parsed.subject {
        Some(subject) => Some((
            &subject.digest,
            manifest::referrer_descriptor(&parsed, &digest)?,
        )),
        None => None,
    };
    let subject_header = subject.as_ref().map(|(digest, _)| digest.to_string());
    state
        .store
        .put_manifest(name, &digest, body, tag, subject)
        .await?;
    let mut headers = created_headers(&digest, &format!("/v2/{name}/manifests/{digest}"));
    if let Some(subject) = subject_header {
        headers.insert(OCI_SUBJECT, header_value(&subject));
    }
    tracing::info!(repository = %name, %reference, %digest, media_type = %parsed.media_type, "manifest stored");
    Ok(empty_response(StatusCode::CREATED, headers))
}

/// The body of a manifest push, refused with 413 once it is over
/// [`MAX_MANIFEST_SIZE`] (before any of it is read when `Content-Length`
/// says so already), and with 400 when it breaks off.
async fn read_manifest_body(headers: &HeaderMap, body: Body) -> Result<Bytes, RegistryError> {
    let too_large = || {
        RegistryError::new(
            ErrorCode::ManifestInvalid,
            format!(
                "manifest is larger than {MAX_MANIFEST_SIZE} bytes, the most this registry accepts"
            ),
        )
        .with_status(413)
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_MANIFEST_SIZE as u64) {
        return Err(too_large());
    }
    let mut read = BytesMut::new();
    let mut pieces = body.into_data_stream();
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(|error| {
            RegistryError::new(
                ErrorCode::ManifestInvalid,
                format!("the manifest could not be read: {error}"),
            )
        })?;
        if read.len() + piece.len() > MAX_MANIFEST_SIZE {
            return Err(too_large());
        }
        read.extend_from_slice(&piece);
    }
    Ok(read.freeze())
}

/// What a descriptor of a pushed manifest must point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A config or layer: a blob of the repository.
    Blob,
    /// An index entry: a manifest of the repository.
    Child,
    /// The subject, which need not be pushed yet.
    Subject,
}

/// Every blob and child manifest the manifest names must be in the
/// repository already, with the size its descriptor claims; the subject
/// need not be there, but where it is, its size must match too. The first
/// problem in the manifest's own order is reported.
async fn check_references(
    state: &AppState,
    name: &RepositoryName,
    parsed: &ParsedManifest,
) -> ApiResult<()> {
    let with_role = |targets: &[Referenced], role: Role| {
        targets
            .iter()
            .map(move |target| (target.clone(), role))
            .collect::<Vec<_>>()
    };
    let mut targets = with_role(&parsed.blobs, Role::Blob);
    targets.extend(with_role(&parsed.manifests, Role::Child));
    targets.extend(with_role(parsed.subject.as_slice(), Role::Subject));
    let checks = futures::stream::iter(targets)
        .map(|(target, role)| check_reference(state, name, target, role))
        .buffered(CHECK_CONCURRENCY);
    let mut checks = std::pin::pin!(checks);
    while let Some(checked) = checks.next().await {
        checked?;
    }
    Ok(())
}

async fn check_reference(
    state: &AppState,
    name: &RepositoryName,
    target: Referenced,
    role: Role,
) -> ApiResult<()> {
    let digest = &target.digest;
    let stored = match role {
        Role::Blob => state.store.repository_blob_size(name, digest).await?,
        Role::Child | Role::Subject => state.store.manifest_size(name, digest).await?,
    };
    let detail = serde_json::json!({ "field": target.field, "digest": digest.to_string() });
    match stored {
        None if role == Role::Subject => Ok(()),
        None => Err(RegistryError::new(
            ErrorCode::ManifestBlobUnknown,
            format!(
                "{} names {digest}, which is not in repository {name}; push it first",
                target.field
            ),
        )
        .with_detail(detail)
        .into()),
        Some(size) if target.size != Some(size) => Err(RegistryError::new(
            ErrorCode::ManifestInvalid,
            format!(
                "{} says {digest} has {} bytes, but it has {size}",
                target.field,
                target
                    .size
                    .map_or("no size".to_owned(), |claimed| claimed.to_string()),
            ),
        )
        .with_detail(detail)
        .into()),
        Some(_) => Ok(()),
    }
}

pub async fn delete(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
) -> ApiResult<Response> {
    let deleted = match reference {
        Reference::Tag(tag) => state.store.delete_tag(name, tag).await?,
        Reference::Digest(digest) => {
            let subject = match state.store.read_manifest(name, digest).await {
                Ok(body) => manifest::read(&body)
                    .ok()
                    .and_then(|parsed| parsed.subject)
                    .map(|subject| subject.digest),
                Err(StorageError::NotFound) => return Err(manifest_unknown(name, reference)),
                Err(other) => return Err(other.into()),
            };
            state
                .store
                .delete_manifest(name, digest, subject.as_ref())
                .await?
        }
    };
    if !deleted {
        return Err(manifest_unknown(name, reference));
    }
    tracing::info!(repository = %name, %reference, "manifest deleted");
    Ok(empty_response(StatusCode::ACCEPTED, HeaderMap::new()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn accept_lists_types_and_wildcards() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            headers
        };
        let oci = registry_core::media_types::OCI_MANIFEST;
        assert!(accepts(&HeaderMap::new(), oci));
        assert!(accepts(
            &with("application/vnd.oci.image.manifest.v1+json; q=0.5"),
            oci
        ));
        assert!(accepts(&with("text/plain, */*"), oci));
        assert!(accepts(&with("application/*"), oci));
        assert!(!accepts(
            &with(registry_core::media_types::DOCKER_MANIFEST),
            oci
        ));
    }
}
