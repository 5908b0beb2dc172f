//! One writer at a time per repository for manifests and tags, within one
//! replica. A manifest write is several objects (bytes, revision link,
//! referrers entry, tag links), and a delete by digest reads the tags
//! before it removes them: run side by side, a tag push and a delete of
//! its manifest could leave a tag naming a manifest the repository no
//! longer has, and a tag moved to another manifest could be deleted with
//! the manifest it left. Repositories share a fixed set of locks, chosen
//! by a hash of the name, so the set never grows; two repositories that
//! share one only wait for each other's few small writes.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use registry_core::RepositoryName;
use tokio::sync::{Mutex, MutexGuard};

/// Locks in the set: enough that repositories pushed at once rarely share.
const LOCKS: usize = 256;

#[derive(Clone, Debug)]
pub(crate) struct RepositoryLocks {
    locks: Arc<[Mutex<()>]>,
    hasher: RandomState,
}

impl Default for RepositoryLocks {
    fn default() -> Self {
        RepositoryLocks {
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl RepositoryLocks {
    /// Waits until this replica writes nothing else to the manifests and
    /// tags of `name`, and holds that until the guard is dropped.
    pub(crate) async fn lock(&self, name: &RepositoryName) -> MutexGuard<'_, ()> {
        let slot = self.hasher.hash_one(name.as_str()) as usize % self.locks.len();
        self.locks[slot].lock().await
    }
}
