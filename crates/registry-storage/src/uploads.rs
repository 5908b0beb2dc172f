//! Blob upload sessions, kept entirely in the store so that a chunked upload
//! may hop between replicas.
//!
//! A session is a directory `_uploads/<id>/` holding `startedat` (RFC 3339,
//! as Distribution writes it), the received bytes under `chunks/`, and
//! `hashstates/sha256/<offset>`: the sha256 state after the first `offset`
//! bytes, so the next chunk and the final check continue hashing without
//! reading earlier chunks again. A missing state (a crash between two
//! writes) is recovered by hashing the bytes once more.
//!
//! On an object store each chunk is one object, named by its start offset
//! and a nonce, so two writers never share a key. Once written, a chunk is
//! committed by creating `commits/<start>` (holding its nonce) only if
//! absent: of two writers racing for one offset (a client's retry landing
//! on another replica while the original is still running), one commits
//! and the other gets 409 and removes its chunk, and the session carries
//! on. Chunks without a commit are ignored. Closing concatenates the
//! committed chunks. On a local filesystem the bytes go to one file that
//! each chunk is appended to under a lock (see `local_append`), and
//! closing is a rename.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::SystemTime;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use registry_core::{Algorithm, Digest, DigestHasher, RepositoryName};
use uuid::Uuid;

use crate::block::ALIGNMENT;
use crate::hashing::{HashOutcome, copy_hashed, finish_hashing, shared_error};
use crate::local_append::LocalAppender;
use crate::pending_hash::PendingHash;
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
}

/// The nonce of the single chunk a local-filesystem session appends to.
const LOCAL_CHUNK: &str = "local";

