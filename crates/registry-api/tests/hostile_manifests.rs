//! In process, over a store on disk: manifests pushed to mislead (over the
//! size limit, keys repeated so that parsers disagree, a descriptor of the
//! wrong size, naming themselves) are answered with the distribution
//! spec's status and error code, and leave not one file behind.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use registry_core::Digest;
use registry_core::manifest::MAX_MANIFEST_SIZE;
use registry_core::media_types::{OCI_INDEX, OCI_MANIFEST};
use serde_json::json;
use test_support::{Blob, DiskApp, Image, random_bytes};

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
    let registry = DiskApp::start().await;
    let app = &registry.app;
    let over = manifest_of_size(&registry.image, MAX_MANIFEST_SIZE + 1);
    let content_type = ("content-type", OCI_MANIFEST);
    // Announced too long: answered before a byte of the body is read (this
    // body never sends one, so reading it would hang).
    let announced = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.send(
            Method::PUT,
            "/v2/r/manifests/big",
            &[content_type, ("content-length", &over.len().to_string())],
            Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>()),
        ),
    )
    .await
    .expect("answered without reading the body");
    announced.assert_error(413, "MANIFEST_INVALID", "with Content-Length");
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
    chunked.assert_error(413, "MANIFEST_INVALID", "chunked");
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
    let mut registry = DiskApp::start().await;
    let evil = Blob::new(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        random_bytes(10),
    );
    registry.app.push_blob("r", &evil).await;
    registry.remember_files();
    for (what, manifest) in manifests_with_repeated_keys(&registry.image, &evil) {
        let by_tag = registry
            .put_manifest("repeated", OCI_MANIFEST, manifest.clone().into_bytes())
            .await;
        by_tag.assert_error(400, "MANIFEST_INVALID", what);
        let digest = Digest::sha256_of(manifest.as_bytes());
        let by_digest = registry
            .put_manifest(&digest.to_string(), OCI_MANIFEST, manifest.into_bytes())
            .await;
        by_digest.assert_error(400, "MANIFEST_INVALID", what);
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
    refused.assert_error(400, "MANIFEST_INVALID", "a layer of the wrong size");
    registry.assert_nothing_stored("a layer of the wrong size");
}

/// A manifest cannot name its own digest (its bytes would have to contain
/// their own hash), so one pushed under digest D that names D is refused
/// for not being D; one that names a manifest not yet pushed is refused
/// for that. Either way no cycle can ever be stored for the collector or
/// a client to walk.
#[tokio::test]
async fn a_manifest_naming_itself_cannot_be_stored() {
    let registry = DiskApp::start().await;
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
        pushed.assert_error(400, "DIGEST_INVALID", "a manifest naming its own digest");
    }
    let by_tag = registry
        .put_manifest(
            "loop",
            OCI_INDEX,
            serde_json::to_vec(&as_child).expect("JSON"),
        )
        .await;
    by_tag.assert_error(400, "MANIFEST_BLOB_UNKNOWN", "a child not pushed");
    registry.assert_nothing_stored("manifests naming themselves");
}
