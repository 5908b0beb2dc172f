//! Manifests and tags: manifest bytes are blobs, a repository has a
//! revision link per manifest, and a tag is a `current` link plus an index
//! of every digest the tag has pointed at (as Distribution keeps it).

use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::{Digest, RepositoryName, Tag};

use crate::{StorageError, Store};

/// The manifest a tag points at, and since when.
#[derive(Debug)]
pub struct TaggedManifest {
    pub digest: Digest,
    pub bytes: Bytes,
    /// When the tag was last pointed at this manifest: its push.
    pub tagged_at: SystemTime,
}

impl Store {
    /// Stores manifest bytes under their digest and links them into the
    /// repository: its referrers entry when it names a `subject` (the
    /// subject's digest and the manifest's descriptor), its revision link,
    /// then `tag`. The bytes are written before any link, so a link never
    /// points at nothing; the referrers entry before the revision link, so
    /// a manifest of the repository is never missing from its subject's
    /// referrers (an entry whose manifest is not in the repository is not
    /// listed). Another replica's delete of the manifest can land between
    /// the revision link and the tag: the revision link is checked once the
    /// tag is written, and written again if it went, so the tag does not
    /// name a manifest the repository no longer has.
    pub async fn put_manifest(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        body: Bytes,
        tag: Option<&Tag>,
        subject: Option<(&Digest, Bytes)>,
    ) -> Result<(), StorageError> {
        self.objects
            .put(
                &self.layout.blob_data(digest),
                PutPayload::from(body.clone()),
            )
            .await?;
        self.manifest_cache.insert(digest, &body);
        let _writing = self.repository_writes.lock(name).await;
        if let Some((subject, descriptor)) = subject {
            self.add_referrer(name, subject, digest, descriptor).await?;
        }
        let revision = self.layout.revision_link(name, digest);
        self.write_link(&revision, digest).await?;
        if let Some(tag) = tag {
            self.tag_manifest(name, tag, digest).await?;
            if !self.exists(&revision).await? {
                tracing::warn!(repository = %name, %digest, %tag, "the manifest was deleted while it was tagged (by another replica); linked again");
                self.write_link(&revision, digest).await?;
            }
        }
        Ok(())
    }

    /// Points a tag at a manifest the repository already has: the tag's
    /// index entry first, as Distribution writes it, then its link.
    async fn tag_manifest(
        &self,
        name: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        self.write_link(&self.layout.tag_index_entry(name, tag, digest), digest)
            .await?;
        let written = self
            .write_link(&self.layout.tag_current(name, tag), digest)
            .await;
        self.tag_lists.forget(name);
        written
    }

    /// Whether the repository has a manifest with this digest.
    pub async fn has_manifest(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        self.exists(&self.layout.revision_link(name, digest)).await
    }

    /// The size of a manifest of the repository, if it has it.
    pub async fn manifest_size(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StorageError> {
        if !self.has_manifest(name, digest).await? {
            return Ok(None);
        }
        self.blob_size(digest).await
    }

    /// The bytes of a manifest of the repository.
    pub async fn read_manifest(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<Bytes, StorageError> {
        if !self.has_manifest(name, digest).await? {
            return Err(StorageError::NotFound);
        }
        self.manifest_bytes(digest).await
    }

    /// The manifest a tag points at. A tag only ever points at a manifest
    /// of its repository (deleting a manifest removes its tags), so no
    /// revision link is read.
    pub async fn read_tagged_manifest(
        &self,
        name: &RepositoryName,
        tag: &Tag,
    ) -> Result<TaggedManifest, StorageError> {
        let (digest, tagged_at) = self
            .read_stamped_link(&self.layout.tag_current(name, tag))
            .await?
            .ok_or(StorageError::NotFound)?;
        let bytes = self.manifest_bytes(&digest).await?;
        Ok(TaggedManifest {
            digest,
            bytes,
            tagged_at,
        })
    }

    /// The bytes of a manifest by digest (through the cache), whichever
    /// repository holds it.
    pub async fn manifest_bytes(&self, digest: &Digest) -> Result<Bytes, StorageError> {
        if let Some(bytes) = self.manifest_cache.get(digest) {
            return Ok(bytes);
        }
        let bytes = self.blob_bytes(digest).await?;
        self.manifest_cache.insert(digest, &bytes);
        Ok(bytes)
    }

    /// The digest a tag points at, if the tag exists.
    pub async fn resolve_tag(
        &self,
        name: &RepositoryName,
        tag: &Tag,
    ) -> Result<Option<Digest>, StorageError> {
        self.read_link(&self.layout.tag_current(name, tag)).await
    }

    /// Removes a tag; the manifest stays. Returns whether the tag existed.
    pub async fn delete_tag(&self, name: &RepositoryName, tag: &Tag) -> Result<bool, StorageError> {
        let _writing = self.repository_writes.lock(name).await;
        if self.resolve_tag(name, tag).await?.is_none() {
            return Ok(false);
        }
        let deleted = self.delete_prefix(&self.layout.tag(name, tag)).await;
        self.tag_lists.forget(name);
        deleted?;
        Ok(true)
    }

    /// Removes a manifest from the repository, with every tag that points at
    /// it (as Distribution does) and its referrers entry. The bytes stay
    /// until garbage collection. Returns whether the repository had it.
    ///
    /// The tags go first, so a delete cut off half-way leaves a manifest
    /// with fewer tags, never a tag without its manifest, and deleting it
    /// again finishes the job. They are looked for again once the revision
    /// link is gone: another replica's push of a tag onto this manifest
    /// that landed after the first look either shows in the second, or
    /// finds the revision link gone and writes it again.
    pub async fn delete_manifest(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool, StorageError> {
        let _writing = self.repository_writes.lock(name).await;
        if !self.has_manifest(name, digest).await? {
            return Ok(false);
        }
        self.untag_all(name, digest).await?;
        if let Some(subject) = subject {
            self.delete_object(&self.layout.referrer(name, subject, digest))
                .await?;
        }
        self.delete_object(&self.layout.revision_link(name, digest))
            .await?;
        self.untag_all(name, digest).await?;
        Ok(true)
    }

    /// Removes every tag of the repository that points at `digest`.
    async fn untag_all(&self, name: &RepositoryName, digest: &Digest) -> Result<(), StorageError> {
        let untagged = async {
            for tag in self.tags(name).await?.unwrap_or_default() {
                if self.resolve_tag(name, &tag).await?.as_ref() == Some(digest) {
                    self.delete_prefix(&self.layout.tag(name, &tag)).await?;
                }
            }
            Ok(())
        }
        .await;
        self.tag_lists.forget(name);
        untagged
    }

    /// The repository's tags in lexical order, or `None` when the repository
    /// does not exist at all.
    pub async fn tags(&self, name: &RepositoryName) -> Result<Option<Vec<Tag>>, StorageError> {
        let mut tags: Vec<Tag> = self
            .child_directories(&self.layout.tags(name))
            .await?
            .iter()
            .filter_map(|prefix| prefix.filename()?.parse().ok())
            .collect();
        if tags.is_empty() && !self.repository_exists(name).await? {
            return Ok(None);
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Whether anything is stored for the repository itself (repositories
    /// nested under its name do not count).
    pub async fn repository_exists(&self, name: &RepositoryName) -> Result<bool, StorageError> {
        for own in self.layout.repository_own_directories(name) {
            if self.objects.list(Some(&own)).try_next().await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
