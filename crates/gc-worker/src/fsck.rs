//! The store checker (`gc-worker fsck`): what a client pulling from the
//! registry would find broken. Every tag resolves to a manifest of its
//! repository; every manifest's bytes exist, and so do its blobs (with a
//! link that lets the repository serve them), its children and its
//! subject; no referrers entry names a manifest that is gone. Read only.

use std::collections::BTreeSet;

use registry_core::Digest;
use registry_storage::{RepositoryObjects, Store};

use crate::plan::Reader;

/// What the checker found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Findings {
    pub repositories: usize,
    pub tags: usize,
    pub manifests: usize,
    pub blobs: usize,
    /// Layer links whose blob is gone: harmless (the blob answers 404, as
    /// it would unlinked), but a sign of a collector that left them.
    pub dangling_layer_links: usize,
    /// What a pull would find broken, one line each.
    pub problems: Vec<String>,
}

impl Findings {
    /// One line per problem, then a summary, for people.
    pub fn describe(&self) -> String {
        let mut text: String = self
            .problems
            .iter()
            .map(|problem| format!("{problem}\n"))
            .collect();
        text.push_str(&format!(
            "checked {} repositories, {} tags, {} manifests, {} blobs: {} problems, {} dangling layer links\n",
            self.repositories,
            self.tags,
            self.manifests,
            self.blobs,
            self.problems.len(),
            self.dangling_layer_links
        ));
        text
    }
}

/// Reads the whole store and reports what is broken.
pub async fn check(store: &Store) -> anyhow::Result<Findings> {
    let repositories = store.scan_repositories().await?;
    let blobs: BTreeSet<Digest> = store
        .scan_blobs()
        .await?
        .into_iter()
        .map(|blob| blob.digest)
        .collect();
    let reader = Reader::default();
    reader.read_all(store, &repositories).await?;
    let mut findings = Findings {
        repositories: repositories.len(),
        blobs: blobs.len(),
        ..Findings::default()
    };
    for repository in &repositories {
        check_repository(store, &reader, repository, &blobs, &mut findings).await?;
    }
    Ok(findings)
}

async fn check_repository(
    store: &Store,
    reader: &Reader,
    repository: &RepositoryObjects,
    blobs: &BTreeSet<Digest>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let name = &repository.name;
    let mut problem = |text: String| findings.problems.push(format!("{name}: {text}"));
    let is_manifest = |digest: &Digest| repository.revisions.contains_key(digest);
    for (tag, objects) in &repository.tags {
        let Some(current) = &objects.current else {
            continue;
        };
        findings.tags += 1;
        match reader.link(store, current).await? {
            None => problem(format!("tag {tag} has no readable link")),
            Some(digest) if !is_manifest(&digest) => problem(format!(
                "tag {tag} points at {digest}, which is not a manifest of the repository"
            )),
            Some(_) => {}
        }
    }
    for digest in repository.revisions.keys() {
        findings.manifests += 1;
        if !blobs.contains(digest) {
            problem(format!(
                "manifest {digest} has a revision link but no bytes"
            ));
            continue;
        }
        let Some(manifest) = reader.manifest(store, digest).await? else {
            problem(format!("manifest {digest} cannot be read"));
            continue;
        };
        for blob in &manifest.blobs {
            let target = &blob.digest;
            if !blobs.contains(target) {
                problem(format!(
                    "manifest {digest} names {target} ({}), which is gone",
                    blob.field
                ));
            } else if !repository.layers.contains_key(target) && !is_manifest(target) {
                problem(format!(
                    "manifest {digest} names {target} ({}), which the repository does not link",
                    blob.field
                ));
            }
        }
        for child in manifest.manifests.iter().chain(&manifest.subject) {
            if !is_manifest(&child.digest) || !blobs.contains(&child.digest) {
                problem(format!(
                    "manifest {digest} names {} ({}), which is not a manifest of the repository",
                    child.digest, child.field
                ));
            }
        }
    }
    for (subject, referrer) in repository.referrers.keys() {
        if !is_manifest(referrer) {
            problem(format!(
                "the referrers of {subject} list {referrer}, which is not a manifest of the repository"
            ));
        }
    }
    findings.dangling_layer_links += repository
        .layers
        .keys()
        .filter(|digest| !blobs.contains(*digest))
        .count();
    Ok(())
}
