//! Target `blob-ranges`: a `Range` header on GETs of blobs of 0, 1, 100
//! and 70,000 bytes (the last streamed from the store, the others served
//! from memory). The answer is 206 with exactly the bytes its
//! `Content-Range` names, all within the blob, or 416 naming the size; a
//! plain `bytes=first-last` range is served as RFC 9110 reads it.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use test_support::fuzz::{self, Unstructured, arbitrary};
use test_support::{Blob, TestResponse, random_bytes};

use crate::{Driver, sendable_header};

const REPOSITORY: &str = "fuzz/ranges";
const BLOB_SIZES: &[usize] = &[0, 1, 100, 70_000];

#[test]
fn blob_ranges() {
    let driver = Driver::new();
    let blobs: Vec<Blob> = BLOB_SIZES
        .iter()
        .map(|size| Blob::new("application/octet-stream", random_bytes(*size)))
        .collect();
    driver.runtime.block_on(async {
        for blob in &blobs {
            driver.app.push_blob(REPOSITORY, blob).await;
        }
    });
    fuzz::fuzz("blob-ranges", generate, |input| {
        check(&driver, &blobs, input)
    });
}

fn check(driver: &Driver, blobs: &[Blob], input: &[u8]) {
    let Some(range) = sendable_header(input) else {
        return;
    };
    for blob in blobs {
        let uri = format!("/v2/{REPOSITORY}/blobs/{}", blob.digest);
        let response = driver.runtime.block_on(driver.app.send(
            Method::GET,
            &uri,
            &[("range", range)],
            Body::empty(),
        ));
        let size = blob.bytes.len() as u64;
        let served = served_range(&response, blob, range);
        if let Some(expected) = rfc_9110_reading(range, size) {
            assert_eq!(
                served, expected,
                "Range {range:?} on {size} bytes: served {served:?}, RFC 9110 reads {expected:?}"
            );
        }
    }
}

/// The inclusive range a response served, `None` for a 416; checks that
/// the response is one or the other and consistent in itself.
fn served_range(response: &TestResponse, blob: &Blob, range: &str) -> Option<(u64, u64)> {
    let size = blob.bytes.len() as u64;
    let content_range = response.header("content-range").unwrap_or_default();
    match response.status {
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(content_range, format!("bytes */{size}"));
            assert_eq!(response.error_code(), "RANGE_INVALID");
            None
        }
        StatusCode::PARTIAL_CONTENT => {
            let (first, last) = content_range
                .strip_prefix("bytes ")
                .and_then(|text| text.strip_suffix(&format!("/{size}")))
                .and_then(|text| text.split_once('-'))
                .and_then(|(first, last)| {
                    Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?))
                })
                .unwrap_or_else(|| {
                    panic!("Range {range:?}: Content-Range {content_range:?} on {size} bytes")
                });
            assert!(
                first <= last && last < size,
                "Range {range:?}: Content-Range {content_range:?} leaves the {size}-byte blob"
            );
            let expected = &blob.bytes[first as usize..=last as usize];
            assert!(
                response.body == expected,
                "Range {range:?}: wrong bytes served"
            );
            assert_eq!(
                response.header("content-length"),
                Some((last - first + 1).to_string().as_str())
            );
            Some((first, last))
        }
        status => panic!("Range {range:?} on {size} bytes answered {status}: {response:?}"),
    }
}

/// How RFC 9110 serves `bytes=<first>-<last>`, `bytes=<first>-` or
/// `bytes=-<suffix>` (digits only, of any length) on `size` bytes: the
/// inclusive range, or `None` when unsatisfiable. `None` for any other
/// form, which this reading leaves alone.
fn rfc_9110_reading(range: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    // A position past u64 is past any blob: as good as u64::MAX.
    let position = |text: &str| text.parse::<u64>().unwrap_or(u64::MAX);
    let served = match (digits(first), digits(last)) {
        (false, true) if first.is_empty() => {
            let suffix = position(last).min(size);
            (suffix > 0).then(|| (size - suffix, size - 1))
        }
        (true, true) if position(last) < position(first) => None,
        (true, true) => {
            (position(first) < size).then(|| (position(first), position(last).min(size - 1)))
        }
        (true, false) if last.is_empty() => {
            (position(first) < size).then(|| (position(first), size - 1))
        }
        _ => return None,
    };
    Some(served)
}

/// Numbers at the edges: zero, the blob sizes and their neighbours, and
/// u64's end and beyond.
const POSITIONS: &[&str] = &[
    "",
    "0",
    "1",
    "5",
    "99",
    "100",
    "65535",
    "65536",
    "69999",
    "70000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "-1",
    "+5",
    " 5",
    "0x10",
];

fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 6)? {
        return Ok(unstructured.arbitrary::<String>()?.into_bytes());
    }
    let unit = *unstructured.choose(&["bytes=", "bytes=", "bytes =", "BYTES=", "items=", ""])?;
    let ranges = (0..unstructured.int_in_range(1..=2)?)
        .map(|_| {
            let first = position(unstructured)?;
            let last = position(unstructured)?;
            Ok(format!("{first}-{last}"))
        })
        .collect::<arbitrary::Result<Vec<_>>>()?;
    Ok(format!("{unit}{}", ranges.join(",")).into_bytes())
}

fn position(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    if unstructured.ratio(1, 3)? {
        Ok(unstructured.int_in_range(0..=70_001_u64)?.to_string())
    } else {
        Ok(unstructured.choose(POSITIONS)?.to_string())
    }
}
