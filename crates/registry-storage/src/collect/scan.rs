//! Whole-store listings for garbage collection: every object under
//! `repositories/` sorted into repositories, tags, revisions, layer links,
//! uploads and referrers entries; and every blob. One listing each, so a
//! scan costs a few requests per thousand objects, even on S3.

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::path::Path;
use registry_core::{Digest, RepositoryName, Tag};

use crate::{StorageError, Store};

/// Deletions in flight at once.
const DELETE_CONCURRENCY: usize = 32;
/// Repository listings in flight at once.
const SCAN_CONCURRENCY: usize = 16;
/// Threads deleting files at once on a local filesystem.
const LOCAL_DELETE_THREADS: usize = 4;

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: Path,
    pub size: u64,
    pub last_modified: SystemTime,
    /// Changes whenever the object is rewritten (content hash on S3; inode,
    /// time and size on a filesystem).
    pub e_tag: Option<String>,
}

impl From<ObjectMeta> for Listed {
    fn from(meta: ObjectMeta) -> Self {
        Listed {
            path: meta.location,
            size: meta.size,
            last_modified: meta.last_modified.into(),
            e_tag: meta.e_tag,
        }
    }
}

/// A tag's objects: its `current` link and its index of past digests.
#[derive(Clone, Debug, Default)]
pub struct TagObjects {
    pub current: Option<Listed>,
    pub index: Vec<(Digest, Listed)>,
}

/// Everything stored for one repository.
#[derive(Clone, Debug)]
pub struct RepositoryObjects {
    pub name: RepositoryName,
    pub tags: BTreeMap<Tag, TagObjects>,
    pub revisions: BTreeMap<Digest, Listed>,
    pub layers: BTreeMap<Digest, Listed>,
    /// Upload sessions by id, with all their objects.
    pub uploads: BTreeMap<String, Vec<Listed>>,
    /// (subject, referrer) → the referrers entry.
    pub referrers: BTreeMap<(Digest, Digest), Listed>,
}

impl RepositoryObjects {
    /// Takes in what a listing of another of the repository's own
    /// directories found.
    fn absorb(&mut self, other: RepositoryObjects) {
        for (tag, objects) in other.tags {
            let mine = self.tags.entry(tag).or_default();
            mine.current = mine.current.take().or(objects.current);
            mine.index.extend(objects.index);
        }
        self.revisions.extend(other.revisions);
        self.layers.extend(other.layers);
        self.uploads.extend(other.uploads);
        self.referrers.extend(other.referrers);
    }

    fn new(name: RepositoryName) -> Self {
        RepositoryObjects {
            name,
            tags: BTreeMap::new(),
            revisions: BTreeMap::new(),
            layers: BTreeMap::new(),
            uploads: BTreeMap::new(),
            referrers: BTreeMap::new(),
        }
    }
}

/// One blob of the global blob store.
#[derive(Clone, Debug)]
pub struct BlobObject {
    pub digest: Digest,
    pub listed: Listed,
}

fn digest_at(parts: &[&str]) -> Option<Digest> {
    match parts {
        [algorithm, hex, ..] => format!("{algorithm}:{hex}").parse().ok(),
        _ => None,
    }
}

