//! The repository listing: a walk of `repositories/` that finds every
//! directory holding a `_manifests` directory, as Distribution's catalog
//! does (and, for the collector, every directory holding anything of a
//! repository).

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::path::Path;
use registry_core::RepositoryName;

use crate::{StorageError, Store};

/// Directory listings in flight at once while walking.
const WALK_CONCURRENCY: usize = 16;

impl Store {
    /// Every repository in the store, in lexical order: as Distribution's
    /// catalog, those with a `_manifests` directory.
    pub async fn repositories(&self) -> Result<Vec<RepositoryName>, StorageError> {
        let mut found: Vec<RepositoryName> = self
            .repository_directories()
            .await?
            .into_iter()
            .filter(|(_, own)| {
                own.iter()
                    .any(|child| child.filename() == Some("_manifests"))
            })
            .map(|(name, _)| name)
            .collect();
        found.sort();
        Ok(found)
    }

    /// Every directory that holds something of a repository (a child named
    /// `_...`), with those children: repositories with manifests, and
    /// those with only uploads or layer links too.
    pub(crate) async fn repository_directories(
        &self,
    ) -> Result<Vec<(RepositoryName, Vec<Path>)>, StorageError> {
        let root = self.layout.repositories();
        let root_len = root.as_ref().len() + 1;
        let mut found = Vec::new();
        let mut pending = vec![root];
        let mut listings = FuturesUnordered::new();
        loop {
            while listings.len() < WALK_CONCURRENCY
                && let Some(directory) = pending.pop()
            {
                listings.push(self.list_directories(directory));
            }
            let Some(result) = listings.next().await else {
                break;
            };
            let (directory, children) = result?;
            let (own, nested): (Vec<Path>, Vec<Path>) = children
                .into_iter()
                .partition(|child| child.filename().is_some_and(|name| name.starts_with('_')));
            pending.extend(nested);
            if own.is_empty() {
                continue;
            }
            let name = &directory.as_ref()[root_len..];
            match name.parse() {
                Ok(name) => found.push((name, own)),
                Err(error) => tracing::warn!(%name, %error, "skipping a badly named repository"),
            }
        }
        Ok(found)
    }

    async fn list_directories(&self, directory: Path) -> Result<(Path, Vec<Path>), StorageError> {
        let listing = self.objects.list_with_delimiter(Some(&directory)).await?;
        Ok((directory, listing.common_prefixes))
    }
}
