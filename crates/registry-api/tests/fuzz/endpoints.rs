//! Target `endpoints`: a path below `/v2/` (and maybe a query), sent as GET
//! and HEAD. No path gets a 5xx, every error is an OCI error body, and the
//! router agrees with registry-core's validators and the spec's URL table:
//! a path `<name>/<endpoint>` whose name the validator accepts reaches that
//! repository (its tag, its manifest digest), and one whose name it
//! refuses is `NAME_INVALID`.

use std::collections::HashMap;

use axum::http::{StatusCode, Uri};
use registry_core::{Digest, Reference, RepositoryName};
use test_support::Image;
use test_support::fuzz::{self, Unstructured, arbitrary};

use crate::Driver;

/// Repositories the store holds, each with tag `latest`: names that end
/// or begin like an endpoint, to catch a path read from the wrong end.
const REPOSITORIES: &[&str] = &[
    "library/alpine",
    "blobs",
    "tags/list",
    "a/manifests/b",
    "x/blobs/uploads",
    "referrers/referrers",
    "0",
    "a__b/c.d/e---f",
];

#[test]
fn endpoints() {
    let driver = Driver::new();
    let images: HashMap<&str, Image> = REPOSITORIES
        .iter()
        .map(|name| (*name, Image::random(1, 64)))
        .collect();
    driver.runtime.block_on(async {
        for (name, image) in &images {
            driver.app.push_image(name, "latest", image).await;
        }
    });
    let digests: Vec<String> = images
        .values()
        .flat_map(|image| [&image.manifest.digest, &image.config.digest])
        .map(ToString::to_string)
        .collect();
    let target = Target { driver, images };
    fuzz::fuzz(
        "endpoints",
        |unstructured| generate(unstructured, &digests),
        |input| target.check(input),
    );
}

struct Target {
    driver: Driver,
    images: HashMap<&'static str, Image>,
}

/// What the spec's URL table says a GET of a path is, on this store.
#[derive(Debug)]
enum Expected {
    Found,
    /// The tag list of this repository.
    Tags(String),
    /// The manifest with this digest.
    Manifest(Digest),
    /// This status with one of these error codes.
    Error(StatusCode, &'static [&'static str]),
}

const NAME_INVALID: Expected = Expected::Error(StatusCode::BAD_REQUEST, &["NAME_INVALID"]);
const DIGEST_INVALID: Expected = Expected::Error(StatusCode::BAD_REQUEST, &["DIGEST_INVALID"]);
const NOT_AN_ENDPOINT: Expected = Expected::Error(StatusCode::NOT_FOUND, &["UNSUPPORTED"]);
const METHOD_NOT_ALLOWED: Expected =
    Expected::Error(StatusCode::METHOD_NOT_ALLOWED, &["UNSUPPORTED"]);

impl Target {
    fn check(&self, input: &[u8]) {
        let uri = request_uri(input);
        let app = &self.driver.app;
        let (get, head) = self.driver.runtime.block_on(async {
            let target = uri.to_string();
            (app.get(&target).await, app.head(&target).await)
        });
        for response in [&get, &head] {
            assert!(
                !response.status.is_server_error(),
                "{uri} answered {response:?}"
            );
        }
        if !get.status.is_success() {
            // Panics unless the body is an OCI error.
            get.error_code();
        }
        if uri.query().is_some() {
            return;
        }
        let rest = uri.path().strip_prefix("/v2/").unwrap_or_default();
        let expected = self.expected(rest);
        match expected {
            Expected::Found => assert_eq!(get.status, StatusCode::OK, "GET {uri}: {get:?}"),
            Expected::Tags(name) => {
                assert_eq!(get.status, StatusCode::OK, "GET {uri}: {get:?}");
                let listed = get.json();
                assert_eq!(
                    listed["name"], name,
                    "GET {uri}: tags of another repository"
                );
                assert_eq!(listed["tags"], serde_json::json!(["latest"]));
            }
            Expected::Manifest(digest) => {
                assert_eq!(get.status, StatusCode::OK, "GET {uri}: {get:?}");
                assert_eq!(
                    get.header("docker-content-digest"),
                    Some(digest.to_string().as_str()),
                    "GET {uri}: the manifest of another repository"
                );
            }
            Expected::Error(status, codes) => {
                assert_eq!(
                    (get.status, codes.contains(&get.error_code().as_str())),
                    (status, true),
                    "GET {uri}: expected {status} with one of {codes:?}, got {get:?}"
                );
            }
        }
    }

