//! `GET /api/v1/repositories/{name}/tags`: a repository's tags with what
//! each points at, sorted by name, push date, creation date or size, and
//! the signatures, SBOMs and attestations attached to them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use registry_core::RepositoryName;
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::params::{self, Paging, Params};
use crate::AppState;
use crate::inspect::{PlatformSummary, Summary, Viewer, rfc3339};
use crate::model::{AttachmentKind, CosignTag, Kind};
use crate::registry::{ManifestHead, UpstreamError};

/// Manifests summarised at once for one page.
const SUMMARIES_AT_ONCE: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Name,
    Pushed,
    Created,
    Size,
}

#[derive(Debug, Serialize)]
pub struct TagPage {
    repository: String,
    total: usize,
    #[serde(flatten)]
    paging: Paging,
    tags: Vec<TagRow>,
}

#[derive(Debug, Serialize)]
struct TagRow {
    name: String,
    digest: Option<String>,
    media_type: Option<String>,
    kind: Option<Kind>,
    size: Option<u64>,
    created: Option<String>,
    pushed: Option<String>,
    platforms: Vec<PlatformSummary>,
    attachment: Option<Attachment>,
    attachments: Vec<AttachedTag>,
}

/// What a cosign-style tag is attached to.
#[derive(Debug, Serialize)]
struct Attachment {
    kind: AttachmentKind,
    subject_digest: String,
    subject_tags: Vec<String>,
}

/// A cosign-style tag attached to a digest.
#[derive(Clone, Debug, Serialize)]
pub struct AttachedTag {
    pub kind: AttachmentKind,
    pub tag: String,
}

pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    repository: &RepositoryName,
    params: &Params,
) -> ApiResult<TagPage> {
    let paging = Paging::from_params(params)?;
    let (sort, descending) = sort_order(params)?;
    let search = params::search(params);
    let name = repository.as_str();
    let all = app.inspector.tags(viewer, name).await?;
    let mut found: Vec<String> = all
        .iter()
        .filter(|tag| params::matches(tag, &search))
        .cloned()
        .collect();
    let total = found.len();
    if sort == SortKey::Name {
        if descending {
            found.reverse();
        }
        found = paging.slice(&found).to_vec();
    }
    let heads: HashMap<String, ManifestHead> = app
        .inspector
        .heads(viewer, name, &found)
        .await?
        .into_iter()
        .collect();
    if sort == SortKey::Pushed {
        sort_by(&mut found, descending, |tag| {
            heads.get(tag).and_then(|head| head.pushed)
        });
        found = paging.slice(&found).to_vec();
    }
    let summaries = summaries(
        app,
        viewer,
        name,
        found.iter().filter_map(|tag| heads.get(tag)),
    )
    .await?;
    let summary_of = |tag: &String| heads.get(tag).and_then(|head| summaries.get(&head.digest));
    match sort {
        SortKey::Created => {
            sort_by(&mut found, descending, |tag| {
                summary_of(tag).and_then(|s| s.created.clone())
            });
        }
        SortKey::Size => sort_by(&mut found, descending, |tag| {
            summary_of(tag).and_then(|s| s.size)
        }),
        SortKey::Name | SortKey::Pushed => {}
    }
    if matches!(sort, SortKey::Created | SortKey::Size) {
        found = paging.slice(&found).to_vec();
    }
    let attached = attached_tags(&all);
    let subjects = subject_tags(app, viewer, name, &all, &found).await?;
    let tags = found
        .iter()
        .map(|tag| {
            let head = heads.get(tag);
            let summary = summary_of(tag);
            TagRow {
                name: tag.clone(),
                digest: head.map(|head| head.digest.clone()),
                media_type: head.map(|head| head.media_type.clone()),
                kind: summary.map(|summary| summary.kind),
                size: summary.and_then(|summary| summary.size),
                created: summary.and_then(|summary| summary.created.clone()),
                pushed: head.and_then(|head| head.pushed).map(rfc3339),
                platforms: summary.map(|s| s.platforms.clone()).unwrap_or_default(),
                attachment: CosignTag::parse(tag).map(|cosign| Attachment {
                    kind: cosign.kind,
                    subject_tags: subjects
                        .get(&cosign.subject_digest)
                        .cloned()
                        .unwrap_or_default(),
                    subject_digest: cosign.subject_digest,
                }),
                attachments: head
                    .and_then(|head| attached.get(&head.digest))
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect();
    Ok(TagPage {
        repository: name.to_owned(),
        total,
        paging,
        tags,
    })
}

fn sort_order(params: &Params) -> Result<(SortKey, bool), ApiError> {
    let sort = match params.get("sort").map(String::as_str) {
        None | Some("" | "name") => SortKey::Name,
        Some("pushed") => SortKey::Pushed,
        Some("created") => SortKey::Created,
        Some("size") => SortKey::Size,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort={other:?}: give name, pushed, created or size"
            )));
        }
    };
    let descending = match params.get("order").map(String::as_str) {
        None | Some("") => sort != SortKey::Name,
        Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order={other:?}: give asc or desc"
            )));
        }
    };
    Ok((sort, descending))
}

