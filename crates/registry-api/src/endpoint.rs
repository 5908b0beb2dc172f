//! The `/v2/...` path parsed into a typed endpoint. Repository names contain
//! slashes, so the path is read from its end: the last segments say which
//! endpoint it is, everything before them is the name.

use registry_core::{Digest, ErrorCode, Reference, RegistryError, RepositoryName};
use registry_storage::UploadId;

/// One endpoint of the distribution API, with its path parameters parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Base,
    Catalog,
    Tags(RepositoryName),
    Manifest(RepositoryName, Reference),
    /// A manifest path whose reference is neither a tag nor a digest: no
    /// such manifest can exist, and none can be pushed there.
    ManifestBadReference(RepositoryName, String),
    Blob(RepositoryName, Digest),
    UploadStart(RepositoryName),
    Upload(RepositoryName, UploadId),
    Referrers(RepositoryName, Digest),
}

impl Endpoint {
    /// Parses the path below `/v2/`.
    pub fn parse(rest: &str) -> Result<Endpoint, RegistryError> {
        match rest {
            "" => return Ok(Endpoint::Base),
            "_catalog" => return Ok(Endpoint::Catalog),
            _ => {}
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Endpoint::Tags(parse_name(name)?));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let count = segments.len();
        let name_before = |kept: usize| parse_name(&segments[..count - kept].join("/"));
        if count >= 3 && segments[count - 3] == "blobs" && segments[count - 2] == "uploads" {
            let name = name_before(3)?;
            return match segments[count - 1] {
                "" => Ok(Endpoint::UploadStart(name)),
                id => id
                    .parse()
                    .map(|id| Endpoint::Upload(name, id))
                    .map_err(|_| {
                        RegistryError::new(
                            ErrorCode::BlobUploadUnknown,
                            format!("upload {id:?} is not an upload session id"),
                        )
                    }),
            };
        }
        if count >= 2 {
            let last = segments[count - 1];
            match segments[count - 2] {
                "blobs" if last == "uploads" => return Ok(Endpoint::UploadStart(name_before(2)?)),
                "blobs" => return Ok(Endpoint::Blob(name_before(2)?, parse_digest(last)?)),
                "referrers" => {
                    return Ok(Endpoint::Referrers(name_before(2)?, parse_digest(last)?));
                }
                "manifests" => {
                    let name = name_before(2)?;
                    return Ok(match last.parse() {
                        Ok(reference) => Endpoint::Manifest(name, reference),
                        Err(_) => Endpoint::ManifestBadReference(name, last.to_owned()),
                    });
                }
                _ => {}
            }
        }
        Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!("/v2/{rest} is not an endpoint of the distribution API"),
        )
        .with_status(404))
    }

    /// The repository the endpoint is in; `None` for the base and the
    /// catalog.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match self {
            Endpoint::Base | Endpoint::Catalog => None,
            Endpoint::Tags(name)
            | Endpoint::Manifest(name, _)
            | Endpoint::ManifestBadReference(name, _)
            | Endpoint::Blob(name, _)
            | Endpoint::UploadStart(name)
            | Endpoint::Upload(name, _)
            | Endpoint::Referrers(name, _) => Some(name),
        }
    }

    /// A short, bounded label for metrics and logs.
    pub fn route(&self) -> &'static str {
        match self {
            Endpoint::Base => "base",
            Endpoint::Catalog => "catalog",
            Endpoint::Tags(_) => "tags",
            Endpoint::Manifest(..) | Endpoint::ManifestBadReference(..) => "manifest",
            Endpoint::Blob(..) => "blob",
            Endpoint::UploadStart(_) => "upload_start",
            Endpoint::Upload(..) => "upload",
            Endpoint::Referrers(..) => "referrers",
        }
    }
}

fn parse_name(name: &str) -> Result<RepositoryName, RegistryError> {
    name.parse().map_err(|error: registry_core::NameError| {
        RegistryError::new(ErrorCode::NameInvalid, error.to_string())
            .with_detail(serde_json::json!({ "name": name }))
    })
}

/// A digest from a path segment or a query parameter.
pub(crate) fn parse_digest(digest: &str) -> Result<Digest, RegistryError> {
    digest.parse().map_err(|error: registry_core::DigestError| {
        RegistryError::new(ErrorCode::DigestInvalid, error.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("valid name")
    }

    #[test]
    fn names_of_any_depth_are_read_from_the_end() {
        assert_eq!(Endpoint::parse(""), Ok(Endpoint::Base));
        assert_eq!(Endpoint::parse("_catalog"), Ok(Endpoint::Catalog));
        assert_eq!(
            Endpoint::parse("a/b/c/tags/list"),
            Ok(Endpoint::Tags(name("a/b/c")))
        );
        assert_eq!(
            Endpoint::parse("a/manifests/latest"),
            Ok(Endpoint::Manifest(
                name("a"),
                "latest".parse().expect("tag")
            ))
        );
        assert_eq!(
            Endpoint::parse(&format!("x/blobs/y/blobs/{DIGEST}")),
            Ok(Endpoint::Blob(
                name("x/blobs/y"),
                DIGEST.parse().expect("digest")
            ))
        );
        assert_eq!(
            Endpoint::parse("team/app/blobs/uploads/"),
            Ok(Endpoint::UploadStart(name("team/app")))
        );
        assert!(matches!(
            Endpoint::parse("a/blobs/uploads/0b7e4bd2-3e5d-4b53-9a3a-0d6e0d2c1b11"),
            Ok(Endpoint::Upload(..))
        ));
        assert_eq!(
            Endpoint::parse(&format!("a/referrers/{DIGEST}")),
            Ok(Endpoint::Referrers(
                name("a"),
                DIGEST.parse().expect("digest")
            ))
        );
    }

    #[test]
    fn bad_parts_get_their_own_codes() {
        let code = |path: &str| Endpoint::parse(path).map_err(|e| (e.code, e.status));
        assert_eq!(code("A/tags/list"), Err((ErrorCode::NameInvalid, 400)));
        assert_eq!(code("../x/tags/list"), Err((ErrorCode::NameInvalid, 400)));
        assert_eq!(
            code("a/blobs/sha256:zz"),
            Err((ErrorCode::DigestInvalid, 400))
        );
        for bad in ["sha256:zz", "-bad", ".INVALID_NAME"] {
            assert_eq!(
                Endpoint::parse(&format!("a/manifests/{bad}")),
                Ok(Endpoint::ManifestBadReference(name("a"), bad.to_owned()))
            );
        }
        assert_eq!(
            code("a/blobs/uploads/..%2Fx"),
            Err((ErrorCode::BlobUploadUnknown, 404))
        );
        assert_eq!(code("a/unknown/x"), Err((ErrorCode::Unsupported, 404)));
    }
}
