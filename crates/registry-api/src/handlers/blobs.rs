//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with single byte ranges.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use registry_core::{Digest, ErrorCode, RegistryError, RepositoryName};

use super::{digest_headers, empty_response, header_value};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::metrics::bytes_sent;

fn blob_unknown(digest: &Digest) -> ApiError {
    RegistryError::new(
        ErrorCode::BlobUnknown,
        format!("blob {digest} is not in this repository"),
    )
    .with_detail(serde_json::json!({ "digest": digest.to_string() }))
    .into()
}

pub async fn get(
    state: &AppState,
    name: &RepositoryName,
    digest: &Digest,
    request_headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let size = state
        .store
        .repository_blob_size(name, digest)
        .await?
        .ok_or_else(|| blob_unknown(digest))?;
    let mut headers = digest_headers(digest);
    if !head && let Some(url) = state.store.blob_redirect(digest).await? {
        // The client asks the store itself, with its Range if it has one.
        headers.insert(header::LOCATION, header_value(url.as_str()));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(empty_response(StatusCode::TEMPORARY_REDIRECT, headers));
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if head {
        let mut response = empty_response(StatusCode::OK, headers);
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        return Ok(response);
    }
    let range = match request_headers.get(header::RANGE) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|text| parse_range(text, size)) {
            Some(range) => Some(range),
            None => return Ok(range_not_satisfiable(size)),
        },
    };
    let missing = |error| match error {
        registry_storage::StorageError::NotFound => blob_unknown(digest),
        other => other.into(),
    };
    // Small blobs (configs, small layers: most requests of a pull) come
    // whole from memory; larger ones stream from the store.
    let (served, body) = match state
        .store
        .small_blob(digest, size)
        .await
        .map_err(missing)?
    {
        Some(whole) => {
            let served = range.clone().unwrap_or(0..size);
            let piece = whole.slice(
                usize::try_from(served.start).unwrap_or(0)
                    ..usize::try_from(served.end).unwrap_or(0),
            );
            bytes_sent(piece.len() as u64);
            (served, Body::from(piece))
        }
        None => {
            let read = state
                .store
                .read_blob(digest, range.clone())
                .await
                .map_err(missing)?;
            let body = read.body.inspect_ok(|piece| bytes_sent(piece.len() as u64));
            (read.range, Body::from_stream(body))
        }
    };
    let status = if range.is_some() {
        headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", served.start, served.end - 1)),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(served.end - served.start),
    );
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

pub async fn delete(
    state: &AppState,
    name: &RepositoryName,
    digest: &Digest,
) -> ApiResult<Response> {
    if !state.store.unlink_blob(name, digest).await? {
        return Err(blob_unknown(digest));
    }
    tracing::info!(repository = %name, %digest, "blob unlinked");
    Ok(empty_response(StatusCode::ACCEPTED, digest_headers(digest)))
}

/// One `bytes=` range within a blob of `size` bytes, or `None` when it is
/// malformed, asks for several ranges, or cannot be satisfied.
fn parse_range(text: &str, size: u64) -> Option<Range<u64>> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        size.saturating_sub(position(last)?)..size
    } else {
        let start = position(first)?;
        let end = if last.is_empty() {
            size
        } else {
            let last = position(last)?;
            if last < start {
                return None;
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    (range.start < range.end).then_some(range)
}

/// A byte position of a range: digits only. One past `u64::MAX` is read
/// as `u64::MAX`, as no blob reaches either: `bytes=0-99999999999999999999`
/// is the whole blob, as RFC 9110 says.
fn position(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

fn range_not_satisfiable(size: u64) -> Response {
    let mut response = ApiError::from(
        RegistryError::new(
            ErrorCode::RangeInvalid,
            format!("the requested range is not one satisfiable range of this {size}-byte blob"),
        )
        .with_status(416),
    )
    .into_response();
    response.headers_mut().insert(
        header::CONTENT_RANGE,
        header_value(&format!("bytes */{size}")),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn single_ranges_within_the_blob() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100), Some(95..100));
        let past_u64 = "18446744073709551616";
        assert_eq!(
            parse_range(&format!("bytes=0-{past_u64}"), 100),
            Some(0..100)
        );
        assert_eq!(
            parse_range(&format!("bytes=-{past_u64}"), 100),
            Some(0..100)
        );
    }

    #[test]
    fn everything_else_is_unsatisfiable() {
        for range in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=x-y",
            "bytes=+5-10",
            "bytes=18446744073709551616-",
        ] {
            assert_eq!(parse_range(range, 100), None, "{range}");
        }
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
