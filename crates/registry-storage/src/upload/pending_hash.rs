//! Hashing that goes on after a chunk is answered. A `PATCH` is answered as
//! soon as its bytes are stored; their sha256 runs on, and the next chunk of
//! the same upload on this replica continues from that running hash instead
//! of waiting for it, so a chunked push is hashed as one stream, as fast as
//! a monolithic one.
//!
//! Each state is saved to the store once reached, in order, and then
//! forgotten here: this map holds only hashing still under way. Another
//! replica, or this one after a restart, resumes from the newest saved state
//! and hashes the bytes after it from the stored data.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::{BoxFuture, Shared};

use crate::upload::UploadId;
use crate::upload::hashing::HashOutcome;

/// The hash of an upload's first `end` bytes, being computed.
#[derive(Clone)]
pub(crate) struct PendingHash {
    pub(crate) end: u64,
    /// The hasher once it has seen byte `end - 1`.
    pub(crate) hasher: Shared<BoxFuture<'static, HashOutcome>>,
    /// Done once the state at `end` is saved, or saving it failed.
    pub(crate) saved: Shared<BoxFuture<'static, ()>>,
}

/// Hashing under way on this replica, by upload.
#[derive(Clone, Default)]
pub(crate) struct PendingHashes(Arc<Mutex<HashMap<UploadId, PendingHash>>>);

impl fmt::Debug for PendingHashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingHashes").finish_non_exhaustive()
    }
}

impl PendingHashes {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, PendingHash>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest hashing of upload `id` still under way.
    pub(crate) fn latest(&self, id: &UploadId) -> Option<PendingHash> {
        self.map().get(id).cloned()
    }

    pub(crate) fn insert(&self, id: UploadId, pending: PendingHash) {
        self.map().insert(id, pending);
    }

    /// Forgets the hashing of `id` ending at `end`, unless a later chunk
    /// has replaced it.
    pub(crate) fn forget(&self, id: &UploadId, end: u64) {
        let mut map = self.map();
        if map.get(id).is_some_and(|pending| pending.end == end) {
            map.remove(id);
        }
    }

    /// The saving of every hashing under way.
    pub(crate) fn all_saved(&self) -> Vec<Shared<BoxFuture<'static, ()>>> {
        self.map()
            .values()
            .map(|pending| pending.saved.clone())
            .collect()
    }

    /// Forgets whatever hashing of `id` is under way.
    pub(crate) fn take(&self, id: &UploadId) -> Option<PendingHash> {
        self.map().remove(id)
    }
}
