//! The store checker (`gc-worker fsck`): what a client pulling from the
//! registry would find broken. Every tag resolves to a manifest of its
//! repository; every manifest's bytes exist, and so do its blobs (with a
//! link that lets the repository serve them, and the size the manifest
//! claims) and its children; no referrers entry names a manifest that is
//! gone. A subject that is absent is counted, not a problem: the spec lets
//! a referrer be pushed before its subject. A damaged object (a link that
//! is not a digest, bytes that are not a manifest) is listed and the check
//! goes on; a store that cannot be read stops it. Read only.

use std::collections::BTreeMap;

use registry_core::Digest;
use registry_storage::{RepositoryObjects, Store};

use crate::plan::{Reader, is_damage};

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
    /// Manifests whose subject is not in their repository.
    pub absent_subjects: usize,
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
            "checked {} repositories, {} tags, {} manifests, {} blobs: {} problems, {} dangling layer links, {} absent subjects\n",
            self.repositories,
            self.tags,
            self.manifests,
            self.blobs,
            self.problems.len(),
            self.dangling_layer_links,
            self.absent_subjects
        ));
        text
    }
}

/// Reads the whole store and reports what is broken.
pub async fn check(store: &Store) -> anyhow::Result<Findings> {
    let repositories = store.scan_repositories().await?;
    let blobs: BTreeMap<Digest, u64> = store
        .scan_blobs()
        .await?
        .into_iter()
        .map(|blob| (blob.digest, blob.listed.size))
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
    blobs: &BTreeMap<Digest, u64>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let name = &repository.name;
    let mut problem = |text: String| findings.problems.push(format!("{name}: {text}"));
    let is_manifest = |digest: &Digest| repository.revisions.contains_key(digest);
    let mut absent_subjects = 0;
    for (tag, objects) in &repository.tags {
        findings.tags += 1;
        let Some(current) = &objects.current else {
            problem(format!(
                "tag {tag} is listed but has no link file (a push or delete of it was cut off)"
            ));
            continue;
        };
        match reader.link(store, current).await {
            Err(error) if is_damage(&error) => problem(format!("tag {tag}: {error:#}")),
            Err(error) => return Err(error),
            Ok(None) => problem(format!("tag {tag} has no readable link")),
            Ok(Some(digest)) if !is_manifest(&digest) => problem(format!(
                "tag {tag} points at {digest}, which is not a manifest of the repository"
            )),
            Ok(Some(_)) => {}
        }
    }
    for digest in repository.revisions.keys() {
        findings.manifests += 1;
        if !blobs.contains_key(digest) {
            problem(format!(
                "manifest {digest} has a revision link but no bytes"
            ));
            continue;
        }
        let manifest = match reader.manifest(store, digest).await {
            Ok(Some(manifest)) => manifest,
            Ok(None) => {
                problem(format!("manifest {digest} has no bytes"));
                continue;
            }
            Err(error) if is_damage(&error) => {
                problem(format!("{error:#}"));
                continue;
            }
            Err(error) => return Err(error),
        };
        let blobs_named = manifest.blobs.iter().map(|blob| (blob, false));
        let children = manifest.manifests.iter().map(|child| (child, true));
        for (named, must_be_manifest) in blobs_named.chain(children) {
            let (target, field) = (&named.digest, &named.field);
            let linked = is_manifest(target)
                || (!must_be_manifest && repository.layers.contains_key(target));
            match blobs.get(target) {
                None => problem(format!(
                    "manifest {digest} names {target} ({field}), which is gone"
                )),
                Some(_) if !linked => problem(format!(
                    "manifest {digest} names {target} ({field}), which the repository does not link"
                )),
                Some(size) if named.size.is_some_and(|claimed| claimed != *size) => {
                    problem(format!(
                        "manifest {digest} says {target} ({field}) has {} bytes, but it holds {size}",
                        named.size.unwrap_or_default()
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(subject) = &manifest.subject
            && !is_manifest(&subject.digest)
        {
            absent_subjects += 1;
        }
    }
    for (subject, referrer) in repository.referrers.keys() {
        if !is_manifest(referrer) {
            problem(format!(
                "the referrers of {subject} list {referrer}, which is not a manifest of the repository"
            ));
        }
    }
    findings.absent_subjects += absent_subjects;
    findings.dangling_layer_links += repository
        .layers
        .keys()
        .filter(|digest| !blobs.contains_key(*digest))
        .count();
    Ok(())
}
