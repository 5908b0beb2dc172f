//! In process, over a store on disk: what an attacker (or a broken client)
//! sends to the endpoints that write (blobs whose bytes are not their
//! digest, digests and names that are not valid, tags too long, manifests
//! too large, with repeated keys, with a wrong size or naming themselves,
//! ranges out of bounds) is answered with the distribution spec's status
//! and error code, and leaves not one file behind in the store.

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use registry_api::{AppState, WriteGate};
use registry_core::manifest::MAX_MANIFEST_SIZE;
use registry_core::media_types::{OCI_INDEX, OCI_MANIFEST};
use registry_core::{Algorithm, Digest, DigestHasher};
use serde_json::json;
use test_support::{Blob, Image, TestApp, TestResponse, files_under, random_bytes};

/// registry-api over a store in a temporary directory holding one image
/// (`r:v1`), and the files that image left there.
struct Registry {
    app: TestApp,
    root: tempfile::TempDir,
    image: Image,
    before: BTreeSet<PathBuf>,
}

async fn registry() -> Registry {
    let root = tempfile::tempdir().expect("temporary directory");
    let store = registry_storage::Store::open(root.path().to_str().expect("UTF-8 path"))
        .expect("a store on disk");
    let app = TestApp {
        state: AppState::new(store, WriteGate::default(), None),
    };
    let image = Image::random(1, 1000);
    app.push_image("r", "v1", &image).await;
    let before = files_under(root.path());
    Registry {
        app,
        root,
        image,
        before,
    }
}

impl Registry {
    /// Fails unless the store holds exactly the files it held before.
    #[track_caller]
    fn assert_nothing_stored(&self, after: &str) {
        let now = files_under(self.root.path());
        let changed: Vec<_> = now.symmetric_difference(&self.before).collect();
        assert!(
            changed.is_empty(),
            "after {after} the store changed: {changed:?}"
        );
    }

    async fn put_manifest(&self, reference: &str, media_type: &str, body: Vec<u8>) -> TestResponse {
        let uri = format!("/v2/r/manifests/{reference}");
        let content_type = [("content-type", media_type)];
        self.app.send(Method::PUT, &uri, &content_type, body).await
    }

    /// Opens an upload session; returns its location.
    async fn session(&self) -> String {
        let started = self
            .app
            .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED);
        started.header("location").expect("Location").to_owned()
    }

    /// Cancels the session at `location`, which must still be open.
    async fn cancel(&self, location: &str) {
        let cancelled = self.app.delete(location).await;
        assert_eq!(cancelled.status, StatusCode::NO_CONTENT, "{cancelled:?}");
    }
}

/// Fails unless `response` carries `status` and the OCI error `code`.
#[track_caller]
fn assert_refused(response: &TestResponse, status: u16, code: &str, what: &str) {
    assert_eq!(response.status.as_u16(), status, "{what}: {response:?}");
    assert_eq!(response.error_code(), code, "{what}");
}

fn sha512_of(bytes: &[u8]) -> Digest {
    let mut hasher = DigestHasher::new(Algorithm::Sha512);
    hasher.update(bytes);
    hasher.finish()
}

#[tokio::test]
async fn a_blob_whose_bytes_are_not_its_digest_leaves_no_file() {
    let registry = registry().await;
    let app = &registry.app;
    let content = Blob::new("application/octet-stream", random_bytes(3000));
    let other = random_bytes(3000);
    for claimed in [Digest::sha256_of(&other), sha512_of(&other)] {
        let uri = format!("/v2/r/blobs/uploads/?digest={claimed}");
        let single = app
            .send(Method::POST, &uri, &[], content.bytes.clone())
            .await;
        assert_refused(
            &single,
            400,
            "DIGEST_INVALID",
            &format!("POST ?digest={claimed}"),
        );
        registry.assert_nothing_stored("a monolithic POST");

        let location = registry.session().await;
        let close = format!("{location}?digest={claimed}");
        let whole = app
            .send(Method::PUT, &close, &[], content.bytes.clone())
            .await;
        assert_refused(&whole, 400, "DIGEST_INVALID", "PUT with the whole blob");
        let gone = app.get(&location).await;
        assert_refused(&gone, 404, "BLOB_UPLOAD_UNKNOWN", "the session after it");
        registry.assert_nothing_stored("POST then PUT");

        let location = registry.session().await;
        let close = format!("{location}?digest={claimed}");
        let chunk = app
            .send(Method::PATCH, &location, &[], content.bytes.clone())
            .await;
        assert_eq!(chunk.status, StatusCode::ACCEPTED);
        let closed = app.send(Method::PUT, &close, &[], "").await;
        assert_refused(&closed, 400, "DIGEST_INVALID", "closing a chunked upload");
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
    let registry = registry().await;
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
        assert_refused(
            &single,
            400,
            "DIGEST_INVALID",
            &format!("POST ?digest={bad}"),
        );

        let location = registry.session().await;
        let close = app
            .send(Method::PUT, &format!("{location}?digest={bad}"), &[], "x")
            .await;
        assert_refused(&close, 400, "DIGEST_INVALID", &format!("PUT ?digest={bad}"));
        registry.cancel(&location).await;

        let pushed = registry
            .put_manifest(bad, OCI_MANIFEST, manifest.clone())
            .await;
        assert_refused(
            &pushed,
            400,
            "DIGEST_INVALID",
            &format!("PUT manifests/{bad}"),
        );
        let read = app.get(&format!("/v2/r/blobs/{bad}")).await;
        assert_refused(&read, 400, "DIGEST_INVALID", &format!("GET blobs/{bad}"));

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
            .cancel(mount.header("location").expect("Location"))
            .await;
        registry.assert_nothing_stored(bad);
    }
}

