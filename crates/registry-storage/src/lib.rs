//! The registry's storage layout over `object_store`, shared by registry-api
//! and gc-worker so the layout lives in one place.
//!
//! The layout is CNCF Distribution's (`registry:2`): a store either of them
//! wrote can be served by the other. What Berth adds (the referrers index)
//! lives under paths Distribution ignores.

mod blobs;
mod catalog;
mod collect;
mod directories;
mod error;
mod layout;
mod links;
mod local_read;
mod maintenance;
mod manifest_cache;
mod manifests;
mod open;
mod redirect;
mod referrers;
mod region_pool;
mod replicas;
mod repository_locks;
mod s3;
mod tag_lists;
mod upload;

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::ObjectStore;

pub use blobs::BlobRead;
pub use catalog::RepositoryWalk;
pub use collect::multipart::IncompleteUpload;
pub use collect::scan::{BlobObject, Listed, RepositoryObjects, TagObjects};
pub use collect::trash::Trash;
pub use error::{StorageError, UploadError};
pub use local_read::DEFAULT_PULL_MEMORY_MIB;
pub use maintenance::{LeaseRecord, now_unix_ms};
pub use manifest_cache::SMALL_BLOB;
pub use manifests::TaggedManifest;
pub use open::{OpenError, shown as shown_storage};
pub use redirect::RedirectError;
pub use replicas::AnnouncedReplica;
pub use upload::{UploadId, UploadStatus};

/// A stream of bytes coming in from a client.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The registry's view of one object store, rooted at a prefix.
#[derive(Clone, Debug)]
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    layout: layout::Layout,
    /// The directory behind `objects` when it is a local filesystem, where
    /// uploads append to one file instead of keeping one object per chunk.
    local_root: Option<std::path::PathBuf>,
    /// Manifest bytes by digest: content-addressed, so never stale.
    manifest_cache: manifest_cache::ManifestCache,
    /// Tag lists recently listed, for the pages after a walk's first.
    tag_lists: tag_lists::TagLists,
    /// One manifest or tag write at a time per repository.
    repository_writes: repository_locks::RepositoryLocks,
    /// Upload hashing still running after its chunk was answered.
    pending_hashes: upload::pending_hash::PendingHashes,
    /// Memory for upload bytes on their way to the hashing and the store.
    blocks: upload::block::BlockPool,
    /// Memory for pieces of local blobs on their way to a client.
    pieces: local_read::PiecePool,
    /// The same backend when it is S3, for what `ObjectStore` cannot do
    /// (multipart uploads: listing, aborting, copying parts on the store).
    s3: Option<Arc<s3::S3>>,
    /// How long presigned blob URLs live, when blob `GET`s are redirected
    /// to the store.
    redirect_expiry: Option<std::time::Duration>,
}

impl Store {
    /// A store over any `object_store` backend, with the registry tree under `root`.
    pub fn new(objects: Arc<dyn ObjectStore>, root: object_store::path::Path) -> Self {
        Store {
            objects,
            layout: layout::Layout::new(root),
            local_root: None,
            manifest_cache: manifest_cache::ManifestCache::default(),
            tag_lists: tag_lists::TagLists::default(),
            repository_writes: repository_locks::RepositoryLocks::default(),
            pending_hashes: upload::pending_hash::PendingHashes::default(),
            blocks: upload::block::BlockPool::default(),
            pieces: local_read::PiecePool::default(),
            s3: None,
            redirect_expiry: None,
        }
    }

    /// A fresh store that lives in memory, for tests.
    pub fn in_memory() -> Self {
        Store::new(
            Arc::new(object_store::memory::InMemory::new()),
            object_store::path::Path::default(),
        )
    }

    /// Checks that the backend answers, for health checks and start-up.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.objects
            .list_with_delimiter(Some(&self.layout.root()))
            .await?;
        Ok(())
    }
}
