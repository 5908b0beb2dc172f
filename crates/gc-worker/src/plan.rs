//! Marking: from a scan of the store, what stays and what goes.
//!
//! Roots are the tags (with `--delete-untagged`) or every manifest
//! (without). From each kept manifest: its blobs, an index's children, its
//! subject, and the manifests whose subject it is (referrers stay with
//! their subject, and a subject with its kept referrers).
//!
//! Grace protects what was recently *referenced*, not only what was
//! recently written: a blob stays while its data or any link to it (a
//! layer link or a revision link, in any repository) is younger than the
//! grace period, since a blob pushed again, mounted or closed from an old
//! upload keeps its old data. Young manifests, layer links and upload
//! sessions stay too. Blobs no kept manifest of any repository references
//! go; repositories left with nothing are pruned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use registry_core::manifest::{self, ParsedManifest};
use registry_core::{Digest, RepositoryName};
use registry_storage::{BlobObject, Listed, RepositoryObjects, StorageError, Store};

/// Manifests read at once.
const READ_CONCURRENCY: usize = 32;

/// What a collection would delete.
#[derive(Debug, Default)]
pub struct Plan {
    pub repositories: Vec<RepositoryPlan>,
    pub blobs: Vec<BlobObject>,
    pub repositories_scanned: usize,
}

/// What goes from one repository.
#[derive(Debug)]
pub struct RepositoryPlan {
    pub name: RepositoryName,
    /// How many manifests are removed (their revision links).
    pub manifests: usize,
    /// Link objects to delete inside the window: revisions, referrers
    /// entries, layer links.
    pub objects: Vec<Path>,
    /// Tag index entries (the history of what a tag pointed at) of removed
    /// manifests. Nothing reads them to serve a pull, so they are deleted
    /// after the window, keeping it short.
    pub tag_history: Vec<Path>,
    pub layer_links: usize,
    /// Upload sessions older than the maximum age.
    pub uploads: Vec<String>,
    /// Nothing is left: delete the whole repository.
    pub prune: bool,
    /// Referrers entries missing for kept manifests with a subject (a store
    /// written by Distribution has none): (subject, referrer, descriptor).
    pub referrers_to_index: Vec<(Digest, Digest, bytes::Bytes)>,
}

impl Plan {
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|blob| blob.listed.size).sum()
    }
}

/// Limits of one marking.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub delete_untagged: bool,
    /// Objects modified at or after this are young: never deleted.
    pub grace_cutoff: SystemTime,
    /// Upload sessions untouched since this (and older than the grace
    /// period) are stale.
    pub upload_cutoff: SystemTime,
}

/// A link object as listed: its path and its entity tag.
type LinkVersion = (Path, Option<String>);

/// Manifest references and tag links read so far, kept from the scan before
/// the window to the one inside it. Manifests are content-addressed, and a
/// link is re-read only when its listing says it changed.
#[derive(Debug, Default)]
pub struct Reader {
    /// Manifests read, by digest. A manifest found missing is not
    /// remembered: pushed again before the window, it must be read then.
    manifests: Mutex<HashMap<Digest, ParsedManifest>>,
    links: Mutex<HashMap<LinkVersion, Option<Digest>>>,
}

impl Reader {
    /// The references of a manifest; `None` when its bytes are gone.
    pub(crate) async fn manifest(
        &self,
        store: &Store,
        digest: &Digest,
    ) -> anyhow::Result<Option<ParsedManifest>> {
        if let Some(known) = self.manifests.lock().expect("never poisoned").get(digest) {
            return Ok(Some(known.clone()));
        }
        let bytes = match store.manifest_bytes(digest).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let parsed =
            manifest::read(&bytes).with_context(|| format!("manifest {digest} cannot be read"))?;
        self.manifests
            .lock()
            .expect("never poisoned")
            .insert(digest.clone(), parsed.clone());
        Ok(Some(parsed))
    }

    pub(crate) async fn link(
        &self,
        store: &Store,
        listed: &Listed,
    ) -> anyhow::Result<Option<Digest>> {
        let key = (listed.path.clone(), listed.e_tag.clone());
        cached(&self.links, key, async {
            Ok(store.read_link(&listed.path).await?)
        })
        .await
    }

    /// Reads every manifest and tag link of a scan, many at a time.
    pub async fn read_all(
        &self,
        store: &Store,
        repositories: &[RepositoryObjects],
    ) -> anyhow::Result<()> {
        let digests: BTreeSet<&Digest> = repositories
            .iter()
            .flat_map(|repository| repository.revisions.keys())
            .collect();
        for_each_concurrently(digests, |digest| self.manifest(store, digest)).await?;
        let links = repositories
            .iter()
            .flat_map(|repository| repository.tags.values())
            .filter_map(|tag| tag.current.as_ref());
        for_each_concurrently(links, |listed| self.link(store, listed)).await
    }
}

