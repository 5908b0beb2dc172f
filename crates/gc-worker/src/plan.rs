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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

    /// Reads every manifest and tag link of a scan, many at a time. A
    /// manifest that fails to read is not remembered: marking its
    /// repository reads it again and reports the error there, naming the
    /// repository.
    pub async fn read_all(
        &self,
        store: &Store,
        repositories: &[RepositoryObjects],
    ) -> anyhow::Result<()> {
        let digests: BTreeSet<&Digest> = repositories
            .iter()
            .flat_map(|repository| repository.revisions.keys())
            .collect();
        for_each_concurrently(digests, |digest| async move {
            let _reported_when_marked = self.manifest(store, digest).await;
            Ok(())
        })
        .await?;
        let links = repositories
            .iter()
            .flat_map(|repository| repository.tags.values())
            .filter_map(|tag| tag.current.as_ref());
        for_each_concurrently(links, |listed| async move {
            match self.link(store, listed).await {
                Err(error) if is_damage(&error) => Ok(None),
                read => read,
            }
        })
        .await
    }
}

/// Whether a read failed on a damaged object (a link that is not a
/// digest, bytes that are not a manifest) rather than on the store: the
/// checker lists the one and goes on, and stops at the other.
pub(crate) fn is_damage(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StorageError>(),
        Some(StorageError::Corrupt { .. })
    ) || error
        .downcast_ref::<registry_core::RegistryError>()
        .is_some()
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

/// The marks of every repository: what each keeps, and what would go
/// from it. Made from the listing before the window and carried into it,
/// where only the repositories written since are marked again: marking is
/// per repository, and the whole store's marks are their union.
#[derive(Debug, Default)]
pub struct Marking {
    repositories: BTreeMap<RepositoryName, Marked>,
}

/// One repository's part of a marking.
#[derive(Debug)]
struct Marked {
    plan: RepositoryPlan,
    /// Every digest the repository keeps: its kept manifests, their blobs,
    /// and what its young links name.
    keeps: Vec<Digest>,
    /// The listing, kept while a manifest it names could not be read: one
    /// pushed (to any repository) before the window is read in it.
    unsettled: Option<RepositoryObjects>,
}

impl Marking {
    /// Marks every repository listed.
    pub async fn of(
        store: &Store,
        reader: &Reader,
        repositories: Vec<RepositoryObjects>,
        rules: Rules,
    ) -> anyhow::Result<Self> {
        let mut marking = Marking::default();
        marking.mark(store, reader, repositories, rules).await?;
        Ok(marking)
    }

    /// Lists again and marks again the repositories in `written` (one no
    /// longer there is gone), and marks again every unsettled one.
    pub async fn update(
        &mut self,
        store: &Store,
        reader: &Reader,
        written: &BTreeSet<RepositoryName>,
        rules: Rules,
    ) -> anyhow::Result<()> {
        let relisted: Vec<Option<RepositoryObjects>> = futures::stream::iter(written)
            .map(|name| store.scan_repository(name))
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        self.repositories.retain(|name, _| !written.contains(name));
        let mut again: Vec<RepositoryObjects> = relisted.into_iter().flatten().collect();
        for marked in self.repositories.values_mut() {
            again.extend(marked.unsettled.take());
        }
        self.mark(store, reader, again, rules).await
    }

    async fn mark(
        &mut self,
        store: &Store,
        reader: &Reader,
        repositories: Vec<RepositoryObjects>,
        rules: Rules,
    ) -> anyhow::Result<()> {
        reader.read_all(store, &repositories).await?;
        for repository in repositories {
            let marked = mark_repository(store, reader, repository, rules).await?;
            self.repositories.insert(marked.plan.name.clone(), marked);
        }
        Ok(())
    }

    /// What goes: the repositories' plans, and the blobs that no
    /// repository keeps and that are not young.
    pub fn plan(self, blobs: Vec<BlobObject>, rules: Rules) -> Plan {
        let marked: HashSet<&Digest> = self
            .repositories
            .values()
            .flat_map(|marked| &marked.keeps)
            .collect();
        let blobs = blobs
            .into_iter()
            .filter(|blob| !marked.contains(&blob.digest) && !young(&blob.listed, &rules))
            .collect();
        let repositories_scanned = self.repositories.len();
        Plan {
            repositories: self
                .repositories
                .into_values()
                .map(|marked| marked.plan)
                .filter(RepositoryPlan::changes_anything)
                .collect(),
            blobs,
            repositories_scanned,
        }
    }
}

