//! Copying an incoming body somewhere while hashing it. Hashing runs on a
//! blocking thread beside the copy, so a push is limited by the slower of
//! the two, not their sum, and the copy may finish before the hashing does:
//! the caller gets a handle to the hashing still under way.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use registry_core::DigestHasher;

use crate::{ByteStream, UploadError};

/// A hasher that has seen every byte so far, or why it could not be made.
pub(crate) type HashOutcome = Result<DigestHasher, Arc<UploadError>>;

/// Batches waiting to be hashed. Together with the writer's queue this
/// bounds the memory one upload holds.
const HASH_QUEUE: usize = 8;
/// Body pieces are handed on in batches of about this many bytes, so the
/// helper threads wake once per batch rather than once per network read.
const BATCH_BYTES: usize = 1 << 20;

/// Where the copied bytes go.
pub(crate) trait PieceSink {
    async fn accept(&mut self, batch: Vec<Bytes>) -> Result<(), UploadError>;
}

/// Copies `body` into `sink` while a blocking thread hashes it, continuing
/// the hasher `start` resolves to (which may itself still be hashing an
/// earlier chunk). Returns once every byte is in the sink; the hashing may
/// still be running, and the handle yields its hasher.
pub(crate) async fn copy_hashed(
    mut body: ByteStream,
    start: BoxFuture<'static, HashOutcome>,
    sink: &mut impl PieceSink,
) -> Result<tokio::task::JoinHandle<HashOutcome>, UploadError> {
    let (batches, mut to_hash) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
    let runtime = tokio::runtime::Handle::current();
    let hashing = tokio::task::spawn_blocking(move || -> HashOutcome {
        let mut hasher = runtime.block_on(start)?;
        while let Some(batch) = to_hash.blocking_recv() {
            batch.iter().for_each(|piece| hasher.update(piece));
        }
        Ok(hasher)
    });
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    loop {
        let piece = body.next().await.transpose()?;
        let end = piece.is_none();
        if let Some(piece) = piece {
            batch_bytes += piece.len();
            batch.push(piece);
        }
        if batch_bytes >= BATCH_BYTES || (end && !batch.is_empty()) {
            if batches.send(batch.clone()).await.is_err() {
                // The hashing stopped before the body ended: it failed.
                return Err(match finish_hashing(hashing).await {
                    Err(error) => shared_error(&error),
                    Ok(_) => std::io::Error::other("the hashing thread stopped early").into(),
                });
            }
            sink.accept(std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
        if end {
            return Ok(hashing);
        }
    }
}

/// An error of a shared hash outcome, as an upload error of its own.
pub(crate) fn shared_error(error: &UploadError) -> UploadError {
    std::io::Error::other(error.to_string()).into()
}

/// Waits for a hashing handle, turning a panicked thread into an error.
pub(crate) async fn finish_hashing(hashing: tokio::task::JoinHandle<HashOutcome>) -> HashOutcome {
    hashing
        .await
        .map_err(|error| Arc::new(std::io::Error::other(error).into()))?
}
