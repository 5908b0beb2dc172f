//! What the registry holds, as one user may see it: the catalog, tags, what
//! each tag points at, manifests, configs, referrers and the summary of an
//! image (size, created, platforms), through the caches.
//!
//! Who may see what is always asked of registry-api with the user's own
//! credentials before a shared cache entry is used: the catalog and a
//! repository's tag list are cached per user, and every entry shared by
//! users (all kept per repository) is reached only through one of those,
//! or after a `HEAD` of the digest in that repository with the user's
//! credentials.

use std::sync::Arc;
use std::time::SystemTime;

use futures::{StreamExt, TryFutureExt};
use serde::Serialize;

use crate::cache::{DigestCache, Fresh, ManifestDoc, UserKey, UserKeys, Weigh};
use crate::model::{Descriptor, ImageConfig, Kind, Manifest};
use crate::registry::{Credentials, ManifestHead, Registry, UpstreamError};

/// Requests one page may have in flight at once (the registry client also
/// bounds all of them together).
const PAGE_CONCURRENCY: usize = 32;
/// Memory for each kind of list (catalogs, tag lists, tag heads, referrers).
const LIST_BYTES: u64 = 8 << 20;

/// Who is asking: their credentials, and the key of their cache entries.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: Credentials,
    key: UserKey,
}

/// The registry's content, cached.
#[derive(Debug)]
pub struct Inspector {
    pub registry: Registry,
    keys: UserKeys,
    content: DigestCache,
    catalogs: Fresh<UserKey, Arc<Vec<String>>>,
    tags: Fresh<(UserKey, String), Arc<Vec<String>>>,
    heads: Fresh<(String, String), ManifestHead>,
    referrers: Fresh<(String, String), Arc<Vec<Descriptor>>>,
}

/// What an image or index amounts to.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub media_type: String,
    pub kind: Kind,
    /// Config plus layers; for an index, over its present platforms.
    pub size: Option<u64>,
    pub created: Option<String>,
    pub platforms: Vec<PlatformSummary>,
}

/// One platform of an index.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformSummary {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub digest: String,
    pub size: Option<u64>,
    pub created: Option<String>,
    /// The index names it, but the registry does not have it.
    pub missing: bool,
}

impl Inspector {
    pub fn new(registry: Registry, cache_bytes: u64) -> Self {
        Inspector {
            registry,
            keys: UserKeys::default(),
            content: DigestCache::new(cache_bytes),
            catalogs: Fresh::new(LIST_BYTES),
            tags: Fresh::new(LIST_BYTES),
            heads: Fresh::new(LIST_BYTES),
            referrers: Fresh::new(LIST_BYTES),
        }
    }

    pub fn viewer(&self, user: Credentials) -> Viewer {
        let key = self.keys.of(&user);
        Viewer { user, key }
    }

    /// Every repository the viewer may pull, in name order.
    pub async fn catalog(&self, viewer: &Viewer) -> Result<Arc<Vec<String>>, UpstreamError> {
        let fetch = self.registry.catalog(&viewer.user).map_ok(Arc::new);
        self.catalogs.get_or_fetch(viewer.key, fetch).await
    }

    /// Every tag of `repository`, in name order; fails unless the viewer
    /// may pull from it.
    pub async fn tags(
        &self,
        viewer: &Viewer,
        repository: &str,
    ) -> Result<Arc<Vec<String>>, UpstreamError> {
        let fetch = self
            .registry
            .tags(&viewer.user, repository)
            .map_ok(Arc::new);
        let key = (viewer.key, repository.to_owned());
        self.tags.get_or_fetch(key, fetch).await
    }

    /// Forgets what is cached of a repository's tags after a change.
    pub fn forget_tag(&self, viewer: &Viewer, repository: &str, tag: &str) {
        self.tags.forget(&(viewer.key, repository.to_owned()));
        self.heads.forget(&(repository.to_owned(), tag.to_owned()));
        self.catalogs.forget(&viewer.key);
    }

