//! Streaming an incoming body into one object, hashing on the way, without
//! holding it whole in memory. Small bodies become one `put`; larger ones a
//! multipart upload whose completion makes the object visible atomically.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::UploadError;
use crate::upload::block::{Block, block_bytes};
use crate::upload::hashing::BlockSink;

/// Bodies up to this size are buffered and written with a single `put`.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;
/// Part size of multipart uploads (S3 needs at least 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once; bounds memory to about (this + 1) parts.
const PARTS_IN_FLIGHT: usize = 2;

/// Bytes on their way into one object; nothing is visible until `finish`.
pub(crate) struct ObjectWriter<'a> {
    objects: &'a dyn ObjectStore,
    key: Path,
    buffered: Vec<Bytes>,
    buffered_len: usize,
    multipart: Option<WriteMultipart>,
    written: u64,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn new(objects: &'a dyn ObjectStore, key: Path) -> Self {
        ObjectWriter {
            objects,
            key,
            buffered: Vec::new(),
            buffered_len: 0,
            multipart: None,
            written: 0,
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) async fn write(&mut self, bytes: Bytes) -> object_store::Result<()> {
        self.written += bytes.len() as u64;
        if let Some(multipart) = &mut self.multipart {
            multipart.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            multipart.put(bytes);
            return Ok(());
        }
        self.buffered_len += bytes.len();
        self.buffered.push(bytes);
        if self.buffered_len > SINGLE_PUT_LIMIT {
            let upload = self.objects.put_multipart(&self.key).await?;
            let mut multipart = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            for piece in self.buffered.drain(..) {
                multipart.put(piece);
            }
            self.buffered_len = 0;
            self.multipart = Some(multipart);
        }
        Ok(())
    }

    /// Makes the object visible with everything written so far.
    pub(crate) async fn finish(self) -> object_store::Result<()> {
        match self.multipart {
            Some(multipart) => multipart.finish().await.map(drop),
            None => {
                let payload = PutPayload::from_iter(self.buffered);
                self.objects.put(&self.key, payload).await.map(drop)
            }
        }
    }

    /// Drops what was written; nothing becomes visible.
    pub(crate) async fn abort(self) {
        if let Some(multipart) = self.multipart
            && let Err(error) = multipart.abort().await
        {
            tracing::warn!(key = %self.key, %error, "aborting a multipart upload failed");
        }
    }
}

impl BlockSink for ObjectWriter<'_> {
    async fn accept(&mut self, block: Arc<Block>) -> Result<(), UploadError> {
        Ok(self.write(block_bytes(block)).await?)
    }
}
