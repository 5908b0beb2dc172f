//! In process, over a store on disk: what an attacker (or a broken client)
//! sends where blobs are written and read (bytes that are not their
//! digest, digests and repository names that are not valid, tags too long,
//! ranges out of bounds or malformed) is answered with the distribution
//! spec's status and error code, and leaves not one file behind in the
//! store. Manifests: `hostile_manifests.rs`.

use axum::http::{Method, StatusCode};
use registry_core::media_types::OCI_MANIFEST;
use registry_core::{Algorithm, Digest, DigestHasher};
use test_support::{Blob, DiskApp, random_bytes};

fn sha512_of(bytes: &[u8]) -> Digest {
    let mut hasher = DigestHasher::new(Algorithm::Sha512);
    hasher.update(bytes);
    hasher.finish()
}

#[tokio::test]
async fn a_blob_whose_bytes_are_not_its_digest_leaves_no_file() {
    let registry = DiskApp::start().await;
    let app = &registry.app;
    let content = Blob::new("application/octet-stream", random_bytes(3000));
    let other = random_bytes(3000);
    for claimed in [Digest::sha256_of(&other), sha512_of(&other)] {
        let uri = format!("/v2/r/blobs/uploads/?digest={claimed}");
        let single = app
            .send(Method::POST, &uri, &[], content.bytes.clone())
            .await;
        single.assert_error(400, "DIGEST_INVALID", &format!("POST ?digest={claimed}"));
        registry.assert_nothing_stored("a monolithic POST");

        let location = registry.start_session().await;
        let close = format!("{location}?digest={claimed}");
        let whole = app
            .send(Method::PUT, &close, &[], content.bytes.clone())
            .await;
        whole.assert_error(400, "DIGEST_INVALID", "PUT with the whole blob");
        let gone = app.get(&location).await;
        gone.assert_error(404, "BLOB_UPLOAD_UNKNOWN", "the session after it");
        registry.assert_nothing_stored("POST then PUT");

        let location = registry.start_session().await;
        let close = format!("{location}?digest={claimed}");
        let chunk = app
            .send(Method::PATCH, &location, &[], content.bytes.clone())
            .await;
        assert_eq!(chunk.status, StatusCode::ACCEPTED);
        let closed = app.send(Method::PUT, &close, &[], "").await;
        closed.assert_error(400, "DIGEST_INVALID", "closing a chunked upload");
        registry.assert_nothing_stored("PATCH then PUT");
    }
    let head = app.head(&format!("/v2/r/blobs/{}", content.digest)).await;
    assert_eq!(
        head.status,
        StatusCode::NOT_FOUND,
        "the bytes sent are no blob either"
    );
}

/// Digests of algorithms Berth does not know, and digests that are not
/// digests, wherever a digest is taken.
const BAD_DIGESTS: &[&str] = &[
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
    "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:",
    ":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:..%2F..%2F..%2Fetc%2Fpasswd",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855%00",
];

#[tokio::test]
async fn unknown_algorithms_and_malformed_digests_are_digest_invalid() {
    let registry = DiskApp::start().await;
    let app = &registry.app;
    let manifest = registry.image.manifest.bytes.to_vec();
    for bad in BAD_DIGESTS {
        let single = app
            .send(
                Method::POST,
                &format!("/v2/r/blobs/uploads/?digest={bad}"),
                &[],
                "x",
            )
            .await;
        single.assert_error(400, "DIGEST_INVALID", &format!("POST ?digest={bad}"));

        let location = registry.start_session().await;
        let close = app
            .send(Method::PUT, &format!("{location}?digest={bad}"), &[], "x")
            .await;
        close.assert_error(400, "DIGEST_INVALID", &format!("PUT ?digest={bad}"));
        registry.cancel_session(&location).await;

        let pushed = registry
            .put_manifest(bad, OCI_MANIFEST, manifest.clone())
            .await;
        pushed.assert_error(400, "DIGEST_INVALID", &format!("PUT manifests/{bad}"));
        let read = app.get(&format!("/v2/r/blobs/{bad}")).await;
        read.assert_error(400, "DIGEST_INVALID", &format!("GET blobs/{bad}"));

        // A mount of what cannot be a blob mounts nothing: the push goes
        // on in a session, as the spec says and Distribution does.
        let mount = app
            .send(
                Method::POST,
                &format!("/v2/r/blobs/uploads/?mount={bad}&from=r"),
                &[],
                "",
            )
            .await;
        assert_eq!(mount.status, StatusCode::ACCEPTED, "mount={bad}: {mount:?}");
        registry
            .cancel_session(mount.header("location").expect("Location"))
            .await;
        registry.assert_nothing_stored(bad);
    }
}