impl Store {
    /// Lists every repository's objects. On a local filesystem, where a
    /// listing is a directory walk, each repository's own directories are
    /// walked, many at a time; on an object store, where a listing is paged
    /// requests, each top-level directory of `repositories/` is listed in
    /// one go, many at a time (a repository's objects all lie under its
    /// name's first component).
    pub async fn scan_repositories(&self) -> Result<Vec<RepositoryObjects>, StorageError> {
        if self.local_root.is_some() {
            let found = self.repository_directories().await?;
            return futures::stream::iter(found)
                .map(|(name, own)| async move {
                    let mut repository = RepositoryObjects::new(name);
                    for directory in own {
                        for part in self.scan_under(&directory).await? {
                            repository.absorb(part);
                        }
                    }
                    Ok::<_, StorageError>(repository)
                })
                .buffer_unordered(SCAN_CONCURRENCY)
                .try_collect()
                .await;
        }
        let root = self.layout.repositories();
        let top = self.objects.list_with_delimiter(Some(&root)).await?;
        let scans: Vec<Vec<RepositoryObjects>> = futures::stream::iter(top.common_prefixes)
            .map(|directory| async move { self.scan_under(&directory).await })
            .buffered(SCAN_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(scans.into_iter().flatten().collect())
    }

    /// Lists one repository's own objects (nothing nested under its
    /// name), as [`Store::scan_repositories`] would find it; `None` when
    /// it is not there.
    pub async fn scan_repository(
        &self,
        name: &RepositoryName,
    ) -> Result<Option<RepositoryObjects>, StorageError> {
        let own: Vec<Path> = self
            .child_directories(&self.layout.repository(name))
            .await?
            .into_iter()
            .filter(|child| child.filename().is_some_and(|part| part.starts_with('_')))
            .collect();
        if own.is_empty() {
            return Ok(None);
        }
        let mut repository = RepositoryObjects::new(name.clone());
        for directory in own {
            for part in self.scan_under(&directory).await? {
                repository.absorb(part);
            }
        }
        Ok(Some(repository))
    }

    async fn scan_under(&self, under: &Path) -> Result<Vec<RepositoryObjects>, StorageError> {
        let root = self.layout.repositories();
        let prefix = format!("{root}/");
        let mut repositories: BTreeMap<String, RepositoryObjects> = BTreeMap::new();
        let mut listing = self.objects.list(Some(under));
        while let Some(meta) = listing.try_next().await? {
            let Some(relative) = meta
                .location
                .as_ref()
                .strip_prefix(&prefix)
                .map(str::to_owned)
            else {
                continue;
            };
            let parts: Vec<&str> = relative.split('/').collect();
            let Some(split) = parts.iter().position(|part| part.starts_with('_')) else {
                continue;
            };
            let name = parts[..split].join("/");
            let Ok(parsed_name) = name.parse::<RepositoryName>() else {
                tracing::warn!(%name, "skipping objects of a badly named repository");
                continue;
            };
            let repository = repositories
                .entry(name)
                .or_insert_with(|| RepositoryObjects::new(parsed_name));
            let listed = Listed::from(meta);
            match &parts[split..] {
                ["_manifests", "tags", tag, "current", "link"] => {
                    if let Ok(tag) = tag.parse() {
                        repository.tags.entry(tag).or_default().current = Some(listed);
                    }
                }
                ["_manifests", "tags", tag, "index", rest @ ..] => {
                    if let (Ok(tag), Some(digest)) = (tag.parse(), digest_at(rest)) {
                        repository
                            .tags
                            .entry(tag)
                            .or_default()
                            .index
                            .push((digest, listed));
                    }
                }
                ["_manifests", "revisions", rest @ ..] => {
                    if let Some(digest) = digest_at(rest) {
                        repository.revisions.insert(digest, listed);
                    }
                }
                ["_layers", rest @ ..] => {
                    if let Some(digest) = digest_at(rest) {
                        repository.layers.insert(digest, listed);
                    }
                }
                ["_uploads", id, ..] => {
                    repository
                        .uploads
                        .entry((*id).to_owned())
                        .or_default()
                        .push(listed);
                }
                ["_referrers", subject_algorithm, subject_hex, rest @ ..] => {
                    let subject = digest_at(&[subject_algorithm, subject_hex]);
                    if let (Some(subject), Some(referrer)) = (subject, digest_at(rest)) {
                        repository.referrers.insert((subject, referrer), listed);
                    }
                }
                _ => {}
            }
        }
        Ok(repositories.into_values().collect())
    }

    /// Lists every blob's data object.
    pub async fn scan_blobs(&self) -> Result<Vec<BlobObject>, StorageError> {
        let root = self.layout.blobs();
        let prefix = format!("{root}/");
        self.objects
            .list(Some(&root))
            .map_err(StorageError::from)
            .try_filter_map(|meta| {
                let relative = meta
                    .location
                    .as_ref()
                    .strip_prefix(&prefix)
                    .map(str::to_owned);
                async move {
                    let Some(relative) = relative else {
                        return Ok(None);
                    };
                    let parts: Vec<&str> = relative.split('/').collect();
                    let blob = match parts.as_slice() {
                        [algorithm, _, hex, "data"] => {
                            digest_at(&[algorithm, hex]).map(|digest| BlobObject {
                                digest,
                                listed: Listed::from(meta),
                            })
                        }
                        _ => None,
                    };
                    Ok(blob)
                }
            })
            .try_collect()
            .await
    }

    /// Deletes listed objects, many at a time; returns how many went. On a
    /// local filesystem, files are removed by a few threads directly (with
    /// their directory when it is left empty), not one blocking task each.
    pub async fn delete_objects(&self, paths: Vec<Path>) -> Result<u64, StorageError> {
        if let Some(root) = &self.local_root {
            return delete_local_files(root, paths).await;
        }
        futures::stream::iter(paths)
            .map(|path| async move { self.delete_object(&path).await })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_fold(0, |count, ()| async move { Ok(count + 1) })
            .await
    }

    /// Deletes an upload session found by a scan.
    pub async fn delete_upload_session(
        &self,
        name: &RepositoryName,
        id: &str,
    ) -> Result<(), StorageError> {
        self.delete_prefix(&self.layout.upload(name, &id)).await
    }
}

async fn delete_local_files(root: &std::path::Path, paths: Vec<Path>) -> Result<u64, StorageError> {
    let total = paths.len() as u64;
    let share = paths.len().div_ceil(LOCAL_DELETE_THREADS).max(1);
    let mut workers = Vec::new();
    for chunk in paths.chunks(share) {
        let root = root.to_owned();
        let files: Vec<std::path::PathBuf> =
            chunk.iter().map(|path| root.join(path.as_ref())).collect();
        workers.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                for file in files {
                    match std::fs::remove_file(&file) {
                        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                            return Err(error);
                        }
                        _ => {}
                    }
                    // Empty directories go too, up to the store's root; removing
                    // a directory fails, as it should, while it holds anything.
                    let mut parent = file.parent();
                    while let Some(directory) = parent.filter(|directory| *directory != root) {
                        if std::fs::remove_dir(directory).is_err() {
                            break;
                        }
                        parent = directory.parent();
                    }
                }
                Ok(())
            },
        ));
    }
    for worker in workers {
        worker.await.map_err(std::io::Error::other)??;
    }
    Ok(total)
}