    /// Forgets a manifest of `repository` deleted through the UI, so an
    /// index listing it shows it missing at once.
    pub fn forget_manifest(&self, repository: &str, digest: &str) {
        self.content.forget_manifest(repository, digest);
    }

    /// What `tag` points at. Call after [`Inspector::tags`] confirmed the
    /// viewer may pull from `repository`.
    pub async fn head(
        &self,
        viewer: &Viewer,
        repository: &str,
        tag: &str,
    ) -> Result<ManifestHead, UpstreamError> {
        let fetch = self.registry.head_manifest(&viewer.user, repository, tag);
        let key = (repository.to_owned(), tag.to_owned());
        self.heads.get_or_fetch(key, fetch).await
    }

    /// What each of `tags` points at; tags that vanished meanwhile are
    /// left out.
    pub async fn heads(
        &self,
        viewer: &Viewer,
        repository: &str,
        tags: &[String],
    ) -> Result<Vec<(String, ManifestHead)>, UpstreamError> {
        let found: Vec<Result<Option<(String, ManifestHead)>, UpstreamError>> =
            futures::stream::iter(tags.iter().cloned())
                .map(|tag| async move {
                    match self.head(viewer, repository, &tag).await {
                        Ok(head) => Ok(Some((tag, head))),
                        Err(UpstreamError::NotFound(_)) => Ok(None),
                        Err(other) => Err(other),
                    }
                })
                .buffered(PAGE_CONCURRENCY)
                .collect()
                .await;
        found.into_iter().filter_map(Result::transpose).collect()
    }

    /// Confirms that `repository` has the manifest `digest` for this viewer.
    pub async fn confirm_digest(
        &self,
        viewer: &Viewer,
        repository: &str,
        digest: &str,
    ) -> Result<ManifestHead, UpstreamError> {
        self.registry
            .head_manifest(&viewer.user, repository, digest)
            .await
    }

    /// A manifest of `repository`, parsed.
    pub async fn manifest(
        &self,
        viewer: &Viewer,
        repository: &str,
        digest: &str,
    ) -> Result<Arc<ManifestDoc>, UpstreamError> {
        let fetch = async {
            let document = self
                .registry
                .manifest(&viewer.user, repository, digest)
                .await?;
            let manifest: Manifest = serde_json::from_slice(&document.bytes).map_err(|error| {
                UpstreamError::Unexpected {
                    status: reqwest::StatusCode::OK,
                    what: format!("{repository}@{digest}"),
                    message: format!("the manifest is not JSON the UI can read: {error}"),
                }
            })?;
            let size = document.bytes.len() as u64;
            let doc = ManifestDoc {
                media_type: document.media_type,
                size,
                manifest,
            };
            Ok((size, Arc::new(doc)))
        };
        self.content.manifest(repository, digest, fetch).await
    }

    /// An image config of `repository`, parsed; an unreadable one is empty.
    pub async fn config(
        &self,
        viewer: &Viewer,
        repository: &str,
        digest: &str,
    ) -> Result<Arc<ImageConfig>, UpstreamError> {
        let fetch = async {
            let bytes = self.registry.blob(&viewer.user, repository, digest).await?;
            let config = serde_json::from_slice(&bytes).unwrap_or_default();
            Ok((bytes.len() as u64, Arc::new(config)))
        };
        self.content.config(repository, digest, fetch).await
    }

    /// The manifests that refer to `digest` (OCI 1.1 referrers).
    pub async fn referrers(
        &self,
        viewer: &Viewer,
        repository: &str,
        digest: &str,
    ) -> Result<Arc<Vec<Descriptor>>, UpstreamError> {
        let fetch = async {
            let bytes = self
                .registry
                .referrers(&viewer.user, repository, digest)
                .await?;
            let index: Manifest = serde_json::from_slice(&bytes).unwrap_or_default();
            Ok(Arc::new(index.manifests))
        };
        let key = (repository.to_owned(), digest.to_owned());
        self.referrers.get_or_fetch(key, fetch).await
    }

