//! Blob upload sessions, kept entirely in the store so that a chunked upload
//! may hop between replicas.
//!
//! A session is a directory `_uploads/<id>/` holding `startedat` (RFC 3339,
//! as Distribution writes it) and one object per received chunk, named by its
//! start offset and a nonce. Beside each chunk, the sha256 state after it, so
//! the next chunk and the final check continue hashing without reading
//! earlier chunks again. A missing state (a crash between the two writes) is
//! recovered by hashing the chunks once more.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::{Algorithm, Digest, DigestHasher, RepositoryName};
use uuid::Uuid;

use crate::writer::ObjectWriter;
use crate::{ByteStream, StorageError, Store, UploadError};

/// The identifier of an upload session: a random UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(Uuid);

impl UploadId {
    fn random() -> Self {
        UploadId(Uuid::new_v4())
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for UploadId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text).map(UploadId)
    }
}

/// What a client may learn about a session.
#[derive(Clone, Copy, Debug)]
pub struct UploadStatus {
    /// Bytes received so far; the next chunk starts here.
    pub offset: u64,
}

#[derive(Debug)]
struct Chunk {
    key: Path,
    start: u64,
    size: u64,
    has_state: bool,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The chunks of a session, in order and contiguous from offset 0.
#[derive(Debug)]
struct Session {
    chunks: Vec<Chunk>,
}

impl Session {
    fn offset(&self) -> u64 {
        self.chunks.last().map_or(0, Chunk::end)
    }
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

    pub async fn upload_status(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<UploadStatus, UploadError> {
        let session = self.load_session(name, id).await?;
        Ok(UploadStatus {
            offset: session.offset(),
        })
    }

    /// Appends a chunk. `start`, when the client sent `Content-Range`, must
    /// be the current offset. Returns the new offset.
    pub async fn append_upload(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<u64, UploadError> {
        let session = self.load_session(name, id).await?;
        let current = session.offset();
        if let Some(requested) = start
            && requested != current
        {
            return Err(UploadError::OutOfOrder { requested, current });
        }
        let mut hasher = self.hasher_after(&session, Algorithm::Sha256).await?;
        let nonce = Uuid::new_v4().simple().to_string();
        let key = self.layout.upload_chunk(name, id, current, &nonce[..12]);
        let mut writer = ObjectWriter::new(&*self.objects, key.clone());
        if let Err(error) = writer.write_stream(body, &mut hasher).await {
            writer.abort().await;
            return Err(error);
        }
        let size = writer.written();
        if size == 0 {
            return Ok(current);
        }
        writer.finish().await?;
        let state = PutPayload::from(hasher.save());
        self.objects
            .put(&self.layout.upload_chunk_state(&key), state)
            .await?;
        Ok(current + size)
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
        let session = self.load_session(name, id).await?;
        let computed = self
            .hasher_after(&session, digest.algorithm())
            .await?
            .finish();
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
        self.delete_prefix(&self.layout.upload(name, id)).await?;
        Ok(session.offset())
    }

    /// Cancels a session and deletes what it received.
    pub async fn cancel_upload(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<(), UploadError> {
        self.load_session(name, id).await?;
        self.delete_prefix(&self.layout.upload(name, id)).await?;
        Ok(())
    }

    /// Moves verified chunks to the blob's place: one chunk is renamed
    /// (atomic, no copy on a filesystem); several are concatenated into one
    /// object that appears complete or not at all.
    async fn publish(&self, session: &Session, digest: &Digest) -> Result<(), UploadError> {
        let target = self.layout.blob_data(digest);
        if let [only] = session.chunks.as_slice() {
            self.objects.rename(&only.key, &target).await?;
            return Ok(());
        }
        let mut writer = ObjectWriter::new(&*self.objects, target);
        for chunk in &session.chunks {
            let mut stream = self.objects.get(&chunk.key).await?.into_stream();
            while let Some(piece) = stream.next().await {
                match piece {
                    Ok(piece) => writer.write(piece).await?,
                    Err(error) => {
                        writer.abort().await;
                        return Err(error.into());
                    }
                }
            }
        }
        writer.finish().await?;
        Ok(())
    }

    /// A hasher that has seen every byte of the session, from the last
    /// chunk's saved state when there is one, else by reading the chunks.
    async fn hasher_after(
        &self,
        session: &Session,
        algorithm: Algorithm,
    ) -> Result<DigestHasher, UploadError> {
        let Some(last) = session.chunks.last() else {
            return Ok(DigestHasher::new(algorithm));
        };
        if algorithm == Algorithm::Sha256 && last.has_state {
            let key = self.layout.upload_chunk_state(&last.key);
            let saved = self.objects.get(&key).await?.bytes().await?;
            match DigestHasher::restore(algorithm, &saved) {
                Ok(hasher) => return Ok(hasher),
                Err(error) => tracing::warn!(%key, %error, "hashing the upload again"),
            }
        }
        let mut hasher = DigestHasher::new(algorithm);
        for chunk in &session.chunks {
            let mut stream = self.objects.get(&chunk.key).await?.into_stream();
            while let Some(piece) = stream.try_next().await? {
                hasher.update(&piece);
            }
        }
        Ok(hasher)
    }

    async fn load_session(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<Session, UploadError> {
        let prefix = self.layout.upload(name, id);
        let chunks_prefix = format!("{prefix}/chunks/");
        let objects: Vec<_> = self.objects.list(Some(&prefix)).try_collect().await?;
        if objects.is_empty() {
            return Err(UploadError::Unknown);
        }
        let mut chunks = Vec::new();
        let mut states = std::collections::HashSet::new();
        for object in objects {
            let Some(file) = object.location.as_ref().strip_prefix(&chunks_prefix) else {
                continue;
            };
            if let Some(chunk) = file.strip_suffix(".sha256state") {
                states.insert(chunk.to_owned());
                continue;
            }
            let start = file
                .split_once('.')
                .and_then(|(start, _nonce)| start.parse().ok())
                .ok_or(UploadError::Inconsistent)?;
            chunks.push(Chunk {
                key: object.location,
                start,
                size: object.size,
                has_state: false,
            });
        }
        chunks.sort_by_key(|chunk| chunk.start);
        let mut expected_start = 0;
        for chunk in &mut chunks {
            if chunk.start != expected_start {
                return Err(UploadError::Inconsistent);
            }
            expected_start = chunk.end();
            let file = chunk.key.as_ref().strip_prefix(&chunks_prefix);
            chunk.has_state = file.is_some_and(|file| states.contains(file));
        }
        Ok(Session { chunks })
    }
}