/// The value cached under `key`, else what `read` yields, then cached.
async fn cached<K: Eq + std::hash::Hash, V: Clone>(
    cache: &Mutex<HashMap<K, V>>,
    key: K,
    read: impl Future<Output = anyhow::Result<V>>,
) -> anyhow::Result<V> {
    if let Some(known) = cache.lock().expect("never poisoned").get(&key) {
        return Ok(known.clone());
    }
    let value = read.await?;
    cache
        .lock()
        .expect("never poisoned")
        .insert(key, value.clone());
    Ok(value)
}

/// Runs `read` on every item, [`READ_CONCURRENCY`] at a time.
async fn for_each_concurrently<T, V, F: Future<Output = anyhow::Result<V>>>(
    items: impl IntoIterator<Item = T>,
    read: impl FnMut(T) -> F,
) -> anyhow::Result<()> {
    futures::stream::iter(items)
        .map(read)
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Written at or after the cutoff. Both times come from the store's clock
/// at its resolution, so anything written once the collection began is
/// young, and anything written in the same tick as well.
fn young(listed: &Listed, rules: &Rules) -> bool {
    listed.last_modified >= rules.grace_cutoff
}

/// Marks and plans. `reader` should have read the scan already.
pub async fn plan(
    store: &Store,
    reader: &Reader,
    repositories: Vec<RepositoryObjects>,
    blobs: Vec<BlobObject>,
    rules: Rules,
) -> anyhow::Result<Plan> {
    reader.read_all(store, &repositories).await?;
    let mut marked: BTreeSet<Digest> = recently_linked(&repositories, &rules);
    let mut plans = Vec::new();
    let repositories_scanned = repositories.len();
    for repository in repositories {
        let mut tagged = BTreeSet::new();
        for tag in repository.tags.values() {
            if let Some(current) = &tag.current
                && let Some(digest) = reader.link(store, current).await?
            {
                tagged.insert(digest);
            }
        }
        let mut parsed: BTreeMap<Digest, ParsedManifest> = BTreeMap::new();
        for digest in repository.revisions.keys() {
            if let Some(manifest) = reader.manifest(store, digest).await? {
                parsed.insert(digest.clone(), manifest);
            }
        }
        let kept = keep(&repository, &tagged, &parsed, rules);
        let mut blobs_used: BTreeSet<Digest> = BTreeSet::new();
        for digest in &kept {
            marked.insert(digest.clone());
            if let Some(manifest) = parsed.get(digest) {
                // Foreign layers need not be pushed, but stay when they were.
                let blobs = manifest.blobs.iter().chain(&manifest.foreign);
                blobs_used.extend(blobs.map(|blob| blob.digest.clone()));
            }
        }
        marked.extend(blobs_used.iter().cloned());
        let referrers_to_index = unindexed_referrers(&repository, &kept, &parsed)?;
        let mut plan = repository_plan(repository, &kept, &blobs_used, rules);
        plan.referrers_to_index = referrers_to_index;
        plans.push(plan);
    }
    let blobs = blobs
        .into_iter()
        .filter(|blob| !marked.contains(&blob.digest) && !young(&blob.listed, &rules))
        .collect();
    Ok(Plan {
        repositories: plans
            .into_iter()
            .filter(RepositoryPlan::changes_anything)
            .collect(),
        blobs,
        repositories_scanned,
    })
}

/// Kept manifests with a subject whose referrers entry is missing, with
/// the descriptor the entry holds.
fn unindexed_referrers(
    repository: &RepositoryObjects,
    kept: &BTreeSet<Digest>,
    parsed: &BTreeMap<Digest, ParsedManifest>,
) -> anyhow::Result<Vec<(Digest, Digest, bytes::Bytes)>> {
    let mut missing = Vec::new();
    for digest in kept {
        let Some(manifest) = parsed.get(digest) else {
            continue;
        };
        let Some(subject) = &manifest.subject else {
            continue;
        };
        if repository
            .referrers
            .contains_key(&(subject.digest.clone(), digest.clone()))
        {
            continue;
        }
        let descriptor = manifest::referrer_descriptor(manifest, digest)
            .with_context(|| format!("describing referrer {digest}"))?;
        missing.push((subject.digest.clone(), digest.clone(), descriptor));
    }
    Ok(missing)
}

/// Digests that a young layer or revision link names, in any repository.
fn recently_linked(repositories: &[RepositoryObjects], rules: &Rules) -> BTreeSet<Digest> {
    repositories
        .iter()
        .flat_map(|repository| repository.layers.iter().chain(&repository.revisions))
        .filter(|(_, listed)| young(listed, rules))
        .map(|(digest, _)| digest.clone())
        .collect()
}

/// The manifests of a repository that stay.
fn keep(
    repository: &RepositoryObjects,
    tagged: &BTreeSet<Digest>,
    parsed: &BTreeMap<Digest, ParsedManifest>,
    rules: Rules,
) -> BTreeSet<Digest> {
    let mut pending: Vec<Digest> = repository
        .revisions
        .iter()
        .filter(|(digest, listed)| {
            !rules.delete_untagged || tagged.contains(*digest) || young(listed, &rules)
        })
        .map(|(digest, _)| digest.clone())
        .chain(tagged.iter().cloned())
        .collect();
    let mut kept = BTreeSet::new();
    loop {
        while let Some(digest) = pending.pop() {
            if !repository.revisions.contains_key(&digest) || !kept.insert(digest.clone()) {
                continue;
            }
            if let Some(manifest) = parsed.get(&digest) {
                // Children, the subject, and manifests a kept manifest uses
                // as a blob (served through their revision link).
                pending.extend(manifest.digests().cloned());
            }
        }
        let referrers: Vec<Digest> = parsed
            .iter()
            .filter(|(digest, manifest)| {
                !kept.contains(*digest)
                    && manifest
                        .subject
                        .as_ref()
                        .is_some_and(|subject| kept.contains(&subject.digest))
            })
            .map(|(digest, _)| digest.clone())
            .collect();
        if referrers.is_empty() {
            return kept;
        }
        pending.extend(referrers);
    }
}

fn repository_plan(
    repository: RepositoryObjects,
    kept: &BTreeSet<Digest>,
    blobs_used: &BTreeSet<Digest>,
    rules: Rules,
) -> RepositoryPlan {
    let mut objects = Vec::new();
    let mut manifests = 0;
    for (digest, listed) in &repository.revisions {
        if !kept.contains(digest) {
            manifests += 1;
            objects.push(listed.path.clone());
        }
    }
    let mut tag_history = Vec::new();
    for tag in repository.tags.values() {
        for (digest, listed) in &tag.index {
            if !kept.contains(digest) {
                tag_history.push(listed.path.clone());
            }
        }
    }
    for ((_, referrer), listed) in &repository.referrers {
        if !kept.contains(referrer) {
            objects.push(listed.path.clone());
        }
    }
    let mut layer_links = 0;
    for (digest, listed) in &repository.layers {
        if !blobs_used.contains(digest) && !young(listed, &rules) {
            objects.push(listed.path.clone());
            layer_links += 1;
        }
    }
    let (stale, live): (Vec<_>, Vec<_>) =
        repository.uploads.into_iter().partition(|(_, objects)| {
            objects
                .iter()
                .all(|listed| listed.last_modified < rules.upload_cutoff && !young(listed, &rules))
        });
    let uploads: Vec<String> = stale.into_iter().map(|(id, _)| id).collect();
    let prune = kept.is_empty()
        && repository.tags.values().all(|tag| tag.current.is_none())
        && live.is_empty()
        && repository
            .layers
            .values()
            .all(|listed| !young(listed, &rules));
    RepositoryPlan {
        name: repository.name,
        manifests,
        objects,
        tag_history,
        layer_links,
        uploads,
        prune,
        referrers_to_index: Vec::new(),
    }
}

impl RepositoryPlan {
    fn changes_anything(&self) -> bool {
        self.prune
            || !self.referrers_to_index.is_empty()
            || !self.objects.is_empty()
            || !self.tag_history.is_empty()
            || !self.uploads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest found missing when read before the window may be pushed
    /// again before it opens: it must be read again then, not remembered
    /// as missing (its blobs would go unmarked).
    #[tokio::test]
    async fn a_manifest_found_missing_is_read_again() {
        let store = Store::in_memory();
        let name: RepositoryName = "r".parse().expect("name");
        let body = bytes::Bytes::from_static(br#"{"schemaVersion":2,"manifests":[]}"#);
        let digest = Digest::sha256_of(&body);
        let reader = Reader::default();
        assert!(
            reader
                .manifest(&store, &digest)
                .await
                .expect("read")
                .is_none()
        );
        store
            .put_manifest(&name, &digest, body, None)
            .await
            .expect("push");
        assert!(
            reader
                .manifest(&store, &digest)
                .await
                .expect("read")
                .is_some()
        );
    }
}
