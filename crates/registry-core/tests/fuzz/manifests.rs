//! Target `manifests`: one body read as a stored manifest (`read`,
//! `media_type_of`) and as a push under several `Content-Type`s (`parse`).
//! Whatever the bytes: no panic; every reference is a valid digest naming
//! what the JSON names at that field; what a push accepts reads back as
//! the same kind, type and references; the referrers descriptor describes
//! the body.

use registry_core::Digest;
use registry_core::manifest::{self, ManifestKind, ParsedManifest, Referenced};
use registry_core::media_types::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, OCI_INDEX, OCI_MANIFEST,
};
use serde_json::Value;
use test_support::fuzz::{self, Unstructured, arbitrary};

#[test]
fn manifests() {
    fuzz::fuzz("manifests", generate, check);
}

/// The `Content-Type`s a push arrives with: none, each kind, generic ones.
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(""),
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST),
    Some(DOCKER_MANIFEST_LIST),
    Some("application/json"),
    Some("application/vnd.example+json"),
];

fn check(body: &[u8]) {
    let read = manifest::read(body);
    let served_as = manifest::media_type_of(body);
    // A stored body (another registry may have written it) can hold what
    // the JSON oracle cannot represent (a number such as 1e999, nesting
    // past 128); a push of it is refused, so only reads meet it.
    let oracle_reads_it = serde_json::from_slice::<Value>(body).is_ok();
    if let Ok(stored) = &read {
        if oracle_reads_it {
            check_parsed(stored, body);
        }
        assert_eq!(
            served_as, stored.media_type,
            "media_type_of disagrees with read"
        );
    }
    for content_type in CONTENT_TYPES {
        let Ok(pushed) = manifest::parse(*content_type, body) else {
            continue;
        };
        check_parsed(&pushed, body);
        assert_ne!(pushed.kind, ManifestKind::Schema1, "a push stored schema 1");
        if let Some(declared) = content_type.filter(|value| value.starts_with("application/vnd.")) {
            assert_eq!(
                &pushed.media_type, declared,
                "served type differs from Content-Type"
            );
        }
        if pushed.kind == ManifestKind::Index {
            assert!(
                pushed.blobs.is_empty() && pushed.foreign.is_empty(),
                "a pushed index names blobs: {:?}",
                pushed.blobs
            );
        } else {
            assert!(
                pushed.manifests.is_empty(),
                "a pushed image names manifests"
            );
        }
        let stored = read
            .as_ref()
            .unwrap_or_else(|error| panic!("a push accepted what read refuses: {error:?}"));
        assert_eq!(
            (
                &stored.kind,
                &stored.media_type,
                &stored.blobs,
                &stored.foreign
            ),
            (
                &pushed.kind,
                &pushed.media_type,
                &pushed.blobs,
                &pushed.foreign
            )
        );
        assert_eq!(
            (&stored.manifests, &stored.subject),
            (&pushed.manifests, &pushed.subject)
        );
    }
}

/// What holds for any reading the registry acts on.
fn check_parsed(parsed: &ParsedManifest, body: &[u8]) {
    assert_eq!(parsed.size, body.len() as u64);
    for digest in parsed.digests() {
        assert_eq!(digest.to_string().parse::<Digest>().as_ref(), Ok(digest));
    }
    let json: Value = serde_json::from_slice(body).expect("a body that was read is JSON");
    let mut named: Vec<&Referenced> = parsed
        .blobs
        .iter()
        .chain(&parsed.foreign)
        .chain(&parsed.manifests)
        .chain(&parsed.subject)
        .collect();
    named.sort_by(|left, right| left.field.cmp(&right.field));
    assert_eq!(
        named
            .iter()
            .map(|referenced| (
                referenced.field.clone(),
                referenced.digest.to_string(),
                referenced.size
            ))
            .collect::<Vec<_>>(),
        references_in(&json),
        "the references read differ from the descriptors in the JSON"
    );
    let digest = Digest::sha256_of(body);
    let descriptor = manifest::referrer_descriptor(parsed, &digest)
        .expect("every manifest read can be described");
    let descriptor: Value = serde_json::from_slice(&descriptor).expect("the descriptor is JSON");
    assert_eq!(descriptor["digest"], digest.to_string());
    assert_eq!(descriptor["size"], body.len() as u64);
    assert_eq!(descriptor["mediaType"], parsed.media_type);
    assert_eq!(
        descriptor["artifactType"].as_str(),
        parsed.artifact_type.as_deref()
    );
}

/// Every descriptor of the JSON whose digest Berth could store, read
/// independently of registry-core: (field, digest, size), sorted by field.
fn references_in(json: &Value) -> Vec<(String, String, Option<u64>)> {
    let mut found = Vec::new();
    let mut add = |field: String, descriptor: &Value, digest_key: &str| {
        let digest = descriptor[digest_key].as_str().unwrap_or("");
        if digest.parse::<Digest>().is_ok() {
            found.push((field, digest.to_owned(), descriptor["size"].as_u64()));
        }
    };
    if json["config"].is_object() {
        add("config".to_owned(), &json["config"], "digest");
    }
    if json["subject"].is_object() {
        add("subject".to_owned(), &json["subject"], "digest");
    }
    for (list, digest_key) in [
        ("layers", "digest"),
        ("manifests", "digest"),
        ("fsLayers", "blobSum"),
    ] {
        for (index, descriptor) in json[list].as_array().into_iter().flatten().enumerate() {
            add(format!("{list}[{index}]"), descriptor, digest_key);
        }
    }
    found.sort_by(|left, right| left.0.cmp(&right.0));
    found
}

