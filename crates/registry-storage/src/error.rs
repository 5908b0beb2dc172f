//! Storage errors: what a caller can act on (not found, a bad upload) apart
//! from backend failures, which are logged and answered as internal errors,
//! and the two backend failures an operator must tell apart from a bug: a
//! full store, and a store that does not answer.

use registry_core::Digest;

/// A failure reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("object {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("object store: {0}")]
    Backend(#[from] object_store::Error),
    /// The client's request body could not be read (the client's fault).
    #[error("reading the request body: {0}")]
    Body(std::io::Error),
    /// A file of the store could not be read or written (the server's).
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
    /// A failure of the hashing that several requests waited on.
    #[error("hashing the upload: {0}")]
    Hashing(std::sync::Arc<UploadError>),
}

impl StorageError {
    pub(crate) fn from_backend(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound,
            other => StorageError::Backend(other),
        }
    }

    /// The store has no room left: the filesystem is full, or a quota is
    /// used up.
    pub fn is_store_full(&self) -> bool {
        match self {
            StorageError::Hashing(upload) => {
                upload_storage_error(upload).is_some_and(Self::is_store_full)
            }
            other => sources(other).any(|source| {
                source.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    matches!(
                        io.kind(),
                        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                    )
                })
            }),
        }
    }

    /// The store did not answer usefully: a remote object store could not
    /// be reached, timed out, or answered with errors past its retries.
    pub fn is_store_unavailable(&self) -> bool {
        match self {
            StorageError::Hashing(upload) => {
                upload_storage_error(upload).is_some_and(Self::is_store_unavailable)
            }
            StorageError::Backend(object_store::Error::Generic { store, .. })
                if REMOTE_STORES.contains(store) =>
            {
                true
            }
            other => sources(other).any(|source| source.is::<object_store::client::HttpError>()),
        }
    }
}

/// The names `object_store` gives the backends reached over the network.
const REMOTE_STORES: &[&str] = &["S3"];

fn upload_storage_error(upload: &UploadError) -> Option<&StorageError> {
    match upload {
        UploadError::Storage(storage) => Some(storage),
        _ => None,
    }
}

/// `error` and every error beneath it.
fn sources<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

/// A failure in a blob upload session, each with a distinct client answer.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload session not found")]
    Unknown,
    #[error("chunk starts at {requested} but the upload holds {current} bytes")]
    OutOfOrder { requested: u64, current: u64 },
    #[error("upload session holds overlapping chunks; start a new upload")]
    Inconsistent,
    #[error("another chunk of this upload is being written; retry when it has finished")]
    Busy,
    #[error("uploaded content has digest {computed}, not {expected}")]
    DigestMismatch { expected: Digest, computed: Digest },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<object_store::Error> for UploadError {
    fn from(error: object_store::Error) -> Self {
        UploadError::Storage(StorageError::from_backend(error))
    }
}

impl From<std::io::Error> for UploadError {
    fn from(error: std::io::Error) -> Self {
        UploadError::Storage(StorageError::Io(error))
    }
}