    /// The spec's reading of `rest`, with registry-core's validators.
    fn expected(&self, rest: &str) -> Expected {
        if rest.is_empty() || rest == "_catalog" {
            return Expected::Found;
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return self.in_repository(name, |image| match image {
                Some(_) => Expected::Tags(name.to_owned()),
                None => Expected::Error(StatusCode::NOT_FOUND, &["NAME_UNKNOWN"]),
            });
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let count = segments.len();
        let name_without = |kept: usize| segments[..count - kept].join("/");
        if count >= 3 && segments[count - 3..count - 1] == ["blobs", "uploads"] {
            return self.in_repository(&name_without(3), |_| {
                if segments[count - 1].is_empty() {
                    METHOD_NOT_ALLOWED
                } else {
                    Expected::Error(StatusCode::NOT_FOUND, &["BLOB_UPLOAD_UNKNOWN"])
                }
            });
        }
        if count < 2 {
            return NOT_AN_ENDPOINT;
        }
        let last = segments[count - 1];
        match segments[count - 2] {
            "blobs" if last == "uploads" => {
                self.in_repository(&name_without(2), |_| METHOD_NOT_ALLOWED)
            }
            "blobs" => self.in_repository(&name_without(2), |image| match last.parse::<Digest>() {
                Err(_) => DIGEST_INVALID,
                // A repository's manifests are served as its blobs too.
                Ok(digest)
                    if image.is_some_and(|image| {
                        image.config.digest == digest || image.manifest.digest == digest
                    }) =>
                {
                    Expected::Found
                }
                Ok(_) => Expected::Error(StatusCode::NOT_FOUND, &["BLOB_UNKNOWN"]),
            }),
            "referrers" => self.in_repository(&name_without(2), |_| match last.parse::<Digest>() {
                Err(_) => DIGEST_INVALID,
                Ok(_) => Expected::Found,
            }),
            "manifests" => self.in_repository(&name_without(2), |image| {
                let found = match (image, last.parse::<Reference>()) {
                    (Some(_), Ok(Reference::Tag(tag))) => tag.as_str() == "latest",
                    (Some(image), Ok(Reference::Digest(digest))) => image.manifest.digest == digest,
                    _ => false,
                };
                match image {
                    Some(image) if found => Expected::Manifest(image.manifest.digest.clone()),
                    _ => Expected::Error(
                        StatusCode::NOT_FOUND,
                        &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"],
                    ),
                }
            }),
            _ => NOT_AN_ENDPOINT,
        }
    }

    /// `NAME_INVALID` unless the validator accepts `name`, else what
    /// `outcome` expects of the repository's image (if it has one).
    fn in_repository(
        &self,
        name: &str,
        outcome: impl FnOnce(Option<&Image>) -> Expected,
    ) -> Expected {
        if name.parse::<RepositoryName>().is_err() {
            return NAME_INVALID;
        }
        outcome(self.images.get(name))
    }
}

/// `/v2/` and the input, with what cannot stand in a URI percent-encoded
/// (as a client would send it).
fn request_uri(input: &[u8]) -> Uri {
    let mut target = String::from("/v2/");
    for byte in input {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(byte);
        if keep {
            target.push(char::from(*byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
    target.parse().unwrap_or_else(|_| {
        // A '%' not followed by hex is the one thing left to refuse.
        target
            .replace('%', "%25")
            .parse()
            .expect("an escaped URI parses")
    })
}

/// Name characters at the edges of the grammar.
const NAME_CHARACTERS: &[char] = &[
    'a', 'b', '0', '.', '_', '-', '/', ':', '@', 'A', '%', '~', '\u{e9}',
];
const ENDPOINTS: &[&str] = &[
    "/tags/list",
    "/manifests/",
    "/blobs/",
    "/blobs/uploads/",
    "/blobs/uploads",
    "/referrers/",
    "/",
    "",
];
const REFERENCES: &[&str] = &[
    "latest",
    "v1.0",
    "-bad",
    ".hidden",
    "UPPER",
    "sha256:zz",
    "list",
    "uploads",
    "0b7e4bd2-3e5d-4b53-9a3a-0d6e0d2c1b11",
    "..",
    "",
];
const QUERIES: &[&str] = &[
    "?n=1",
    "?n=-1",
    "?n=18446744073709551616",
    "?last=z&n=0",
    "?artifactType=x",
    "?",
];

fn generate(unstructured: &mut Unstructured<'_>, digests: &[String]) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 8)? {
        return unstructured.arbitrary::<Vec<u8>>();
    }
    let name = if unstructured.ratio(1, 2)? {
        unstructured.choose(REPOSITORIES)?.to_string()
    } else {
        fuzz::string_from(unstructured, NAME_CHARACTERS, 40)?
    };
    let endpoint = *unstructured.choose(ENDPOINTS)?;
    let reference = match unstructured.int_in_range(0..=3)? {
        0 => unstructured.choose(digests)?.clone(),
        1 => format!("sha256:{}", "0".repeat(64)),
        2 => fuzz::string_from(unstructured, NAME_CHARACTERS, 20)?,
        _ => unstructured.choose(REFERENCES)?.to_string(),
    };
    let query = if unstructured.ratio(1, 6)? {
        *unstructured.choose(QUERIES)?
    } else {
        ""
    };
    let path = if endpoint.ends_with('/') {
        format!("{name}{endpoint}{reference}{query}")
    } else {
        format!("{name}{endpoint}{query}")
    };
    Ok(path.into_bytes())
}
