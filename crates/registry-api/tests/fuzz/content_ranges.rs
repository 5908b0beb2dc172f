//! Target `upload-content-ranges`: a `Content-Range` header on the first
//! PATCH of a fresh upload session, with a 5-byte chunk and then with an
//! empty one. No header gets a 5xx; a chunk is taken only where the header
//! says it is bytes 0-4 of the upload, and an empty chunk never is.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use test_support::fuzz::{self, Unstructured, arbitrary};
use test_support::{TestApp, TestResponse};

use crate::{Driver, sendable_header};

const REPOSITORY: &str = "fuzz/uploads";
const CHUNK: &[u8] = b"chunk";

#[test]
fn upload_content_ranges() {
    let driver = Driver::new();
    fuzz::fuzz("upload-content-ranges", generate, |input| {
        check(&driver, input)
    });
}

fn check(driver: &Driver, input: &[u8]) {
    let Some(content_range) = sendable_header(input) else {
        return;
    };
    let app = &driver.app;
    let (chunk, empty) = driver.runtime.block_on(async {
        let started = app
            .send(
                Method::POST,
                &format!("/v2/{REPOSITORY}/blobs/uploads/"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
        let location = started
            .header("location")
            .expect("an upload location")
            .to_owned();
        let chunk = patch(app, &location, content_range, CHUNK).await;
        let empty = patch(app, &location, content_range, b"").await;
        app.delete(&location).await;
        (chunk, empty)
    });
    for response in [&chunk, &empty] {
        assert!(
            !response.status.is_server_error(),
            "Content-Range {content_range:?}: {response:?}"
        );
    }
    assert_ne!(
        empty.status,
        StatusCode::ACCEPTED,
        "Content-Range {content_range:?} took an empty chunk"
    );
    let accepted = taken(&chunk, content_range);
    if let Some(expected) = plain_reading(content_range) {
        assert_eq!(
            accepted, expected,
            "Content-Range {content_range:?} on the first 5-byte chunk: {chunk:?}"
        );
    }
}

async fn patch(
    app: &TestApp,
    location: &str,
    content_range: &str,
    body: &'static [u8],
) -> TestResponse {
    let length = body.len().to_string();
    let headers = [
        ("content-range", content_range),
        ("content-length", length.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    app.send(Method::PATCH, location, &headers, body).await
}

/// Whether the chunk was taken; a taken chunk leaves the upload at 5 bytes.
fn taken(response: &TestResponse, content_range: &str) -> bool {
    if response.status != StatusCode::ACCEPTED {
        response.error_code();
        return false;
    }
    assert_eq!(
        response.header("range"),
        Some("0-4"),
        "Content-Range {content_range:?}: {response:?}"
    );
    true
}

/// Whether a plain `<first>-<last>` (optionally `bytes ` or `bytes=` before
/// and `/<total>` after) says "bytes 0-4"; `None` for other forms.
fn plain_reading(content_range: &str) -> Option<bool> {
    let text = content_range
        .strip_prefix("bytes ")
        .or_else(|| content_range.strip_prefix("bytes="))
        .unwrap_or(content_range);
    let text = text.split_once('/').map_or(text, |(range, _)| range);
    let (first, last) = text.split_once('-')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !(digits(first) && digits(last)) {
        return None;
    }
    // Numbers of any length, compared without their leading zeros.
    let significant = |text: &str| text.trim_start_matches('0').to_owned();
    Some(significant(first).is_empty() && significant(last) == "4")
}

const NUMBERS: &[&str] = &[
    "0",
    "4",
    "5",
    "00",
    "18446744073709551615",
    "18446744073709551614",
    "18446744073709551616",
    "-1",
    "+4",
    "",
    " 4",
];

fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 6)? {
        return Ok(unstructured.arbitrary::<String>()?.into_bytes());
    }
    let prefix = *unstructured.choose(&["", "", "bytes ", "bytes=", "Bytes "])?;
    let first = unstructured.choose(NUMBERS)?;
    let last = unstructured.choose(NUMBERS)?;
    let total = *unstructured.choose(&["", "", "/5", "/*", "/", "/18446744073709551616"])?;
    Ok(format!("{prefix}{first}-{last}{total}").into_bytes())
}
