//! Blobs: content-addressed data shared by all repositories, and the
//! per-repository links that make a blob visible in a repository.

use std::ops::Range;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStoreExt};
use registry_core::{Digest, DigestHasher, RepositoryName};

use crate::upload::hashing::{copy_hashed, finish_hashing, shared_error};
use crate::upload::writer::ObjectWriter;
use crate::{ByteStream, StorageError, Store, UploadError};

/// An open blob: its total size, the byte range being sent, and the bytes.
pub struct BlobRead {
    pub size: u64,
    pub range: Range<u64>,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The size of a blob in the global blob store, if it is there.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match self.objects.head(&self.layout.blob_data(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// The size of a blob if the repository links it, as a layer or config
    /// (`_layers`) or as a manifest (`_manifests/revisions`).
    pub async fn repository_blob_size(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StorageError> {
        let linked = self.exists(&self.layout.layer_link(name, digest)).await?
            || self
                .exists(&self.layout.revision_link(name, digest))
                .await?;
        if !linked {
            return Ok(None);
        }
        self.blob_size(digest).await
    }

    /// A blob of at most [`SMALL_BLOB`](crate::SMALL_BLOB) bytes, whole,
    /// from memory when it was read before; `None` for a larger one. Call
    /// after the repository's link was checked.
    pub async fn small_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<Bytes>, StorageError> {
        if size > crate::SMALL_BLOB {
            return Ok(None);
        }
        if let Some(bytes) = self.manifest_cache.get(digest) {
            return Ok(Some(bytes));
        }
        let bytes = self.blob_bytes(digest).await?;
        if bytes.len() as u64 != size {
            return Err(StorageError::Corrupt {
                path: self.layout.blob_data(digest).to_string(),
                reason: format!("{} bytes where {size} were stored", bytes.len()),
            });
        }
        // Only content that is what its digest says is kept for others.
        if Digest::sha256_of(&bytes) == *digest {
            self.manifest_cache.insert(digest, &bytes);
        }
        Ok(Some(bytes))
    }

    /// A blob's bytes, read whole from the store (no cache).
    pub(crate) async fn blob_bytes(&self, digest: &Digest) -> Result<Bytes, StorageError> {
        let result = self
            .objects
            .get(&self.layout.blob_data(digest))
            .await
            .map_err(StorageError::from_backend)?;
        Ok(result.bytes().await?)
    }

    /// Opens a blob for reading, whole or a byte range of it.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<BlobRead, StorageError> {
        self.read_object(&self.layout.blob_data(digest), range)
            .await
    }

    /// Opens any object for streaming. On a local filesystem the file is
    /// read in large pieces (object_store's own stream reads 8 KiB at a
    /// time, each on the blocking pool).
    pub(crate) async fn read_object(
        &self,
        key: &object_store::path::Path,
        range: Option<Range<u64>>,
    ) -> Result<BlobRead, StorageError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .objects
            .get_opts(key, options)
            .await
            .map_err(StorageError::from_backend)?;
        let (size, range) = (result.meta.size, result.range.clone());
        let body = match result.payload {
            GetResultPayload::File(file, _path) => self.pieces.read_ahead(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
        };
        Ok(BlobRead { size, range, body })
    }

    /// Stores a blob whose digest the client named in advance: streamed,
    /// hashed on the way, and made visible only when the digest matched.
    /// Returns the blob's size.
    ///
    /// On a local filesystem the bytes go through an upload session, so a
    /// crash midway leaves nothing under `blobs/`; on an object store a
    /// multipart upload is invisible until it completes.
    pub async fn put_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<u64, UploadError> {
        if self.local_root.is_some() {
            let id = self.create_upload(name).await?;
            let stored = self
                .complete_upload(name, &id, digest, Some((None, body)))
                .await;
            if stored.is_err()
                && let Err(error) = self.cancel_upload(name, &id).await
                && !matches!(error, UploadError::Unknown)
            {
                tracing::warn!(upload = %id, %error, "removing a failed upload");
            }
            return stored;
        }
        let start = futures::future::ready(Ok(DigestHasher::new(digest.algorithm()))).boxed();
        let mut writer = ObjectWriter::new(&*self.objects, self.layout.blob_data(digest));
        let hashed = async {
            let hashing = copy_hashed(body, start, &self.blocks, 0, &mut writer).await?;
            finish_hashing(hashing)
                .await
                .map_err(|error| shared_error(&error))
        }
        .await;
        let computed = match hashed {
            Ok(hasher) => hasher.finish(),
            Err(error) => {
                writer.abort().await;
                return Err(error);
            }
        };
        if &computed != digest {
            writer.abort().await;
            return Err(UploadError::DigestMismatch {
                expected: digest.clone(),
                computed,
            });
        }
        let size = writer.written();
        writer.finish().await?;
        self.link_blob(name, digest).await?;
        Ok(size)
    }

    /// Stores a small blob held in memory (a config, a test or benchmark
    /// fixture) under its sha256 digest and links it into the repository.
    pub async fn put_small_blob(
        &self,
        name: &RepositoryName,
        bytes: Bytes,
    ) -> Result<Digest, StorageError> {
        let digest = Digest::sha256_of(&bytes);
        self.objects
            .put(&self.layout.blob_data(&digest), bytes.into())
            .await?;
        self.link_blob(name, &digest).await?;
        Ok(digest)
    }

    /// Makes an existing blob part of a repository (uploads and mounts).
    pub async fn link_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        self.write_link(&self.layout.layer_link(name, digest), digest)
            .await
    }

    /// Removes a blob from a repository; the data stays until garbage
    /// collection. Returns whether the repository had it.
    pub async fn unlink_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        let key = self.layout.layer_link(name, digest);
        if !self.exists(&key).await? {
            return Ok(false);
        }
        self.delete_object(&key).await?;
        Ok(true)
    }
}