#[tokio::test]
async fn repository_names_that_could_leave_their_place_are_name_invalid() {
    let registry = registry().await;
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
        assert_refused(&start, 400, "NAME_INVALID", &format!("POST to {name:?}"));
        let uri = format!("/v2/{name}/manifests/v1");
        let content_type = [("content-type", OCI_MANIFEST)];
        let manifest = registry.image.manifest.bytes.clone();
        let pushed = app.send(Method::PUT, &uri, &content_type, manifest).await;
        assert_refused(&pushed, 400, "NAME_INVALID", &format!("PUT to {name:?}"));
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
    let registry = registry().await;
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
        assert_refused(&pushed, 400, "TAG_INVALID", &format!("tag {tag:?}"));
        let read = registry.app.get(&format!("/v2/r/manifests/{tag}")).await;
        assert_refused(&read, 404, "MANIFEST_UNKNOWN", &format!("GET tag {tag:?}"));
        registry.assert_nothing_stored(tag);
    }
    let longest = "t".repeat(128);
    let pushed = registry
        .put_manifest(&longest, OCI_MANIFEST, manifest)
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{pushed:?}");
}

/// The image's manifest with annotations padded so that it is `size`
/// bytes long.
fn manifest_of_size(image: &Image, size: usize) -> Vec<u8> {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image.manifest.bytes).expect("JSON");
    manifest["annotations"] = json!({ "pad": "" });
    let unpadded = serde_json::to_vec(&manifest).expect("JSON").len();
    manifest["annotations"]["pad"] = json!("p".repeat(size - unpadded));
    let bytes = serde_json::to_vec(&manifest).expect("JSON");
    assert_eq!(bytes.len(), size);
    bytes
}

#[tokio::test]
async fn a_manifest_over_the_size_limit_is_413_without_its_body_being_read() {
    let registry = registry().await;
    let app = &registry.app;
    let over = manifest_of_size(&registry.image, MAX_MANIFEST_SIZE + 1);
    let content_type = ("content-type", OCI_MANIFEST);
    let announced = app
        .send(
            Method::PUT,
            "/v2/r/manifests/big",
            &[content_type, ("content-length", &over.len().to_string())],
            over.clone(),
        )
        .await;
    assert_refused(&announced, 413, "MANIFEST_INVALID", "with Content-Length");
    // Without a length (chunked), the body is read up to the limit only.
    let pieces: Vec<_> = over
        .chunks(64 * 1024)
        .map(|piece| Ok::<_, std::io::Error>(piece.to_vec()))
        .collect();
    let streamed = Body::from_stream(futures::stream::iter(pieces));
    let chunked = app
        .send(
            Method::PUT,
            "/v2/r/manifests/big",
            &[content_type],
            streamed,
        )
        .await;
    assert_refused(&chunked, 413, "MANIFEST_INVALID", "chunked");
    registry.assert_nothing_stored("a manifest over the limit");
    // Registries should take manifests of at least 4 MB: this one does 4 MiB.
    let at_limit = manifest_of_size(&registry.image, MAX_MANIFEST_SIZE);
    let stored = registry.put_manifest("big", OCI_MANIFEST, at_limit).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{stored:?}");
}