    /// Size, creation time and platforms of the manifest `digest`.
    pub async fn summary(
        &self,
        viewer: &Viewer,
        repository: &str,
        digest: &str,
    ) -> Result<Summary, UpstreamError> {
        let doc = self.manifest(viewer, repository, digest).await?;
        let kind = doc.manifest.kind(&doc.media_type);
        if kind != Kind::Index {
            let created = self.created(viewer, repository, &doc).await;
            return Ok(Summary {
                media_type: doc.media_type.clone(),
                kind,
                size: Some(doc.manifest.image_size()),
                created,
                platforms: Vec::new(),
            });
        }
        let platforms: Vec<PlatformSummary> =
            futures::stream::iter(platform_entries(&doc.manifest).cloned())
                .map(|entry| async move { self.platform(viewer, repository, &entry).await })
                .buffered(PAGE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
        let present = platforms.iter().filter(|platform| !platform.missing);
        Ok(Summary {
            media_type: doc.media_type.clone(),
            kind,
            size: Some(present.clone().filter_map(|platform| platform.size).sum()),
            created: present
                .filter_map(|platform| platform.created.clone())
                .max(),
            platforms,
        })
    }

    async fn platform(
        &self,
        viewer: &Viewer,
        repository: &str,
        entry: &Descriptor,
    ) -> Result<PlatformSummary, UpstreamError> {
        let platform = entry.platform.clone().unwrap_or_default();
        let mut summary = PlatformSummary {
            os: platform.os,
            architecture: platform.architecture,
            variant: platform.variant,
            os_version: platform.os_version,
            digest: entry.digest.clone(),
            size: None,
            created: None,
            missing: false,
        };
        match self.manifest(viewer, repository, &entry.digest).await {
            Ok(child) => {
                summary.size = Some(child.manifest.image_size());
                summary.created = self.created(viewer, repository, &child).await;
            }
            Err(UpstreamError::NotFound(_)) => summary.missing = true,
            Err(other) => return Err(other),
        }
        Ok(summary)
    }

    /// The config's `created`, when the config can be read.
    async fn created(
        &self,
        viewer: &Viewer,
        repository: &str,
        doc: &ManifestDoc,
    ) -> Option<String> {
        if doc.manifest.kind(&doc.media_type) != Kind::Image {
            return doc
                .manifest
                .annotations
                .get("org.opencontainers.image.created")
                .cloned();
        }
        let config = doc.manifest.config.as_ref()?;
        match self.config(viewer, repository, &config.digest).await {
            Ok(config) => config.created.clone(),
            Err(error) => {
                tracing::debug!(%error, repository, digest = %config.digest, "cannot read an image config");
                None
            }
        }
    }
}

/// The runnable platforms of an index: not the attestation manifests that
/// BuildKit lists beside them.
pub fn platform_entries(index: &Manifest) -> impl Iterator<Item = &Descriptor> {
    index
        .manifests
        .iter()
        .filter(|entry| !entry.annotations.contains_key("vnd.docker.reference.type"))
}

impl Weigh for ManifestHead {
    fn weigh(&self) -> u64 {
        (self.digest.len() + self.media_type.len()) as u64 + 64
    }
}

impl Weigh for Arc<Vec<Descriptor>> {
    fn weigh(&self) -> u64 {
        let annotations = |descriptor: &Descriptor| {
            descriptor
                .annotations
                .iter()
                .map(|(key, value)| key.len() + value.len() + 48)
                .sum::<usize>()
        };
        self.iter()
            .map(|descriptor| {
                (descriptor.digest.len()
                    + descriptor.media_type.len()
                    + 160
                    + annotations(descriptor)) as u64
            })
            .sum::<u64>()
            + 64
    }
}

/// A time as RFC 3339 in UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
