//! Small content kept in memory by digest: manifests, and blobs of at most
//! [`SMALL_BLOB`] bytes (image configs, small layers), which are most of
//! the requests of a pull. A digest names its content for ever, so an entry
//! can never be stale; whether a repository still has the content is always
//! asked of the store. Bounded by bytes.

use std::sync::Arc;

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use registry_core::Digest;

/// Bytes kept at most.
const CAPACITY_BYTES: u64 = 16 << 20;
/// The largest blob served from memory.
pub const SMALL_BLOB: u64 = 64 << 10;
/// A guess of how many manifests fit, for sizing the table.
const EXPECTED_ENTRIES: usize = 4096;

#[derive(Clone, Debug)]
struct ByteWeight;

impl Weighter<Digest, Bytes> for ByteWeight {
    fn weight(&self, _digest: &Digest, bytes: &Bytes) -> u64 {
        bytes.len() as u64 + 128
    }
}

/// A shared, bounded map from digest to small content.
#[derive(Clone)]
pub(crate) struct ManifestCache(Arc<Cache<Digest, Bytes, ByteWeight>>);

impl Default for ManifestCache {
    fn default() -> Self {
        ManifestCache(Arc::new(Cache::with_weighter(
            EXPECTED_ENTRIES,
            CAPACITY_BYTES,
            ByteWeight,
        )))
    }
}

impl std::fmt::Debug for ManifestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestCache")
            .field("entries", &self.0.len())
            .field("bytes", &self.0.weight())
            .finish()
    }
}

impl ManifestCache {
    pub(crate) fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.0.get(digest)
    }

    pub(crate) fn insert(&self, digest: &Digest, bytes: &Bytes) {
        self.0.insert(digest.clone(), bytes.clone());
    }
}
