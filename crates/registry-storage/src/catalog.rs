//! The repository listing: a walk of `repositories/` that finds every
//! directory holding a `_manifests` directory, as Distribution's catalog
//! does (and, for the collector, every directory holding anything of a
//! repository).
//!
//! The catalog walks in lexical order and only as far as asked: a page
//! after `last` lists the directories on the way to `last` and those of
//! the page, never the whole tree, so every page of a walk through 10,000
//! repositories costs about the same.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::path::Path;
use registry_core::RepositoryName;

use crate::{StorageError, Store};

/// Directory listings in flight at once while walking.
const WALK_CONCURRENCY: usize = 16;

/// A directory still to list, or a repository found, by the name it has
/// (or its repositories start with): a directory's name is below every
/// repository under it, so taking the smallest first yields repositories
/// in lexical order even where `a-b` sorts between `a` and `a/b`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    name: String,
    /// A repository sorts before the directory of the same name.
    is_directory: bool,
    path: Path,
}

/// The repositories after a name, in lexical order, listed as they are
/// asked for.
#[derive(Debug)]
pub struct RepositoryWalk<'a> {
    store: &'a Store,
    after: String,
    pending: BinaryHeap<Reverse<Pending>>,
}

impl RepositoryWalk<'_> {
    /// Up to `most` more repositories; fewer only at the end.
    pub async fn next_batch(&mut self, most: usize) -> Result<Vec<RepositoryName>, StorageError> {
        let mut found = Vec::new();
        while found.len() < most {
            let Some(Reverse(smallest)) = self.pending.peek() else {
                break;
            };
            if !smallest.is_directory {
                let Some(Reverse(repository)) = self.pending.pop() else {
                    break;
                };
                if repository.name > self.after {
                    match repository.name.parse() {
                        Ok(name) => found.push(name),
                        Err(error) => {
                            tracing::warn!(name = %repository.name, %error, "skipping a badly named repository")
                        }
                    }
                }
                continue;
            }
            self.expand_smallest_directories().await?;
        }
        Ok(found)
    }

    /// Lists the smallest directories still to list (as many at once as
    /// come before the next repository, at most [`WALK_CONCURRENCY`]).
    async fn expand_smallest_directories(&mut self) -> Result<(), StorageError> {
        let mut listings = FuturesUnordered::new();
        while listings.len() < WALK_CONCURRENCY
            && self
                .pending
                .peek()
                .is_some_and(|Reverse(next)| next.is_directory)
        {
            let Some(Reverse(directory)) = self.pending.pop() else {
                break;
            };
            let store = self.store;
            listings.push(async move {
                let children = store.child_directories(&directory.path).await?;
                Ok::<_, StorageError>((directory, children))
            });
        }
        while let Some(listed) = listings.next().await {
            let (directory, children) = listed?;
            for child in children {
                let Some(filename) = child.filename().map(str::to_owned) else {
                    continue;
                };
                if filename == "_manifests" && !directory.name.is_empty() {
                    self.pending.push(Reverse(Pending {
                        name: directory.name.clone(),
                        is_directory: false,
                        path: directory.path.clone(),
                    }));
                } else if !filename.starts_with('_') {
                    let name = if directory.name.is_empty() {
                        filename
                    } else {
                        format!("{}/{filename}", directory.name)
                    };
                    if !self.all_listed_before(&name) {
                        self.pending.push(Reverse(Pending {
                            name,
                            is_directory: true,
                            path: child,
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every repository under the directory `name` sorts at or
    /// before `after` (`~` sorts after every character a name may have).
    fn all_listed_before(&self, name: &str) -> bool {
        !self.after.is_empty() && format!("{name}/~") < self.after
    }
}

impl Store {
    /// The repositories that sort after `after` (all of them for `None`),
    /// in lexical order: as Distribution's catalog, those with a
    /// `_manifests` directory.
    pub fn walk_repositories(&self, after: Option<&str>) -> RepositoryWalk<'_> {
        let root = Pending {
            name: String::new(),
            is_directory: true,
            path: self.layout.repositories(),
        };
        RepositoryWalk {
            store: self,
            after: after.unwrap_or_default().to_owned(),
            pending: BinaryHeap::from([Reverse(root)]),
        }
    }

    /// Every repository in the store, in lexical order.
    pub async fn repositories(&self) -> Result<Vec<RepositoryName>, StorageError> {
        self.walk_repositories(None).next_batch(usize::MAX).await
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
        let children = self.child_directories(&directory).await?;
        Ok((directory, children))
    }
}
