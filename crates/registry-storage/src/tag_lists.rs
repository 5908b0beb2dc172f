//! Tag lists kept for a few seconds for the pages after the first: a walk
//! of a 10,000-tag repository `n=100` at a time would otherwise read and
//! sort the whole tag directory for each of its 100 pages. The first page
//! of a walk always lists afresh; the pages after it read the list the
//! first page made (a walk sees one list, not a list that changes under
//! it) while it is at most [`REUSE_FOR`] old. This replica's own tag writes
//! forget the repository's list; another replica's show on the next first
//! page, or after [`REUSE_FOR`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use registry_core::{RepositoryName, Tag};

use crate::{StorageError, Store};

/// How long a listed tag list serves the pages after the first.
const REUSE_FOR: Duration = Duration::from_secs(10);
/// Bytes of tag lists kept at most.
const CAPACITY_BYTES: u64 = 8 << 20;

type Listed = (Instant, Arc<[Tag]>);

#[derive(Clone, Debug)]
struct ListWeight;

impl Weighter<RepositoryName, Listed> for ListWeight {
    fn weight(&self, name: &RepositoryName, (_, tags): &Listed) -> u64 {
        let tags: usize = tags.iter().map(|tag| tag.as_str().len() + 32).sum();
        (name.as_str().len() + 64 + tags) as u64
    }
}

/// The recently listed tag lists, by repository, and how many times a tag
/// changed here: a list read while a tag changed is not kept, so a listing
/// that raced a write cannot outlive the write's forgetting.
#[derive(Clone)]
pub(crate) struct TagLists {
    lists: Arc<Cache<RepositoryName, Listed, ListWeight>>,
    changes: Arc<AtomicU64>,
}

impl Default for TagLists {
    fn default() -> Self {
        TagLists {
            lists: Arc::new(Cache::with_weighter(256, CAPACITY_BYTES, ListWeight)),
            changes: Arc::default(),
        }
    }
}

impl std::fmt::Debug for TagLists {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TagLists")
            .field("repositories", &self.lists.len())
            .finish()
    }
}

impl TagLists {
    pub(crate) fn forget(&self, name: &RepositoryName) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.lists.remove(name);
    }
}

impl Store {
    /// The repository's tags in lexical order (`None`: no such repository).
    /// With `continuing` (a page after the first), the list a first page
    /// made at most [`REUSE_FOR`] ago, if there is one.
    pub async fn tag_list(
        &self,
        name: &RepositoryName,
        continuing: bool,
    ) -> Result<Option<Arc<[Tag]>>, StorageError> {
        if continuing
            && let Some((listed_at, tags)) = self.tag_lists.lists.get(name)
            && listed_at.elapsed() < REUSE_FOR
        {
            return Ok(Some(tags));
        }
        let changes_before = self.tag_lists.changes.load(Ordering::SeqCst);
        let Some(tags) = self.tags(name).await? else {
            return Ok(None);
        };
        let tags: Arc<[Tag]> = tags.into();
        if self.tag_lists.changes.load(Ordering::SeqCst) == changes_before {
            self.tag_lists
                .lists
                .insert(name.clone(), (Instant::now(), tags.clone()));
        }
        Ok(Some(tags))
    }
}
