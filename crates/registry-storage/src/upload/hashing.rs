//! Copying an incoming body somewhere while hashing it. Hashing runs on a
//! blocking thread beside the copy, so a push is limited by the slower of
//! the two, not their sum, and the copy may finish before the hashing does:
//! the caller gets a handle to the hashing still under way.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use registry_core::DigestHasher;

use crate::upload::block::{Block, BlockPool};
use crate::{ByteStream, StorageError, UploadError};

/// A hasher that has seen every byte so far, or why it could not be made.
pub(crate) type HashOutcome = Result<DigestHasher, Arc<UploadError>>;

/// Blocks waiting to be hashed. With the writer's queue this bounds the
/// memory one upload holds.
const HASH_QUEUE: usize = 2;

/// Where the copied bytes go; every block but the last is full.
pub(crate) trait BlockSink {
    async fn accept(&mut self, block: Arc<Block>) -> Result<(), UploadError>;
}

/// Copies `body` into `sink` while a blocking thread hashes it, continuing
/// the hasher `start` resolves to (which may itself still be hashing an
/// earlier chunk). The first block skips `skip` bytes (see
/// [`BlockPool::take`]). Returns once every byte is in the sink; the hashing
/// may still be running, and the handle yields its hasher.
pub(crate) async fn copy_hashed(
    mut body: ByteStream,
    start: BoxFuture<'static, HashOutcome>,
    blocks: &BlockPool,
    skip: usize,
    sink: &mut impl BlockSink,
) -> Result<tokio::task::JoinHandle<HashOutcome>, UploadError> {
    let (to_hash, mut hash_queue) = tokio::sync::mpsc::channel::<Arc<Block>>(HASH_QUEUE);
    let runtime = tokio::runtime::Handle::current();
    let hashing = tokio::task::spawn_blocking(move || -> HashOutcome {
        let mut hasher = runtime.block_on(start)?;
        while let Some(block) = hash_queue.blocking_recv() {
            hasher.update(block.data());
        }
        Ok(hasher)
    });
    let mut block = blocks.take(skip)?;
    while let Some(piece) = body
        .next()
        .await
        .transpose()
        .map_err(|error| UploadError::Storage(StorageError::Body(error)))?
    {
        let mut rest = &piece[..];
        while !rest.is_empty() {
            rest = &rest[block.fill(rest)..];
            if block.is_full() {
                let full = std::mem::replace(&mut block, blocks.take(0)?);
                if !hand_on(Arc::new(full), &to_hash, sink).await? {
                    return Err(why_hashing_stopped(hashing).await);
                }
            }
        }
    }
    if !block.data().is_empty() && !hand_on(Arc::new(block), &to_hash, sink).await? {
        return Err(why_hashing_stopped(hashing).await);
    }
    Ok(hashing)
}

/// Gives a block to the hashing and to the sink; false when the hashing
/// has stopped, which it only does on failure.
async fn hand_on(
    block: Arc<Block>,
    to_hash: &tokio::sync::mpsc::Sender<Arc<Block>>,
    sink: &mut impl BlockSink,
) -> Result<bool, UploadError> {
    if to_hash.send(block.clone()).await.is_err() {
        return Ok(false);
    }
    sink.accept(block).await?;
    Ok(true)
}

async fn why_hashing_stopped(hashing: tokio::task::JoinHandle<HashOutcome>) -> UploadError {
    match finish_hashing(hashing).await {
        Err(error) => shared_error(&error),
        Ok(_) => std::io::Error::other("the upload's hashing stopped early").into(),
    }
}

/// The error of a hash outcome that several requests may share, as an
/// upload error of the caller's own.
pub(crate) fn shared_error(error: &Arc<UploadError>) -> UploadError {
    match **error {
        UploadError::Unknown => UploadError::Unknown,
        UploadError::Inconsistent => UploadError::Inconsistent,
        _ => StorageError::Hashing(error.clone()).into(),
    }
}

/// Waits for a hashing handle, turning a panicked thread into an error.
pub(crate) async fn finish_hashing(hashing: tokio::task::JoinHandle<HashOutcome>) -> HashOutcome {
    hashing.await.map_err(|error| {
        Arc::new(StorageError::Hashing(Arc::new(std::io::Error::other(error).into())).into())
    })?
}
