//! Storage errors: what a caller can act on (not found, a bad upload) apart
//! from backend failures, which are logged and answered as internal errors.

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
