//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic with
//! `?digest=`, or cross-repository mount), `PATCH` chunks, `PUT ?digest=` to
//! close, `GET` for progress and `DELETE` to cancel.

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use registry_core::{Digest, ErrorCode, RegistryError, RepositoryName};
use registry_storage::UploadId;

use super::{DOCKER_UPLOAD_UUID, blob_created, body_stream, empty_response, header_value};
use crate::AppState;
use crate::access::MountScope;
use crate::endpoint::parse_digest;
use crate::error::{ApiError, ApiResult};
use crate::metrics::bytes_received;
use crate::query::Query;

pub async fn start(
    state: &AppState,
    name: &RepositoryName,
    query: &Query,
    mount_scope: MountScope,
    body: Body,
) -> ApiResult<Response> {
    if let Some(mount) = query.get("mount") {
        if let Some(digest) = mountable(state, query, mount, mount_scope).await? {
            state.store.link_blob(name, &digest).await?;
            tracing::info!(repository = %name, %digest, from = query.get("from"), "blob mounted");
            return Ok(blob_created(name, &digest));
        }
    } else if let Some(digest) = query.get("digest") {
        let digest = parse_digest(digest)?;
        let size = state
            .store
            .put_blob(name, &digest, body_stream(body))
            .await?;
        bytes_received(size);
        tracing::info!(repository = %name, %digest, size, "blob stored");
        return Ok(blob_created(name, &digest));
    }
    let id = state.store.create_upload(name).await?;
    let mut response = upload_progress(StatusCode::ACCEPTED, name, &id, 0);
    if let Some(length) = state.store.chunk_min_length() {
        response
            .headers_mut()
            .insert(OCI_CHUNK_MIN_LENGTH, length.into());
    }
    Ok(response)
}

/// The smallest chunk but the last the session should be sent (OCI
/// Distribution 1.1), where the store has one.
const OCI_CHUNK_MIN_LENGTH: header::HeaderName =
    header::HeaderName::from_static("oci-chunk-min-length");

/// The blob a `?mount=` names, when it can be mounted. A digest or a
/// `from` that is not valid names nothing to mount: like a blob that is
/// not there, the push falls back to an upload session, as the spec and
/// Distribution do.
async fn mountable(
    state: &AppState,
    query: &Query,
    mount: &str,
    mount_scope: MountScope,
) -> ApiResult<Option<Digest>> {
    let Ok(digest) = mount.parse::<Digest>() else {
        tracing::debug!(
            mount,
            "a mount of an invalid digest; opening a session instead"
        );
        return Ok(None);
    };
    let found = match (query.get("from"), mount_scope) {
        (_, MountScope::Nowhere) | (None, MountScope::FromOnly) => None,
        (Some(from), _) => match from.parse::<RepositoryName>() {
            Ok(from) => state.store.repository_blob_size(&from, &digest).await?,
            Err(_) => {
                tracing::debug!(
                    from,
                    "a mount from an invalid name; opening a session instead"
                );
                None
            }
        },
        (None, MountScope::Anywhere) => state.store.blob_size(&digest).await?,
    };
    Ok(found.map(|_| digest))
}

pub async fn status(state: &AppState, name: &RepositoryName, id: &UploadId) -> ApiResult<Response> {
    let status = state.store.upload_status(name, id).await?;
    Ok(upload_progress(
        StatusCode::NO_CONTENT,
        name,
        id,
        status.offset,
    ))
}

pub async fn patch(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let appended = match chunk_start(headers) {
        Ok(start) => state
            .store
            .append_upload(name, id, start, body_stream(body))
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error.into()),
    };
    match appended {
        Ok(appended) => {
            bytes_received(appended.end - appended.start);
            Ok(upload_progress(
                StatusCode::ACCEPTED,
                name,
                id,
                appended.end,
            ))
        }
        Err(error) if error.status() == 416 => Ok(refused_chunk(state, name, id, error).await),
        Err(error) => Err(error),
    }
}

/// The 416 for a chunk that does not start where the session ends, with
/// the session's `Location` and `Range`, so the client can resume.
async fn refused_chunk(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    error: ApiError,
) -> Response {
    let offset = match state.store.upload_status(name, id).await {
        Ok(status) => status.offset,
        Err(lookup) => return ApiError::from(lookup).into_response(),
    };
    let mut response = error.into_response();
    let progress = upload_progress(StatusCode::RANGE_NOT_SATISFIABLE, name, id, offset);
    for name in [header::LOCATION, header::RANGE, DOCKER_UPLOAD_UUID] {
        if let Some(value) = progress.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

pub async fn finish(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let digest = query.get("digest").ok_or_else(|| {
        RegistryError::new(
            ErrorCode::DigestInvalid,
            "closing an upload needs the blob's digest in the ?digest= query parameter",
        )
    })?;
    let digest = parse_digest(digest)?;
    let start = chunk_start(headers)?;
    // Most clients close with an empty body: no last chunk to append.
    let last_chunk = (body.size_hint().exact() != Some(0)).then(|| (start, body_stream(body)));
    let size = state
        .store
        .complete_upload(name, id, &digest, last_chunk)
        .await?;
    tracing::info!(repository = %name, %digest, size, upload = %id, "blob upload completed");
    Ok(blob_created(name, &digest))
}

pub async fn cancel(state: &AppState, name: &RepositoryName, id: &UploadId) -> ApiResult<Response> {
    state.store.cancel_upload(name, id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT, HeaderMap::new()))
}

/// `Location`, `Range` and `Docker-Upload-UUID` for a session holding
/// `offset` bytes.
fn upload_progress(
    status: StatusCode,
    name: &RepositoryName,
    id: &UploadId,
    offset: u64,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/uploads/{id}")),
    );
    headers.insert(
        header::RANGE,
        header_value(&format!("0-{}", offset.saturating_sub(1))),
    );
    headers.insert(DOCKER_UPLOAD_UUID, header_value(&id.to_string()));
    empty_response(status, headers)
}

/// The first byte's offset from `Content-Range` (`<start>-<end>`, also
/// accepted with a `bytes ` or `bytes=` prefix and a `/<total>` suffix),
/// checked against `Content-Length`.
fn chunk_start(headers: &HeaderMap) -> Result<Option<u64>, RegistryError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        RegistryError::new(
            ErrorCode::BlobUploadInvalid,
            "Content-Range must be <first byte>-<last byte> of this chunk",
        )
        .with_status(416)
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (first, last) = text.split_once('-').ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if last < first {
        return Err(invalid());
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    // `0-18446744073709551615` is 2^64 bytes, a length no header can match.
    let chunk_length = (last - first).checked_add(1);
    if let Some(length) = length
        && Some(length) != chunk_length
    {
        return Err(RegistryError::new(
            ErrorCode::SizeInvalid,
            format!("Content-Length {length} does not match Content-Range {first}-{last}"),
        ));
    }
    Ok(Some(first))
}