/// Marks one repository. `reader` should have read its listing already.
async fn mark_repository(
    store: &Store,
    reader: &Reader,
    repository: RepositoryObjects,
    rules: Rules,
) -> anyhow::Result<Marked> {
    let mut tagged = BTreeSet::new();
    for tag in repository.tags.values() {
        if let Some(current) = &tag.current
            && let Some(digest) = reader.link(store, current).await?
        {
            tagged.insert(digest);
        }
    }
    // A tag may name a manifest that has no revision link (pushed while
    // the manifest was deleted by digest): the registry still serves it,
    // so it is read, and kept, like any other.
    let unlinked = tagged
        .iter()
        .filter(|digest| !repository.revisions.contains_key(*digest));
    let mut parsed: BTreeMap<Digest, ParsedManifest> = BTreeMap::new();
    for digest in repository.revisions.keys().chain(unlinked) {
        let manifest = reader.manifest(store, digest).await.with_context(|| {
            format!(
                "repository {}: nothing is collected while a manifest it holds cannot be read \
                 (`gc-worker fsck` lists them; restore its bytes, or delete the manifest by \
                 digest through the API)",
                repository.name
            )
        })?;
        if let Some(manifest) = manifest {
            parsed.insert(digest.clone(), manifest);
        }
    }
    let settled = repository
        .revisions
        .keys()
        .chain(&tagged)
        .all(|digest| parsed.contains_key(digest));
    let mut kept = keep(&repository, &tagged, &parsed, rules);
    let unread: Vec<Digest> = kept
        .iter()
        .filter(|digest| !parsed.contains_key(*digest))
        .cloned()
        .collect();
    let mut blobs_used: BTreeSet<Digest> = BTreeSet::new();
    if !unread.is_empty() {
        // What a kept manifest whose bytes are gone references (blobs,
        // child manifests, a subject) is unknown: everything the repository
        // holds stays, so the image is whole again once they are restored.
        tracing::warn!(repository = %repository.name, manifests = ?unread, "kept manifests have no bytes; everything this repository holds is kept (`gc-worker fsck` lists what is missing)");
        kept.extend(repository.revisions.keys().cloned());
        blobs_used.extend(repository.layers.keys().cloned());
    }
    for digest in &kept {
        if let Some(manifest) = parsed.get(digest) {
            // Foreign layers need not be pushed, but stay when they were.
            let blobs = manifest.blobs.iter().chain(&manifest.foreign);
            blobs_used.extend(blobs.map(|blob| blob.digest.clone()));
        }
    }
    let mut keeps: Vec<Digest> = recently_linked(&repository, &rules);
    keeps.extend(kept.iter().cloned());
    keeps.extend(blobs_used.iter().cloned());
    let referrers_to_index = unindexed_referrers(&repository, &kept, &parsed)?;
    let unsettled = (!settled).then(|| repository.clone());
    let mut plan = repository_plan(repository, &kept, &blobs_used, rules);
    plan.referrers_to_index = referrers_to_index;
    Ok(Marked {
        plan,
        keeps,
        unsettled,
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

/// Digests that a young layer or revision link of the repository names.
fn recently_linked(repository: &RepositoryObjects, rules: &Rules) -> Vec<Digest> {
    repository
        .layers
        .iter()
        .chain(&repository.revisions)
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
    // A referrer is known by its subject field, or by its referrers entry
    // when its bytes cannot say: (subject, referrer).
    let referring: Vec<(Digest, Digest)> = parsed
        .iter()
        .filter_map(|(digest, manifest)| {
            Some((manifest.subject.as_ref()?.digest.clone(), digest.clone()))
        })
        .chain(repository.referrers.keys().cloned())
        .filter(|(_, referrer)| repository.revisions.contains_key(referrer))
        .collect();
    let mut kept = BTreeSet::new();
    loop {
        while let Some(digest) = pending.pop() {
            let held = repository.revisions.contains_key(&digest) || tagged.contains(&digest);
            if !held || !kept.insert(digest.clone()) {
                continue;
            }
            if let Some(manifest) = parsed.get(&digest) {
                // Children, the subject, and manifests a kept manifest uses
                // as a blob (served through their revision link).
                pending.extend(manifest.digests().cloned());
            }
        }
        let referrers: Vec<Digest> = referring
            .iter()
            .filter(|(subject, referrer)| kept.contains(subject) && !kept.contains(referrer))
            .map(|(_, referrer)| referrer.clone())
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
    use std::time::Duration;

    use registry_core::Tag;
    use test_support::Image;

    use super::*;

    /// Nothing is young: every object was written before the cutoff.
    fn rules() -> Rules {
        let cutoff = SystemTime::now() + Duration::from_secs(3600);
        Rules {
            delete_untagged: true,
            grace_cutoff: cutoff,
            upload_cutoff: cutoff,
        }
    }

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("a repository name")
    }

    fn tag(text: &str) -> Tag {
        text.parse().expect("a tag")
    }

    /// What a plan takes out: each repository's objects, and the blobs.
    fn taken_out(plan: &Plan) -> (BTreeMap<String, Vec<Path>>, BTreeSet<Digest>) {
        let objects = plan
            .repositories
            .iter()
            .map(|repository| (repository.name.to_string(), repository.objects.clone()))
            .collect();
        let blobs = plan.blobs.iter().map(|blob| blob.digest.clone()).collect();
        (objects, blobs)
    }

    /// What a marking of the whole store takes out.
    async fn taken_out_of(store: &Store) -> (BTreeMap<String, Vec<Path>>, BTreeSet<Digest>) {
        let listed = store.scan_repositories().await.expect("listed");
        let marking = Marking::of(store, &Reader::default(), listed, rules())
            .await
            .expect("marked");
        let blobs = store.scan_blobs().await.expect("listed");
        taken_out(&marking.plan(blobs, rules()))
    }

    /// Marking again only the repositories written since a marking gives
    /// the plan a marking of the whole store would, including where a
    /// written repository now keeps what an unwritten one let go.
    #[tokio::test]
    async fn marking_only_what_was_written_again_plans_what_marking_all_would() {
        let store = Store::in_memory();
        let mut overwritten = Vec::new();
        for repository in ["a", "b", "c"] {
            for version in ["1", "2", "3"] {
                let image = Image::random(2, 64);
                image
                    .store_into(&store, &name(repository), Some(&tag(version)))
                    .await
                    .expect("stored");
                if version == "1" {
                    overwritten.push(image);
                }
            }
            Image::random(1, 64)
                .store_into(&store, &name(repository), Some(&tag("1")))
                .await
                .expect("stored");
        }
        let reader = Reader::default();
        let before = store.scan_repositories().await.expect("listed");
        let mut marking = Marking::of(&store, &reader, before, rules())
            .await
            .expect("marked");

        // b tags the image c let go, overwrites a tag of its own; d is new.
        let let_go = &overwritten[2];
        let_go
            .store_into(&store, &name("b"), Some(&tag("from-c")))
            .await
            .expect("stored");
        Image::random(1, 64)
            .store_into(&store, &name("b"), Some(&tag("2")))
            .await
            .expect("stored");
        Image::random(1, 64)
            .store_into(&store, &name("d"), Some(&tag("1")))
            .await
            .expect("stored");
        let written: BTreeSet<RepositoryName> = [name("b"), name("d")].into();
        marking
            .update(&store, &reader, &written, rules())
            .await
            .expect("marked again");

        let blobs = store.scan_blobs().await.expect("listed");
        let all = store.scan_repositories().await.expect("listed");
        let whole = Marking::of(&store, &Reader::default(), all, rules())
            .await
            .expect("marked");
        let updated = marking.plan(blobs.clone(), rules());
        assert_eq!(taken_out(&updated), taken_out(&whole.plan(blobs, rules())));
        let (_, blobs_gone) = taken_out(&updated);
        for blob in let_go.blobs().chain([&let_go.manifest]) {
            assert!(!blobs_gone.contains(&blob.digest), "b tags it now");
        }
        assert!(blobs_gone.contains(&overwritten[0].manifest.digest));
        assert_eq!(updated.repositories_scanned, 4);
    }

    /// Deletes the bytes of `manifest` from the store in `root`, and opens
    /// the store again: the writer's would still remember the manifest.
    async fn lose_manifest_bytes(root: &str, manifest: &Digest) -> Store {
        let store = Store::open(root).expect("store");
        let manifest_blob = store
            .scan_blobs()
            .await
            .expect("listed")
            .into_iter()
            .find(|blob| blob.digest == *manifest)
            .expect("the manifest's bytes");
        store
            .delete_objects(vec![manifest_blob.listed.path])
            .await
            .expect("deleted");
        Store::open(root).expect("store")
    }

    /// A repository whose tagged manifest could not be be read when it
    /// was marked is marked again even when nothing wrote to it: its bytes
    /// may have been pushed since (here as a blob of another repository),
    /// and what the manifest references must then stay.
    #[tokio::test]
    async fn a_repository_with_a_manifest_unread_is_marked_again() {
        let root = tempfile::tempdir().expect("temporary directory");
        let root = root.path().to_str().expect("UTF-8 path");
        let image = Image::random(2, 64);
        image
            .store_into(
                &Store::open(root).expect("store"),
                &name("a"),
                Some(&tag("1")),
            )
            .await
            .expect("stored");
        let store = lose_manifest_bytes(root, &image.manifest.digest).await;
        let reader = Reader::default();
        let before = store.scan_repositories().await.expect("listed");
        let mut marking = Marking::of(&store, &reader, before, rules())
            .await
            .expect("marked");

        store
            .put_small_blob(&name("b"), image.manifest.bytes.clone())
            .await
            .expect("pushed as a blob");
        let written: BTreeSet<RepositoryName> = [name("b")].into();
        marking
            .update(&store, &reader, &written, rules())
            .await
            .expect("marked again");
        let blobs = store.scan_blobs().await.expect("listed");
        let (_, blobs_gone) = taken_out(&marking.plan(blobs, rules()));
        for blob in image.blobs() {
            assert!(!blobs_gone.contains(&blob.digest), "a's tag references it");
        }
    }

    /// A kept manifest whose bytes are gone (a damaged store, a partial
    /// restore) cannot say what it uses: a tagged index's children and
    /// their blobs, and a tagged image's signature (known by its referrers
    /// entry), all stay while the rest of the store is still collected.
    #[tokio::test]
    async fn a_kept_manifest_without_bytes_keeps_everything_its_repository_holds() {
        let root = tempfile::tempdir().expect("temporary directory");
        let root = root.path().to_str().expect("UTF-8 path");
        let store = Store::open(root).expect("store");
        let index =
            test_support::Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
        let broken = name("team/broken");
        for image in &index.images {
            image
                .store_into(&store, &broken, None)
                .await
                .expect("stored");
        }
        store
            .put_manifest(
                &broken,
                &index.manifest.digest,
                index.manifest.bytes.clone(),
                Some(&tag("1")),
                None,
            )
            .await
            .expect("stored");
        let signed = Image::random(1, 64);
        signed
            .store_into(&store, &name("signed"), Some(&tag("1")))
            .await
            .expect("stored");
        let signature = Image::artifact("application/vnd.example.signature", &signed.manifest);
        signature
            .store_into(&store, &name("signed"), None)
            .await
            .expect("stored");
        let descriptor = signature.manifest.descriptor().to_string();
        store
            .add_referrer(
                &name("signed"),
                &signed.manifest.digest,
                &signature.manifest.digest,
                descriptor.into(),
            )
            .await
            .expect("indexed");
        let overwritten = Image::random(1, 64);
        for version in [&overwritten, &Image::random(1, 64)] {
            version
                .store_into(&store, &name("other"), Some(&tag("1")))
                .await
                .expect("stored");
        }
        lose_manifest_bytes(root, &index.manifest.digest).await;
        let store = lose_manifest_bytes(root, &signature.manifest.digest).await;

        let (objects, blobs_gone) = taken_out_of(&store).await;
        let needed = index.images.iter().chain([&signature]);
        for image in needed {
            for blob in image.blobs().chain([&image.manifest]) {
                assert!(
                    !blobs_gone.contains(&blob.digest),
                    "{} is needed",
                    blob.digest
                );
            }
        }
        for repository in ["team/broken", "signed"] {
            assert!(!objects.contains_key(repository), "{objects:?}");
        }
        assert!(
            blobs_gone.contains(&overwritten.manifest.digest),
            "the rest is collected"
        );
    }

    /// A tag pushed while its manifest was deleted by digest can be left
    /// naming a manifest with no revision link; the registry still serves
    /// it, so nothing it uses goes.
    #[tokio::test]
    async fn a_tag_whose_manifest_lost_its_revision_link_keeps_what_it_uses() {
        let store = Store::in_memory();
        let image = Image::random(2, 64);
        image
            .store_into(&store, &name("raced"), Some(&tag("new")))
            .await
            .expect("stored");
        let listed = store.scan_repositories().await.expect("listed");
        let revision = listed[0].revisions[&image.manifest.digest].path.clone();
        store.delete_objects(vec![revision]).await.expect("deleted");

        let (objects, blobs_gone) = taken_out_of(&store).await;
        for blob in image.blobs().chain([&image.manifest]) {
            assert!(!blobs_gone.contains(&blob.digest), "the tag serves it");
        }
        assert!(!objects.contains_key("raced"), "{objects:?}");
    }

    /// One manifest that is not a manifest stops the collection before
    /// its window, saying where it is and what to do.
    #[tokio::test]
    async fn an_unreadable_manifest_names_its_repository_and_the_way_out() {
        let store = Store::in_memory();
        let body = bytes::Bytes::from_static(b"not a manifest");
        let digest = Digest::sha256_of(&body);
        store
            .put_manifest(&name("team/app"), &digest, body, None, None)
            .await
            .expect("stored");
        let listed = store.scan_repositories().await.expect("listed");
        let error = Marking::of(&store, &Reader::default(), listed, rules())
            .await
            .expect_err("nothing to collect from");
        let message = format!("{error:#}");
        for expected in ["team/app", digest.to_string().as_str(), "gc-worker fsck"] {
            assert!(message.contains(expected), "{expected} in: {message}");
        }
    }

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
            .put_manifest(&name, &digest, body, None, None)
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
