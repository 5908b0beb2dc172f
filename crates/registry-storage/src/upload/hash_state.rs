//! Hash states of a session: the running sha256 of answered chunks
//! carried on in the background and saved in order under
//! `hashstates/sha256/<offset>`, so the next chunk (here or on another
//! replica) continues from the newest state instead of hashing again.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::{Algorithm, DigestHasher, RepositoryName};

use super::UploadId;
use super::hashing::{HashOutcome, finish_hashing, shared_error};
use super::pending_hash::PendingHash;
use super::session::Session;
use crate::{Store, UploadError};

/// How long hashing from an object store waits for another replica to
/// save the state it needs, before reading the bytes back instead.
const HASH_STATE_WAIT: Duration = Duration::from_secs(1);
const HASH_STATE_POLL: Duration = Duration::from_millis(20);

impl Store {
    /// Waits until the hashing of every answered chunk has saved its state,
    /// so that nothing writes to the store once a read-only window begins.
    pub async fn settle_uploads(&self) {
        futures::future::join_all(self.pending_hashes.all_saved()).await;
    }

    /// A hasher that will have seen the session's first `end` bytes: the
    /// hashing of its last chunk when that is still under way here, else
    /// one resumed from the store.
    pub(super) fn resume_hasher(
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
    pub(super) fn hash_in_background(
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
    pub(super) async fn save_hash_state(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        range: Range<u64>,
        hasher: &DigestHasher,
    ) -> Result<(), UploadError> {
        // A session closed meanwhile (on another replica) needs no state,
        // and writing one would bring its directory back.
        if !self
            .exists(&self.layout.upload_started_at(name, id))
            .await?
        {
            return Ok(());
        }
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
    pub(super) async fn hasher_after(
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
        let mut hash_states = session.hash_states.clone();
        if algorithm == Algorithm::Sha256
            && end > 0
            && !hash_states.contains(&end)
            && self.saved_soon(name, id, end).await?
        {
            hash_states.insert(end);
        }
        let (mut hasher, from) = self
            .newest_saved_hasher(name, id, &hash_states, end, algorithm)
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

    /// Whether the hash state at `end` is saved, or is within a moment:
    /// the replica that took the chunk ending there saves it once its
    /// hashing is done, and waiting for that beats reading the chunk back
    /// from an object store. A local file is read back at once instead.
    async fn saved_soon(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        end: u64,
    ) -> Result<bool, UploadError> {
        if self.local_root.is_some() {
            return Ok(false);
        }
        let key = self.layout.upload_hash_state(name, id, end);
        let deadline = tokio::time::Instant::now() + HASH_STATE_WAIT;
        loop {
            if self.exists(&key).await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(HASH_STATE_POLL).await;
        }
    }

    /// The newest saved hash state up to `end` that can be restored, and
    /// its offset; a fresh hasher at 0 when there is none.
    pub(super) async fn newest_saved_hasher(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        hash_states: &HashSet<u64>,
        end: u64,
        algorithm: Algorithm,
    ) -> Result<(DigestHasher, u64), UploadError> {
        let mut offsets: Vec<u64> = hash_states
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
}
