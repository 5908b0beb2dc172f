//! A session's chunks as stored: on an object store, one object per chunk
//! named by its start offset and a nonce, committed by creating
//! `commits/<start>` only if absent; on a local filesystem, one data file
//! appended to under a lock. Loading, committing and publishing them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use registry_core::{Digest, RepositoryName};

use super::UploadId;
use super::part_copies::{self, MAX_PART};
use super::writer::ObjectWriter;
use crate::{Store, UploadError};

/// The nonce of the single chunk a local-filesystem session appends to.
pub(super) const LOCAL_CHUNK: &str = "local";

#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) key: Path,
    pub(super) start: u64,
    pub(super) size: u64,
}

impl Chunk {
    pub(super) fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The chunks of a session, in order and contiguous from offset 0, and the
/// offsets with a saved hash state.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) chunks: Vec<Chunk>,
    pub(super) hash_states: HashSet<u64>,
}

impl Session {
    pub(super) fn offset(&self) -> u64 {
        self.chunks.last().map_or(0, Chunk::end)
    }
}

impl Store {
    /// Commits the chunk written at `start` under `nonce`; `false` when
    /// another chunk was committed there first. A commit found existing
    /// is read: it may be this one, created by an attempt whose answer was
    /// lost before the client retried it.
    pub(super) async fn commit_chunk(
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
            Err(object_store::Error::AlreadyExists { .. }) => {
                let committed = self.objects.get(&key).await?.bytes().await?;
                Ok(committed.as_ref() == nonce.as_bytes())
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Moves verified chunks to the blob's place: one chunk is renamed
    /// (atomic, no copy on a filesystem; a server-side copy on object stores,
    /// which S3 allows up to 5 GiB); on S3 several become the parts of one
    /// multipart upload, copied on the store's side; otherwise the chunks
    /// are concatenated through here. Whichever way, the blob appears
    /// complete or not at all.
    pub(super) async fn publish(
        &self,
        session: &Session,
        digest: &Digest,
    ) -> Result<(), UploadError> {
        let target = self.layout.blob_data(digest);
        if let (Some(root), [only]) = (&self.local_root, session.chunks.as_slice()) {
            let (data, target) = (root.join(only.key.as_ref()), root.join(target.as_ref()));
            return crate::upload::local_append::publish(data, target, only.size).await;
        }
        if let [only] = session.chunks.as_slice()
            && only.size <= MAX_PART
        {
            self.objects.rename(&only.key, &target).await?;
            return Ok(());
        }
        if let Some(s3) = &self.s3
            && let Some(parts) = part_copies::plan(&session.chunks)
        {
            match s3.assemble(&target, &parts).await {
                Ok(()) => return Ok(()),
                // Some S3-compatible stores cannot copy parts.
                Err(error) => {
                    tracing::warn!(%digest, %error, "copying parts on the store failed; concatenating the chunks here");
                }
            }
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
    pub(super) async fn upload_offset(
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

    pub(super) async fn load_session(
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
    pub(super) async fn committed_chunk(
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