/// Manifests that JSON parsers read differently: Berth's checks must not
/// see one thing while a client (Go's `encoding/json` in docker and
/// containerd) sees another.
fn manifests_with_repeated_keys(image: &Image, evil: &Blob) -> Vec<(&'static str, String)> {
    let config = image.config.descriptor().to_string();
    let layer = image.layers[0].descriptor().to_string();
    let other = evil.descriptor().to_string();
    let head = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config}"#);
    let layer_with_digest = |digest_key: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{}","{digest_key}":"{}"}}"#,
            image.layers[0].bytes.len(),
            image.layers[0].digest,
            evil.digest
        )
    };
    vec![
        (
            "layers twice",
            format!(r#"{head},"layers":[{layer}],"layers":[{other}]}}"#),
        ),
        (
            "Layers beside layers",
            format!(r#"{head},"layers":[{layer}],"Layers":[{other}]}}"#),
        ),
        (
            "an escaped layers",
            format!(r#"{head},"layers":[{layer}],"l\u0061yers":[{other}]}}"#),
        ),
        (
            "digest twice in a layer",
            format!(r#"{head},"layers":[{}]}}"#, layer_with_digest("digest")),
        ),
        (
            "Digest beside digest",
            format!(r#"{head},"layers":[{}]}}"#, layer_with_digest("Digest")),
        ),
        (
            "an annotation twice",
            format!(
                r#"{head},"layers":[{layer}],"annotations":{{"org.opencontainers.image.ref.name":"safe","org.opencontainers.image.ref.name":"evil"}}}}"#
            ),
        ),
        (
            "a long s in schemaVersion",
            format!(
                "{{\"schemaVersion\":2,\"\u{17f}chemaVersion\":1,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{config},\"layers\":[{layer}]}}"
            ),
        ),
        (
            "mediaType twice",
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","config":{config},"layers":[{layer}],"mediaType":"{OCI_MANIFEST}"}}"#
            ),
        ),
    ]
}

#[tokio::test]
async fn manifests_with_repeated_keys_or_wrong_sizes_are_manifest_invalid() {
    let registry = registry().await;
    let evil = Blob::new(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        random_bytes(10),
    );
    registry.app.push_blob("r", &evil).await;
    let before_manifests = files_under(registry.root.path());
    let registry = Registry {
        before: before_manifests,
        ..registry
    };
    for (what, manifest) in manifests_with_repeated_keys(&registry.image, &evil) {
        let by_tag = registry
            .put_manifest("repeated", OCI_MANIFEST, manifest.clone().into_bytes())
            .await;
        assert_refused(&by_tag, 400, "MANIFEST_INVALID", what);
        let digest = Digest::sha256_of(manifest.as_bytes());
        let by_digest = registry
            .put_manifest(&digest.to_string(), OCI_MANIFEST, manifest.into_bytes())
            .await;
        assert_refused(&by_digest, 400, "MANIFEST_INVALID", what);
        registry.assert_nothing_stored(what);
    }
    let mut wrong_size: serde_json::Value =
        serde_json::from_slice(&registry.image.manifest.bytes).expect("JSON");
    wrong_size["layers"][0]["size"] = json!(1);
    let refused = registry
        .put_manifest(
            "wrong-size",
            OCI_MANIFEST,
            serde_json::to_vec(&wrong_size).expect("JSON"),
        )
        .await;
    assert_refused(
        &refused,
        400,
        "MANIFEST_INVALID",
        "a layer of the wrong size",
    );
    registry.assert_nothing_stored("a layer of the wrong size");
}

/// A manifest cannot name its own digest (its bytes would have to contain
/// their own hash), so one pushed under digest D that names D is refused
/// for not being D; one that names a manifest not yet pushed is refused
/// for that. Either way no cycle can ever be stored for the collector or
/// a client to walk.
#[tokio::test]
async fn a_manifest_naming_itself_cannot_be_stored() {
    let registry = registry().await;
    let own = registry.image.manifest.clone();
    let claimed = Digest::sha256_of(b"the digest this manifest is pushed under");
    let as_child = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": claimed.to_string(), "size": 100 }],
    });
    let mut as_subject: serde_json::Value = serde_json::from_slice(&own.bytes).expect("JSON");
    as_subject["subject"] =
        json!({ "mediaType": OCI_MANIFEST, "digest": claimed.to_string(), "size": 100 });
    for (body, media_type) in [(&as_child, OCI_INDEX), (&as_subject, OCI_MANIFEST)] {
        let bytes = serde_json::to_vec(body).expect("JSON");
        let pushed = registry
            .put_manifest(&claimed.to_string(), media_type, bytes)
            .await;
        assert_refused(
            &pushed,
            400,
            "DIGEST_INVALID",
            "a manifest naming its own digest",
        );
    }
    let by_tag = registry
        .put_manifest(
            "loop",
            OCI_INDEX,
            serde_json::to_vec(&as_child).expect("JSON"),
        )
        .await;
    assert_refused(&by_tag, 400, "MANIFEST_BLOB_UNKNOWN", "a child not pushed");
    registry.assert_nothing_stored("manifests naming themselves");
}

#[tokio::test]
async fn ranges_out_of_bounds_or_malformed_are_416_with_the_size() {
    let registry = registry().await;
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
        assert_refused(&read, 416, "RANGE_INVALID", range);
        assert_eq!(
            read.header("content-range"),
            Some(format!("bytes */{size}").as_str()),
            "{range}"
        );
    }
}

#[tokio::test]
async fn content_ranges_out_of_order_or_malformed_are_416_and_the_session_carries_on() {
    let registry = registry().await;
    let app = &registry.app;
    let content = Blob::new("application/octet-stream", random_bytes(200));
    let location = registry.session().await;
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
        assert_refused(&refused, 416, "BLOB_UPLOAD_INVALID", range);
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
    assert_refused(
        &short,
        400,
        "SIZE_INVALID",
        "Content-Length not the range's",
    );
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
