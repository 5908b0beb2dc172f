//! What registry-api asks of an upload session: open it, append a chunk,
//! learn its progress, close it into a verified blob, or cancel it.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use object_store::{ObjectStoreExt, PutPayload};
use registry_core::{Algorithm, Digest, RepositoryName};
use uuid::Uuid;

use super::UploadId;
use super::block::ALIGNMENT;
use super::hashing::{copy_hashed, shared_error};
use super::local_append::LocalAppender;
use super::part_copies::MIN_PART;
use super::session::LOCAL_CHUNK;
use super::writer::ObjectWriter;
use crate::{ByteStream, StorageError, Store, UploadError};

/// What a client may learn about a session.
#[derive(Clone, Copy, Debug)]
pub struct UploadStatus {
    /// Bytes received so far; the next chunk starts here.
    pub offset: u64,
}

impl Store {
    /// Opens a new upload session in a repository.
    pub async fn create_upload(&self, name: &RepositoryName) -> Result<UploadId, StorageError> {
        let id = UploadId::random();
        let started_at = humantime::format_rfc3339(SystemTime::now()).to_string();
        self.objects
            .put(
                &self.layout.upload_started_at(name, &id),
                PutPayload::from(started_at.into_bytes()),
            )
            .await?;
        Ok(id)
    }

    /// The smallest chunk but the last a client should send
    /// (`OCI-Chunk-Min-Length`), where the store has one: on S3, the
    /// smallest part, so closing joins the chunks on the store's side.
    pub fn chunk_min_length(&self) -> Option<u64> {
        self.s3.as_ref().map(|_| MIN_PART)
    }

    pub async fn upload_status(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<UploadStatus, UploadError> {
        Ok(UploadStatus {
            offset: self.upload_offset(name, id).await?,
        })
    }

    /// Appends a chunk. `start`, when the client sent `Content-Range`, must
    /// be the current offset. Returns the byte range the chunk now holds,
    /// once its bytes are stored; hashing them may still be under way.
    pub async fn append_upload(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<Range<u64>, UploadError> {
        // Looked up first: hashing forgotten after this point has saved its
        // state, so resuming from the store finds it.
        let pending = self.pending_hashes.latest(id);
        let current = self.upload_offset(name, id).await?;
        if let Some(requested) = start
            && requested != current
        {
            return Err(UploadError::OutOfOrder { requested, current });
        }
        let previous = pending.filter(|pending| pending.end == current);
        let hasher = self.resume_hasher(name, id, current, previous.clone(), Algorithm::Sha256);
        let (hashing, size) = match &self.local_root {
            Some(root) => {
                let key = self.layout.upload_chunk(name, id, 0, LOCAL_CHUNK);
                let mut appender = LocalAppender::start(root.join(key.as_ref()), current);
                let skip = (current % ALIGNMENT as u64) as usize;
                match copy_hashed(body, hasher, &self.blocks, skip, &mut appender).await {
                    Ok(hashing) => {
                        let size = appender.written();
                        appender.keep().await?;
                        (hashing, size)
                    }
                    Err(error) => {
                        if let Err(cleanup) = appender.discard().await {
                            tracing::warn!(upload = %id, error = %cleanup, "cutting off a failed chunk");
                        }
                        return Err(error);
                    }
                }
            }
            None => {
                let nonce = Uuid::new_v4().simple().to_string();
                let key = self.layout.upload_chunk(name, id, current, &nonce[..12]);
                let mut writer = ObjectWriter::new(&*self.objects, key.clone());
                match copy_hashed(body, hasher, &self.blocks, 0, &mut writer).await {
                    Ok(hashing) => {
                        let size = writer.written();
                        if size > 0 {
                            writer.finish().await?;
                            if !self.commit_chunk(name, id, current, &nonce[..12]).await? {
                                self.delete_object(&key).await?;
                                return Err(UploadError::Busy);
                            }
                            // Closed or cancelled while this chunk was on its
                            // way: take it back rather than revive the session.
                            if !self
                                .exists(&self.layout.upload_started_at(name, id))
                                .await?
                            {
                                self.delete_prefix(&self.layout.upload(name, id)).await?;
                                return Err(UploadError::Unknown);
                            }
                        }
                        (hashing, size)
                    }
                    Err(error) => {
                        writer.abort().await;
                        return Err(error);
                    }
                }
            }
        };
        let range = current..current + size;
        if size > 0 {
            self.hash_in_background(name, id, range.clone(), hashing, previous);
        }
        Ok(range)
    }

    /// Closes a session: appends the final chunk if any, checks the digest,
    /// publishes the blob in one atomic step and links it into the
    /// repository. A digest mismatch cancels the session. Returns the size.
    pub async fn complete_upload(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        final_chunk: Option<(Option<u64>, ByteStream)>,
    ) -> Result<u64, UploadError> {
        if let Some((start, body)) = final_chunk {
            self.append_upload(name, id, start, body).await?;
        }
        let pending = self.pending_hashes.take(id);
        let session = self.load_session(name, id).await?;
        let size = session.offset();
        let hashed = match pending.clone().filter(|pending| pending.end == size) {
            Some(ending_here) => {
                self.resume_hasher(name, id, size, Some(ending_here), digest.algorithm())
                    .await
            }
            None => self
                .hasher_after(name, id, &session, size, digest.algorithm())
                .await
                .map_err(Arc::new),
        };
        // Nothing may write into the session once it is gone.
        if let Some(pending) = pending {
            pending.saved.await;
        }
        let computed = hashed.map_err(|error| shared_error(&error))?.finish();
        if &computed != digest {
            self.cancel_upload(name, id).await?;
            return Err(UploadError::DigestMismatch {
                expected: digest.clone(),
                computed,
            });
        }
        if self.blob_size(digest).await?.is_none() {
            self.publish(&session, digest).await?;
        }
        self.link_blob(name, digest).await?;
        // The blob is stored and linked: the push succeeded whatever
        // becomes of the session's leftovers (a collection removes them
        // once they are older than the upload age limit).
        if let Err(error) = self.delete_prefix(&self.layout.upload(name, id)).await {
            tracing::warn!(upload = %id, %error, "the closed session was not removed");
        }
        Ok(size)
    }

    /// Cancels a session and deletes what it received.
    pub async fn cancel_upload(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<(), UploadError> {
        self.upload_offset(name, id).await?;
        if let Some(pending) = self.pending_hashes.take(id) {
            pending.saved.await;
        }
        self.delete_prefix(&self.layout.upload(name, id)).await?;
        Ok(())
    }
}
