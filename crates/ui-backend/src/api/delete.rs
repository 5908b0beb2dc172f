//! Deleting a tag or a manifest, and the preview before it: which other
//! tags share the digest, and what the next garbage collection could free.

use std::collections::{BTreeMap, BTreeSet};

use registry_core::{Digest, RepositoryName, Tag};
use serde::Serialize;

use super::error::ApiResult;
use super::tags::tags_by_digest;
use crate::AppState;
use crate::inspect::Viewer;
use crate::model::Kind;
use crate::registry::UpstreamError;

/// What is to be deleted.
#[derive(Debug)]
pub enum Doomed<'a> {
    Tag(&'a Tag),
    Manifest(&'a Digest),
}

#[derive(Debug, Serialize)]
pub struct Preview {
    repository: String,
    digest: String,
    deletes: &'static str,
    tag: Option<String>,
    other_tags: Vec<String>,
    /// Tags of indexes that list this manifest: deleting it breaks them.
    used_by: Vec<String>,
    children: Vec<String>,
    referrers: Vec<String>,
    manifest_size: u64,
    freeable: Vec<Freeable>,
    freeable_bytes: u64,
    upper_bound: bool,
}

#[derive(Clone, Debug, Serialize)]
struct Freeable {
    digest: String,
    size: u64,
    kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    deleted: &'static str,
    repository: String,
    reference: String,
}

pub async fn preview(
    app: &AppState,
    viewer: &Viewer,
    repository: &RepositoryName,
    doomed: Doomed<'_>,
) -> ApiResult<Preview> {
    let name = repository.as_str();
    let all_tags = app.inspector.tags(viewer, name).await?;
    let digest = match doomed {
        Doomed::Tag(tag) => app.inspector.head(viewer, name, tag.as_str()).await?.digest,
        Doomed::Manifest(digest) => {
            app.inspector
                .confirm_digest(viewer, name, &digest.to_string())
                .await?
                .digest
        }
    };
    let mut by_digest = tags_by_digest(app, viewer, name, &all_tags).await?;
    let mut other_tags = by_digest.remove(&digest).unwrap_or_default();
    if let Doomed::Tag(tag) = doomed {
        other_tags.retain(|other| other != tag.as_str());
    }
    let doc = app.inspector.manifest(viewer, name, &digest).await?;
    let children = doc
        .manifest
        .manifests
        .iter()
        .map(|child| child.digest.clone())
        .collect();
    let referrers = app
        .inspector
        .referrers(viewer, name, &digest)
        .await
        .or_else(absent_is_empty)?
        .iter()
        .map(|referrer| referrer.digest.clone())
        .collect();
    let manifest_stays = matches!(doomed, Doomed::Tag(_)) && !other_tags.is_empty();
    let mut freeable = BTreeMap::new();
    let mut used_by = Vec::new();
    if !manifest_stays {
        closure(app, viewer, name, &digest, true, &mut freeable).await?;
        let mut kept = BTreeMap::new();
        for (other, tags) in &by_digest {
            let mut held = BTreeMap::new();
            closure(app, viewer, name, other, false, &mut held).await?;
            if held.contains_key(&digest) {
                used_by.extend(tags.iter().cloned());
            }
            kept.append(&mut held);
        }
        freeable.retain(|digest, _| !kept.contains_key(digest));
    }
    let freeable: Vec<Freeable> = freeable.into_values().collect();
    Ok(Preview {
        repository: name.to_owned(),
        digest,
        deletes: match doomed {
            Doomed::Tag(_) => "tag",
            Doomed::Manifest(_) => "manifest",
        },
        tag: match doomed {
            Doomed::Tag(tag) => Some(tag.to_string()),
            Doomed::Manifest(_) => None,
        },
        other_tags,
        used_by,
        children,
        referrers,
        manifest_size: doc.size,
        freeable_bytes: freeable.iter().map(|blob| blob.size).sum(),
        freeable,
        upper_bound: true,
    })
}

pub async fn delete(
    app: &AppState,
    viewer: &Viewer,
    repository: &RepositoryName,
    doomed: Doomed<'_>,
) -> ApiResult<Deleted> {
    let name = repository.as_str();
    let (deleted, reference) = match doomed {
        Doomed::Tag(tag) => ("tag", tag.to_string()),
        Doomed::Manifest(digest) => ("manifest", digest.to_string()),
    };
    // The tags a manifest takes with it, to forget them below.
    let gone = match doomed {
        Doomed::Tag(tag) => vec![tag.to_string()],
        Doomed::Manifest(digest) => {
            let all_tags = app.inspector.tags(viewer, name).await?;
            tags_by_digest(app, viewer, name, &all_tags)
                .await?
                .remove(&digest.to_string())
                .unwrap_or_default()
        }
    };
    app.inspector
        .registry
        .delete_manifest(&viewer.user, name, &reference)
        .await?;
    for tag in &gone {
        app.inspector.forget_tag(viewer, name, tag);
    }
    if let Doomed::Manifest(digest) = doomed {
        app.inspector.forget_manifest(name, &digest.to_string());
    }
    tracing::info!(
        repository = name,
        reference,
        what = deleted,
        "deleted through the UI"
    );
    Ok(Deleted {
        deleted,
        repository: name.to_owned(),
        reference,
    })
}

/// Adds the blobs the manifest `digest` holds on to: itself, its config and
/// layers, an index's children, and (with `referrers`) the manifests that
/// refer to it, which the collector deletes with their subject.
async fn closure(
    app: &AppState,
    viewer: &Viewer,
    repository: &str,
    digest: &str,
    referrers: bool,
    into: &mut BTreeMap<String, Freeable>,
) -> Result<(), UpstreamError> {
    let mut pending = vec![digest.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(digest) = pending.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let doc = match app.inspector.manifest(viewer, repository, &digest).await {
            Ok(doc) => doc,
            Err(UpstreamError::NotFound(_)) => continue,
            // A manifest the UI cannot read (a store written by other
            // software) adds nothing it can name; the preview goes on.
            Err(error @ UpstreamError::Unexpected { .. }) => {
                tracing::warn!(%error, repository, %digest, "a manifest the preview cannot read");
                continue;
            }
            Err(other) => return Err(other),
        };
        let kind = doc.manifest.kind(&doc.media_type);
        add(into, &digest, doc.size, "manifest");
        if let Some(config) = &doc.manifest.config {
            add(into, &config.digest, config.size, "config");
        }
        for layer in &doc.manifest.layers {
            let what = if kind == Kind::Artifact {
                "artifact blob"
            } else {
                "layer"
            };
            add(into, &layer.digest, layer.size, what);
        }
        pending.extend(
            doc.manifest
                .manifests
                .iter()
                .map(|child| child.digest.clone()),
        );
        if referrers {
            let found = app
                .inspector
                .referrers(viewer, repository, &digest)
                .await
                .or_else(absent_is_empty)?;
            pending.extend(found.iter().map(|referrer| referrer.digest.clone()));
        }
    }
    Ok(())
}

fn add(into: &mut BTreeMap<String, Freeable>, digest: &str, size: u64, kind: &'static str) {
    into.entry(digest.to_owned()).or_insert(Freeable {
        digest: digest.to_owned(),
        size,
        kind,
    });
}

fn absent_is_empty<T: Default>(error: UpstreamError) -> Result<T, UpstreamError> {
    match error {
        UpstreamError::NotFound(_) => Ok(T::default()),
        other => Err(other),
    }
}