/// Sorts by `key`, entries without one last, ties by name.
fn sort_by<K: Ord>(tags: &mut [String], descending: bool, key: impl Fn(&String) -> Option<K>) {
    tags.sort_by_cached_key(|tag| {
        (
            key(tag).is_none(),
            KeyOrder(key(tag), descending),
            tag.clone(),
        )
    });
}

/// A key that sorts ascending or descending.
#[derive(PartialEq, Eq)]
struct KeyOrder<K>(Option<K>, bool);

impl<K: Ord> PartialOrd for KeyOrder<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for KeyOrder<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        let order = self.0.cmp(&other.0);
        if self.1 { order.reverse() } else { order }
    }
}

/// The summary of each distinct manifest the heads point at; a manifest
/// deleted meanwhile is left out.
pub async fn summaries<'a>(
    app: &AppState,
    viewer: &Viewer,
    repository: &str,
    heads: impl Iterator<Item = &'a ManifestHead>,
) -> Result<HashMap<String, Summary>, UpstreamError> {
    let mut digests: Vec<String> = heads.map(|head| head.digest.clone()).collect();
    digests.sort_unstable();
    digests.dedup();
    let found: Vec<Result<Option<(String, Summary)>, UpstreamError>> = futures::stream::iter(
        digests,
    )
    .map(|digest| async move {
        match app.inspector.summary(viewer, repository, &digest).await {
            Ok(summary) => Ok(Some((digest, summary))),
            Err(UpstreamError::NotFound(_)) => Ok(None),
            // One manifest the UI cannot read shows without its
            // details; it does not fail the page.
            Err(error @ UpstreamError::Unexpected { .. }) => {
                tracing::warn!(%error, repository, %digest, "a manifest the UI cannot summarise");
                Ok(None)
            }
            Err(other) => Err(other),
        }
    })
    .buffer_unordered(SUMMARIES_AT_ONCE)
    .collect()
    .await;
    found.into_iter().filter_map(Result::transpose).collect()
}

/// The cosign-style tags among `tags`, by the digest they are attached to.
pub fn attached_tags(tags: &[String]) -> HashMap<String, Vec<AttachedTag>> {
    let mut attached: HashMap<String, Vec<AttachedTag>> = HashMap::new();
    for tag in tags {
        if let Some(cosign) = CosignTag::parse(tag) {
            attached
                .entry(cosign.subject_digest)
                .or_default()
                .push(AttachedTag {
                    kind: cosign.kind,
                    tag: tag.clone(),
                });
        }
    }
    attached
}

/// For the cosign-style tags among `shown`, the tags of the digests they
/// are attached to (this reads what every tag points at, so only when
/// needed).
async fn subject_tags(
    app: &AppState,
    viewer: &Viewer,
    repository: &str,
    all: &[String],
    shown: &[String],
) -> Result<BTreeMap<String, Vec<String>>, UpstreamError> {
    if !shown.iter().any(|tag| CosignTag::parse(tag).is_some()) {
        return Ok(BTreeMap::new());
    }
    tags_by_digest(app, viewer, repository, all).await
}

/// Every tag of the repository, grouped by the digest it points at.
pub async fn tags_by_digest(
    app: &AppState,
    viewer: &Viewer,
    repository: &str,
    all: &[String],
) -> Result<BTreeMap<String, Vec<String>>, UpstreamError> {
    let mut by_digest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tag, head) in app.inspector.heads(viewer, repository, all).await? {
        by_digest.entry(head.digest).or_default().push(tag);
    }
    Ok(by_digest)
}
