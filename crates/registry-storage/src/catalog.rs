//! The repository listing: a walk of `repositories/` that finds every
//! directory holding a `_manifests` directory, as Distribution's catalog does.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::path::Path;
use registry_core::RepositoryName;

use crate::{StorageError, Store};

/// Directory listings in flight at once while walking.
const WALK_CONCURRENCY: usize = 16;

impl Store {
    /// Every repository in the store, in lexical order.
    pub async fn repositories(&self) -> Result<Vec<RepositoryName>, StorageError> {
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
            for child in children {
                match child.filename() {
                    Some("_manifests") => {
                        let name = &directory.as_ref()[root_len..];
                        match name.parse() {
                            Ok(name) => found.push(name),
                            Err(error) => {
                                tracing::warn!(%name, %error, "skipping a badly named repository")
                            }
                        }
                    }
                    Some(other) if other.starts_with('_') => {}
                    _ => pending.push(child),
                }
            }
        }
        found.sort();
        Ok(found)
    }

    async fn list_directories(&self, directory: Path) -> Result<(Path, Vec<Path>), StorageError> {
        let listing = self.objects.list_with_delimiter(Some(&directory)).await?;
        Ok((directory, listing.common_prefixes))
    }
}