#[tokio::test]
async fn repository_names_that_could_leave_their_place_are_name_invalid() {
    let registry = DiskApp::start().await;
    let app = &registry.app;
    let too_long = "a".repeat(256);
    let too_long_in_parts = format!("{}/{}", "a".repeat(200), "b".repeat(55));
    let names = [
        "..",
        "a/../b",
        "r/../../../etc",
        "a/./b",
        ".",
        "%2e%2e",
        "a/%2E%2E/b",
        "R",
        "team/App",
        "a//b",
        "/a",
        too_long.as_str(),
        too_long_in_parts.as_str(),
    ];
    for name in names {
        let start = app
            .send(Method::POST, &format!("/v2/{name}/blobs/uploads/"), &[], "")
            .await;
        start.assert_error(400, "NAME_INVALID", &format!("POST to {name:?}"));
        let uri = format!("/v2/{name}/manifests/v1");
        let content_type = [("content-type", OCI_MANIFEST)];
        let manifest = registry.image.manifest.bytes.clone();
        let pushed = app.send(Method::PUT, &uri, &content_type, manifest).await;
        pushed.assert_error(400, "NAME_INVALID", &format!("PUT to {name:?}"));
        registry.assert_nothing_stored(name);
    }
    // The longest name there may be is a name.
    let longest = format!("{}/{}", "a".repeat(200), "b".repeat(54));
    let start = app
        .send(
            Method::POST,
            &format!("/v2/{longest}/blobs/uploads/"),
            &[],
            "",
        )
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED, "{start:?}");
}

#[tokio::test]
async fn tags_longer_than_128_characters_are_tag_invalid() {
    let registry = DiskApp::start().await;
    let manifest = registry.image.manifest.bytes.to_vec();
    let too_long = "t".repeat(129);
    for tag in [
        too_long.as_str(),
        "..",
        ".hidden",
        "-x",
        "a%2F..%2F..%2Fb",
        "v1%00",
    ] {
        let pushed = registry
            .put_manifest(tag, OCI_MANIFEST, manifest.clone())
            .await;
        pushed.assert_error(400, "TAG_INVALID", &format!("tag {tag:?}"));
        let read = registry.app.get(&format!("/v2/r/manifests/{tag}")).await;
        read.assert_error(404, "MANIFEST_UNKNOWN", &format!("GET tag {tag:?}"));
        registry.assert_nothing_stored(tag);
    }
    let longest = "t".repeat(128);
    let pushed = registry
        .put_manifest(&longest, OCI_MANIFEST, manifest)
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{pushed:?}");
}

#[tokio::test]
async fn ranges_out_of_bounds_or_malformed_are_416_with_the_size() {
    let registry = DiskApp::start().await;
    let layer = &registry.image.layers[0];
    let size = layer.bytes.len();
    let uri = format!("/v2/r/blobs/{}", layer.digest);
    let huge = "9".repeat(30);
    let ranges = [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 10, size + 20),
        "bytes=5-2".to_owned(),
        "bytes=-0".to_owned(),
        "bytes=".to_owned(),
        "bytes=-".to_owned(),
        "bytes=abc".to_owned(),
        "bytes=0x10-0x20".to_owned(),
        "bytes=1-2-3".to_owned(),
        format!("bytes={huge}-"),
        format!("bytes={huge}-{huge}9"),
    ];
    for range in &ranges {
        let read = registry
            .app
            .send(Method::GET, &uri, &[("range", range)], "")
            .await;
        read.assert_error(416, "RANGE_INVALID", range);
        assert_eq!(
            read.header("content-range"),
            Some(format!("bytes */{size}").as_str()),
            "{range}"
        );
    }
}

#[tokio::test]
async fn content_ranges_out_of_order_or_malformed_are_416_and_the_session_carries_on() {
    let registry = DiskApp::start().await;
    let app = &registry.app;
    let content = Blob::new("application/octet-stream", random_bytes(200));
    let location = registry.start_session().await;
    let first = app
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-99")],
            content.bytes.slice(..100),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let rest = content.bytes.slice(100..);
    let huge = "9".repeat(30);
    let bad_ranges = [
        "0-99".to_owned(),
        "50-149".to_owned(),
        "101-200".to_owned(),
        "1000-1099".to_owned(),
        "199-100".to_owned(),
        "100-".to_owned(),
        "-100".to_owned(),
        "abc".to_owned(),
        format!("100-{huge}"),
        format!("{huge}-{huge}"),
    ];
    for range in &bad_ranges {
        let refused = app
            .send(
                Method::PATCH,
                &location,
                &[("content-range", range)],
                rest.clone(),
            )
            .await;
        refused.assert_error(416, "BLOB_UPLOAD_INVALID", range);
        assert_eq!(
            refused.header("range"),
            Some("0-99"),
            "{range}: where to resume"
        );
        assert_eq!(
            refused.header("location"),
            Some(location.as_str()),
            "{range}"
        );
    }
    let short = app
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "100-199"), ("content-length", "50")],
            rest.slice(..50),
        )
        .await;
    short.assert_error(400, "SIZE_INVALID", "Content-Length not the range's");
    let status = app.get(&location).await;
    assert_eq!(
        status.header("range"),
        Some("0-99"),
        "nothing refused was kept"
    );
    let closed = app
        .send(
            Method::PUT,
            &format!("{location}?digest={}", content.digest),
            &[("content-range", "100-199")],
            rest,
        )
        .await;
    assert_eq!(closed.status, StatusCode::CREATED, "{closed:?}");
    let pulled = app.get(&format!("/v2/r/blobs/{}", content.digest)).await;
    assert_eq!(pulled.body, content.bytes);
}