const MEDIA_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1[0],
    DOCKER_SCHEMA1[1],
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.example.sbom.v1+json",
    "application/json",
    "",
];
const TOP_LEVEL_KEYS: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "fsLayers",
    "annotations",
    "name",
];
const DESCRIPTOR_KEYS: &[&str] = &[
    "mediaType",
    "digest",
    "size",
    "urls",
    "annotations",
    "platform",
    "artifactType",
    "data",
];
/// JSON numbers at the edges of `u64`, and what is not a size at all.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "7",
    "-1",
    "1.5",
    "1e3",
    "1e400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "null",
    "\"7\"",
];

fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 8)? {
        return unstructured.arbitrary::<Vec<u8>>();
    }
    let mut body = object(unstructured, TOP_LEVEL_KEYS, 0..=8, top_level_value)?.into_bytes();
    if unstructured.ratio(1, 10)? {
        body.splice(0..0, "\u{feff}".bytes());
    }
    if unstructured.ratio(1, 10)? {
        let cut = unstructured.int_in_range(0..=body.len())?;
        body.truncate(cut);
    }
    Ok(body)
}

/// A JSON object of `count` members with keys from `keys` (repeats
/// allowed: duplicated keys are an input too).
fn object(
    unstructured: &mut Unstructured<'_>,
    keys: &[&str],
    count: std::ops::RangeInclusive<usize>,
    value: fn(&mut Unstructured<'_>, &str) -> arbitrary::Result<String>,
) -> arbitrary::Result<String> {
    let members = (0..unstructured.int_in_range(count)?)
        .map(|_| {
            let key = *unstructured.choose(keys)?;
            Ok(format!("{}:{}", quoted(key), value(unstructured, key)?))
        })
        .collect::<arbitrary::Result<Vec<_>>>()?;
    Ok(format!("{{{}}}", members.join(",")))
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn top_level_value(unstructured: &mut Unstructured<'_>, key: &str) -> arbitrary::Result<String> {
    if unstructured.ratio(1, 12)? {
        return wrong_type(unstructured);
    }
    match key {
        "schemaVersion" => Ok(unstructured.choose(NUMBERS)?.to_string()),
        "mediaType" | "artifactType" => Ok(quoted(unstructured.choose(MEDIA_TYPES)?)),
        "config" | "subject" => descriptor(unstructured),
        "layers" | "manifests" => array(unstructured, descriptor),
        "fsLayers" => array(unstructured, |unstructured| {
            Ok(format!(
                "{{\"blobSum\":{}}}",
                quoted(&digest(unstructured)?)
            ))
        }),
        "annotations" => annotations(unstructured),
        _ => Ok(quoted(&unstructured.arbitrary::<String>()?)),
    }
}

fn descriptor(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    object(
        unstructured,
        DESCRIPTOR_KEYS,
        0..=6,
        |unstructured, key| match key {
            "mediaType" | "artifactType" => Ok(quoted(unstructured.choose(MEDIA_TYPES)?)),
            "digest" => Ok(quoted(&digest(unstructured)?)),
            "size" if unstructured.ratio(1, 2)? => Ok(unstructured.arbitrary::<u64>()?.to_string()),
            "size" => Ok(unstructured.choose(NUMBERS)?.to_string()),
            "urls" => Ok(unstructured
                .choose(&["[]", "[\"https://example.com/layer\"]", "[1]", "null"])?
                .to_string()),
            "annotations" => annotations(unstructured),
            "platform" => Ok("{\"architecture\":\"arm64\",\"os\":\"linux\"}".to_owned()),
            _ => Ok(quoted("e30=")),
        },
    )
}

fn annotations(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    object(
        unstructured,
        &["org.opencontainers.image.created", "x", ""],
        0..=3,
        |unstructured, _| {
            if unstructured.ratio(1, 8)? {
                wrong_type(unstructured)
            } else {
                Ok(quoted(&unstructured.arbitrary::<String>()?))
            }
        },
    )
}

fn array(
    unstructured: &mut Unstructured<'_>,
    element: fn(&mut Unstructured<'_>) -> arbitrary::Result<String>,
) -> arbitrary::Result<String> {
    let elements = (0..unstructured.int_in_range(0..=5)?)
        .map(|_| element(unstructured))
        .collect::<arbitrary::Result<Vec<_>>>()?;
    Ok(format!("[{}]", elements.join(",")))
}

fn wrong_type(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    Ok(unstructured
        .choose(&[
            "null",
            "true",
            "[]",
            "{}",
            "\"\"",
            "-1",
            "[null]",
            "{\"a\":{}}",
        ])?
        .to_string())
}

/// Mostly digests Berth accepts; sometimes one a character off, of an
/// algorithm it does not store, or upper case.
fn digest(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let (algorithm, length) = *unstructured.choose(&[
        ("sha256", 64),
        ("sha256", 64),
        ("sha512", 128),
        ("sha256", 63),
        ("sha256", 65),
        ("sha384", 96),
        ("SHA256", 64),
        ("", 0),
    ])?;
    let hex = fuzz::string_of_length(unstructured, &['0', '4', '9', 'a', 'e', 'f'], length)?;
    let hex = if unstructured.ratio(1, 16)? {
        hex.to_uppercase()
    } else {
        hex
    };
    Ok(format!("{algorithm}:{hex}"))
}