/// The largest object S3 copies server-side in one request.
const SERVER_SIDE_COPY_LIMIT: u64 = 5 << 30;

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The chunks of a session, in order and contiguous from offset 0, and the
/// offsets with a saved hash state.
#[derive(Debug)]
struct Session {
    chunks: Vec<Chunk>,
    hash_states: HashSet<u64>,
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
        self.delete_prefix(&self.layout.upload(name, id)).await?;
        Ok(size)
    }

    /// Commits the chunk written at `start` under `nonce`; `false` when
    /// another chunk was committed there first.
    async fn commit_chunk(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        start: u64,
        nonce: &str,
    ) -> Result<bool, UploadError> {
        let key = self.layout.upload_commit(name, id, start);
        let payload = PutPayload::from(nonce.to_owned().into_bytes());
        match self
            .objects
            .put_opts(&key, payload, PutOptions::from(PutMode::Create))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Waits until the hashing of every answered chunk has saved its state,
    /// so that nothing writes to the store once a read-only window begins.
    pub async fn settle_uploads(&self) {
        futures::future::join_all(self.pending_hashes.all_saved()).await;
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

    /// Moves verified chunks to the blob's place: one chunk is renamed
    /// (atomic, no copy on a filesystem; a server-side copy on object stores,
    /// which S3 allows up to 5 GiB); otherwise the chunks are concatenated
    /// into one object that appears complete or not at all.
    async fn publish(&self, session: &Session, digest: &Digest) -> Result<(), UploadError> {
        let target = self.layout.blob_data(digest);
        if let (Some(root), [only]) = (&self.local_root, session.chunks.as_slice()) {
            let (data, target) = (root.join(only.key.as_ref()), root.join(target.as_ref()));
            return crate::local_append::publish(data, target, only.size).await;
        }
        if let [only] = session.chunks.as_slice()
            && only.size <= SERVER_SIDE_COPY_LIMIT
        {
            self.objects.rename(&only.key, &target).await?;
            return Ok(());
        }
        let mut writer = ObjectWriter::new(&*self.objects, target);
        for chunk in &session.chunks {
            let mut stream = self.read_object(&chunk.key, None).await?.body;
            while let Some(piece) = stream.next().await {
                let written = match piece {
                    Ok(piece) => writer.write(piece).await.map_err(UploadError::from),
                    Err(error) => Err(error.into()),
                };
                if let Err(error) = written {
                    writer.abort().await;
                    return Err(error);
                }
            }
        }
        writer.finish().await?;
        Ok(())
    }

    /// How many bytes a session holds: on a local filesystem the length of
    /// its data file (one `stat`), elsewhere the end of its listed chunks.
    async fn upload_offset(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<u64, UploadError> {
        let Some(root) = &self.local_root else {
            return Ok(self.load_session(name, id).await?.offset());
        };
        let data = root.join(self.layout.upload_chunk(name, id, 0, LOCAL_CHUNK).as_ref());
        match tokio::fs::metadata(&data).await {
            Ok(metadata) => Ok(metadata.len()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                match self
                    .objects
                    .head(&self.layout.upload_started_at(name, id))
                    .await
                {
                    Ok(_) => Ok(0),
                    Err(object_store::Error::NotFound { .. }) => Err(UploadError::Unknown),
                    Err(other) => Err(other.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A hasher that will have seen the session's first `end` bytes: the
    /// hashing of its last chunk when that is still under way here, else
    /// one resumed from the store.
    fn resume_hasher(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        end: u64,
        pending: Option<PendingHash>,
        algorithm: Algorithm,
    ) -> BoxFuture<'static, HashOutcome> {
        let (store, name, id) = (self.clone(), name.clone(), *id);
        async move {
            if let Some(pending) = pending
                && algorithm == Algorithm::Sha256
            {
                match pending.hasher.await {
                    Ok(hasher) => return Ok(hasher),
                    Err(error) => tracing::warn!(upload = %id, %error, "hashing the upload again from the store"),
                }
            }
            let session = store.load_session(&name, &id).await?;
            store
                .hasher_after(&name, &id, &session, end, algorithm)
                .await
                .map_err(Arc::new)
        }
        .boxed()
    }

    /// Lets the hashing of the bytes in `range` finish after the chunk is
    /// answered: later chunks here continue from it, and its state is saved
    /// (after the previous chunk's, then replacing it) for everyone else.
    fn hash_in_background(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        range: Range<u64>,
        hashing: tokio::task::JoinHandle<HashOutcome>,
        previous: Option<PendingHash>,
    ) {
        let hasher = finish_hashing(hashing).boxed().shared();
        let (store, name, id) = (self.clone(), name.clone(), *id);
        let end = range.end;
        let saved = {
            let hasher = hasher.clone();
            async move {
                if let Some(previous) = previous {
                    previous.saved.await;
                }
                let saved = match hasher.await {
                    Ok(hasher) => store.save_hash_state(&name, &id, range, &hasher).await,
                    Err(error) => Err(shared_error(&error)),
                };
                if let Err(error) = saved {
                    tracing::warn!(upload = %id, %error, "no hash state saved; the next chunk hashes from the stored bytes");
                }
                store.pending_hashes.forget(&id, end);
            }
            .boxed()
            .shared()
        };
        self.pending_hashes.insert(
            id,
            PendingHash {
                end,
                hasher,
                saved: saved.clone(),
            },
        );
        tokio::spawn(saved);
    }

    /// Saves the hash state after `range.end` bytes, then deletes the one
    /// at `range.start`: only the newest state is ever read, and a short
    /// listing keeps loading the session cheap.
    async fn save_hash_state(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        range: Range<u64>,
        hasher: &DigestHasher,
    ) -> Result<(), UploadError> {
        let state = PutPayload::from(hasher.save());
        let key = self.layout.upload_hash_state(name, id, range.end);
        self.objects.put(&key, state).await?;
        if range.start > 0 {
            self.delete_object(&self.layout.upload_hash_state(name, id, range.start))
                .await?;
        }
        Ok(())
    }

    /// A hasher that has seen the session's first `end` bytes: from the
    /// newest saved state, then reading the bytes after it. Bytes past `end`
    /// (a chunk being appended meanwhile) are not read.
    async fn hasher_after(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        session: &Session,
        end: u64,
        algorithm: Algorithm,
    ) -> Result<DigestHasher, UploadError> {
        if session.offset() < end {
            return Err(UploadError::Inconsistent);
        }
        let (mut hasher, from) = self
            .newest_saved_hasher(name, id, session, end, algorithm)
            .await?;
        for chunk in &session.chunks {
            let range =
                from.saturating_sub(chunk.start)..chunk.size.min(end.saturating_sub(chunk.start));
            if range.is_empty() {
                continue;
            }
            let mut stream = self.read_object(&chunk.key, Some(range)).await?.body;
            while let Some(piece) = stream.try_next().await? {
                hasher.update(&piece);
            }
        }
        Ok(hasher)
    }

    /// The newest saved hash state up to `end` that can be restored, and
    /// its offset; a fresh hasher at 0 when there is none.
    async fn newest_saved_hasher(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        session: &Session,
        end: u64,
        algorithm: Algorithm,
    ) -> Result<(DigestHasher, u64), UploadError> {
        let mut offsets: Vec<u64> = session
            .hash_states
            .iter()
            .copied()
            .filter(|offset| (1..=end).contains(offset))
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        if algorithm == Algorithm::Sha256 {
            for offset in offsets {
                let key = self.layout.upload_hash_state(name, id, offset);
                let saved = match self.objects.get(&key).await {
                    Ok(found) => found.bytes().await?,
                    // Replaced by a newer state since the session was listed.
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(other) => return Err(other.into()),
                };
                match DigestHasher::restore(algorithm, &saved) {
                    Ok(hasher) => return Ok((hasher, offset)),
                    Err(error) => tracing::warn!(%key, %error, "skipping an unreadable hash state"),
                }
            }
        }
        Ok((DigestHasher::new(algorithm), 0))
    }

    async fn load_session(
        &self,
        name: &RepositoryName,
        id: &UploadId,
    ) -> Result<Session, UploadError> {
        let prefix = self.layout.upload(name, id);
        let chunks_prefix = format!("{prefix}/chunks/");
        let commits_prefix = format!("{prefix}/commits/");
        let states_prefix = format!("{prefix}/hashstates/sha256/");
        let objects: Vec<_> = self.objects.list(Some(&prefix)).try_collect().await?;
        if objects.is_empty() {
            return Err(UploadError::Unknown);
        }
        let mut written: BTreeMap<u64, Vec<Chunk>> = BTreeMap::new();
        let mut committed = BTreeSet::new();
        let mut hash_states = HashSet::new();
        for object in objects {
            let location = object.location.as_ref();
            if let Some(offset) = location.strip_prefix(&states_prefix) {
                hash_states.extend(offset.parse::<u64>().ok());
            } else if let Some(start) = location.strip_prefix(&commits_prefix) {
                committed.extend(start.parse::<u64>().ok());
            } else if let Some(file) = location.strip_prefix(&chunks_prefix) {
                let start = file
                    .split_once('.')
                    .and_then(|(start, _nonce)| start.parse().ok())
                    .ok_or(UploadError::Inconsistent)?;
                written.entry(start).or_default().push(Chunk {
                    key: object.location,
                    start,
                    size: object.size,
                });
            }
        }
        let mut chunks = Vec::new();
        for (start, candidates) in written {
            // A local session's one data file needs no commit.
            if self.local_root.is_none() && !committed.contains(&start) {
                continue;
            }
            chunks.push(self.committed_chunk(name, id, start, candidates).await?);
        }
        let mut expected_start = 0;
        for chunk in &chunks {
            if chunk.start != expected_start {
                return Err(UploadError::Inconsistent);
            }
            expected_start = chunk.end();
        }
        Ok(Session {
            chunks,
            hash_states,
        })
    }

    /// Of the chunks written at `start`, the committed one: the only one,
    /// or the one whose nonce the commit names (a racing writer's chunk may
    /// linger until it is removed).
    async fn committed_chunk(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        start: u64,
        mut candidates: Vec<Chunk>,
    ) -> Result<Chunk, UploadError> {
        if candidates.len() == 1 {
            return candidates.pop().ok_or(UploadError::Inconsistent);
        }
        let commit = self.layout.upload_commit(name, id, start);
        let nonce = self.objects.get(&commit).await?.bytes().await?;
        let suffix = format!(".{}", String::from_utf8_lossy(&nonce));
        candidates
            .into_iter()
            .find(|chunk| chunk.key.as_ref().ends_with(&suffix))
            .ok_or(UploadError::Inconsistent)
    }
}
