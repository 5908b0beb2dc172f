//! One reading decides a manifest's kind: what a push accepts is served and
//! collected as exactly that.

use serde_json::{Value, json};

use super::*;
use crate::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};

const CONFIG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const LAYER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const CHILD: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({ "mediaType": media_type, "digest": digest, "size": size })
}

fn image_fields() -> Value {
    json!({
        "schemaVersion": 2,
        "config": descriptor("application/vnd.oci.image.config.v1+json", CONFIG, 7),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", LAYER, 100)],
    })
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

fn digests(parsed: &ParsedManifest) -> Vec<String> {
    parsed.digests().map(ToString::to_string).collect()
}

#[test]
fn a_body_with_layers_and_manifests_is_refused_whatever_the_content_type() {
    let mut body = image_fields();
    body["manifests"] = json!([]);
    for content_type in [Some(OCI_MANIFEST), Some(OCI_INDEX), None] {
        let error = parse(content_type, &bytes(&body)).expect_err("ambiguous body");
        assert_eq!(error.code, ErrorCode::ManifestInvalid, "{content_type:?}");
        assert!(error.message.contains("not both"), "{}", error.message);
    }
    // Stored by an older registry, it references everything it names.
    let stored = read(&bytes(&body)).expect("readable");
    assert_eq!(digests(&stored), [CONFIG, LAYER]);
}

#[test]
fn an_accepted_push_reads_back_as_the_same_kind_type_and_references() {
    let child = json!([descriptor(OCI_MANIFEST, CHILD, 300)]);
    let subject = descriptor(OCI_MANIFEST, CHILD, 300);
    let mut bodies = Vec::new();
    for media_type in [None, Some(OCI_MANIFEST), Some(DOCKER_MANIFEST)] {
        for with_subject in [false, true] {
            let mut body = image_fields();
            if let Some(media_type) = media_type {
                body["mediaType"] = json!(media_type);
            }
            if with_subject {
                body["subject"] = subject.clone();
            }
            bodies.push(body);
        }
    }
    for media_type in [None, Some(OCI_INDEX), Some(DOCKER_MANIFEST_LIST)] {
        let mut body = json!({ "schemaVersion": 2, "manifests": child });
        if let Some(media_type) = media_type {
            body["mediaType"] = json!(media_type);
        }
        bodies.push(body);
    }
    let content_types = [
        None,
        Some("application/json"),
        Some(OCI_MANIFEST),
        Some(OCI_INDEX),
        Some(DOCKER_MANIFEST),
        Some(DOCKER_MANIFEST_LIST),
    ];
    let mut accepted = 0;
    for body in &bodies {
        for content_type in content_types {
            let Ok(pushed) = parse(content_type, &bytes(body)) else {
                continue;
            };
            accepted += 1;
            let stored = read(&bytes(body)).expect("an accepted body reads back");
            assert_eq!(stored.kind, pushed.kind, "{body} as {content_type:?}");
            assert_eq!(stored.media_type, pushed.media_type, "{body}");
            assert_eq!(media_type_of(&bytes(body)), pushed.media_type, "{body}");
            assert_eq!(stored.blobs, pushed.blobs, "{body}");
            assert_eq!(stored.manifests, pushed.manifests, "{body}");
            assert_eq!(stored.subject, pushed.subject, "{body}");
        }
    }
    assert!(accepted >= 12, "only {accepted} combinations were accepted");
}

#[test]
fn content_type_must_agree_with_what_the_body_is_served_as() {
    let body = bytes(&image_fields());
    let parsed = parse(Some(OCI_MANIFEST), &body).expect("OCI manifest without mediaType");
    assert_eq!(parsed.kind, ManifestKind::Image);
    assert_eq!(parsed.media_type, OCI_MANIFEST);
    assert_eq!(digests(&parsed), [CONFIG, LAYER]);
    for wrong in [OCI_INDEX, DOCKER_MANIFEST] {
        let error = parse(Some(wrong), &body).expect_err(wrong);
        assert!(error.message.contains("no mediaType"), "{}", error.message);
    }
    let index = bytes(&json!({ "schemaVersion": 2, "manifests": [] }));
    assert_eq!(
        parse(Some(OCI_INDEX), &index).expect("index").kind,
        ManifestKind::Index
    );
    assert!(parse(Some(OCI_MANIFEST), &index).is_err());
    assert!(parse(Some(DOCKER_MANIFEST_LIST), &index).is_err());
}

#[test]
fn declared_types_must_match_the_fields() {
    let mut image_as_index = image_fields();
    image_as_index["mediaType"] = json!(OCI_INDEX);
    assert!(parse(None, &bytes(&image_as_index)).is_err());
    let index_as_image = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": [] });
    assert!(parse(None, &bytes(&index_as_image)).is_err());
    let neither = json!({ "schemaVersion": 2 });
    assert!(parse(None, &bytes(&neither)).is_err());
    assert!(read(&bytes(&neither)).is_err());
}

#[test]
fn a_bad_digest_is_refused_on_push_naming_the_descriptor_and_skipped_when_stored() {
    let mut body = image_fields();
    body["layers"][0]["digest"] = json!("md5:abc");
    let error = parse(None, &bytes(&body)).expect_err("bad digest");
    assert_eq!(error.code, ErrorCode::ManifestInvalid);
    assert!(error.message.contains("layers[0]"), "{}", error.message);
    assert_eq!(digests(&read(&bytes(&body)).expect("stored")), [CONFIG]);
}

#[test]
fn schema1_is_refused_on_push_and_its_layers_are_read_when_stored() {
    let body = bytes(&json!({
        "schemaVersion": 1,
        "name": "old/app",
        "fsLayers": [{ "blobSum": LAYER }, { "blobSum": CONFIG }],
    }));
    assert!(parse(None, &body).is_err());
    let stored = read(&body).expect("schema 1 reads");
    assert_eq!(stored.kind, ManifestKind::Schema1);
    assert_eq!(digests(&stored), [LAYER, CONFIG]);
}

#[test]
fn a_schema2_push_with_schema1_layers_is_refused() {
    let index = json!({
        "schemaVersion": 2,
        "manifests": [],
        "fsLayers": [{ "blobSum": LAYER }],
    });
    let error = parse(None, &bytes(&index)).expect_err("an index naming blobs");
    assert_eq!(error.code, ErrorCode::ManifestInvalid);
    assert!(error.message.contains("fsLayers"), "{}", error.message);
}

#[test]
fn foreign_layers_are_not_references() {
    let mut body = image_fields();
    body["layers"] = json!([{
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": LAYER,
        "size": 5,
        "urls": ["https://example.com/layer"],
    }]);
    assert_eq!(
        digests(&parse(None, &bytes(&body)).expect("foreign")),
        [CONFIG]
    );
}

#[test]
fn descriptors_keep_their_field_and_claimed_size() {
    let parsed = parse(None, &bytes(&image_fields())).expect("image");
    let fields: Vec<(&str, Option<u64>)> = parsed
        .blobs
        .iter()
        .map(|blob| (blob.field.as_str(), blob.size))
        .collect();
    assert_eq!(fields, [("config", Some(7)), ("layers[0]", Some(100))]);
}

#[test]
fn nothing_before_a_repeated_key_can_stop_its_check() {
    let layer = |digest: &str| {
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", digest, 100).to_string()
    };
    let checked = layer(LAYER);
    let other = layer(&format!("sha256:{}", "b".repeat(64)));
    let config = descriptor("application/vnd.oci.image.config.v1+json", CONFIG, 7);
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for blocker in ["1e999", "-1e400", nested.as_str()] {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{config},"x":{blocker},"layers":[{checked}],"Layers":[{other}]}}"#
        );
        let error = parse(Some(OCI_MANIFEST), body.as_bytes())
            .expect_err("a repeated key behind something the check cannot read");
        assert_eq!(
            error.code,
            ErrorCode::ManifestInvalid,
            "{blocker}: {error:?}"
        );
    }
}
