//! Paths under `/api/v1/repositories/`: the repository name contains `/`,
//! so the path is read from its end (tags and digests never contain `/`),
//! and every part is checked with the registry's own rules before anything
//! is asked of the registry.

use registry_core::{Digest, Reference, RepositoryName, Tag};

use super::error::ApiError;

/// What a path under `/api/v1/repositories/` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `{name}/tags`
    Tags(RepositoryName),
    /// `{name}/tags/{tag}`
    Tag(RepositoryName, Tag),
    /// `{name}/tags/{tag}/delete-preview`
    TagDeletePreview(RepositoryName, Tag),
    /// `{name}/images/{tag-or-digest}`
    Image(RepositoryName, Reference),
    /// `{name}/manifests/{digest}`
    Manifest(RepositoryName, Digest),
    /// `{name}/manifests/{digest}/delete-preview`
    ManifestDeletePreview(RepositoryName, Digest),
}

impl Target {
    pub fn parse(path: &str) -> Result<Target, ApiError> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let unknown = || {
            ApiError::not_found(format!(
                "/api/v1/repositories/{path} is not an API path: see the README for the list"
            ))
        };
        match parts.as_slice() {
            [name @ .., "tags"] => Ok(Target::Tags(repository(name)?)),
            [name @ .., "tags", tag, "delete-preview"] => {
                Ok(Target::TagDeletePreview(repository(name)?, tag_of(tag)?))
            }
            [name @ .., "tags", tag] => Ok(Target::Tag(repository(name)?, tag_of(tag)?)),
            [name @ .., "images", reference] => {
                let reference = reference
                    .parse()
                    .map_err(|error: registry_core::TagError| {
                        ApiError::bad_request(format!("{error}; or give a digest (sha256:...)"))
                    })?;
                Ok(Target::Image(repository(name)?, reference))
            }
            [name @ .., "manifests", digest, "delete-preview"] => Ok(
                Target::ManifestDeletePreview(repository(name)?, digest_of(digest)?),
            ),
            [name @ .., "manifests", digest] => {
                Ok(Target::Manifest(repository(name)?, digest_of(digest)?))
            }
            _ => Err(unknown()),
        }
    }
}

fn repository(parts: &[&str]) -> Result<RepositoryName, ApiError> {
    let name = parts.join("/");
    name.parse()
        .map_err(|error| ApiError::bad_request(format!("repository name: {error}")))
}

fn tag_of(text: &str) -> Result<Tag, ApiError> {
    text.parse()
        .map_err(|error| ApiError::bad_request(format!("{error}")))
}

fn digest_of(text: &str) -> Result<Digest, ApiError> {
    text.parse()
        .map_err(|error| ApiError::bad_request(format!("digest {text:?}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("a valid name")
    }

    #[test]
    fn names_with_slashes_and_suffix_words_are_read_from_the_end() {
        assert_eq!(
            Target::parse("team/tags/app/tags").expect("parses"),
            Target::Tags(name("team/tags/app"))
        );
        assert_eq!(
            Target::parse("a/b/tags/v1/delete-preview").expect("parses"),
            Target::TagDeletePreview(name("a/b"), "v1".parse().expect("a tag"))
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            Target::parse(&format!("team/app/images/{digest}")).expect("parses"),
            Target::Image(name("team/app"), digest.parse().expect("a reference"))
        );
    }

    #[test]
    fn bad_parts_name_what_is_wrong() {
        for (path, status) in [
            ("Team/tags", 400),
            ("team/tags/.hidden", 400),
            ("team/manifests/sha256:xyz", 400),
            ("team", 404),
            ("tags", 400),
            ("team/images", 404),
        ] {
            let error = Target::parse(path).expect_err(path);
            let response = axum::response::IntoResponse::into_response(error);
            assert_eq!(response.status().as_u16(), status, "{path}");
        }
    }
}
