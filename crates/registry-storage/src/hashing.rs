//! Copying an incoming body somewhere while hashing it. Hashing runs on a
//! blocking thread beside the copy, so a push is limited by the slower of
//! the two, not their sum.

use bytes::Bytes;
use futures::StreamExt;
use registry_core::DigestHasher;

use crate::{ByteStream, UploadError};

/// Batches waiting to be hashed.
const HASH_QUEUE: usize = 16;
/// Body pieces are handed on in batches of about this many bytes, so the
/// helper threads wake once per batch rather than once per network read.
const BATCH_BYTES: usize = 1 << 20;

/// Where the copied bytes go.
pub(crate) trait PieceSink {
    async fn accept(&mut self, batch: Vec<Bytes>) -> Result<(), UploadError>;
}

/// Copies `body` into `sink` and returns `hasher` fed with every byte.
pub(crate) async fn copy_hashed(
    mut body: ByteStream,
    mut hasher: DigestHasher,
    sink: &mut impl PieceSink,
) -> Result<DigestHasher, UploadError> {
    let (batches, mut to_hash) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
    let hashing = tokio::task::spawn_blocking(move || {
        while let Some(batch) = to_hash.blocking_recv() {
            batch.iter().for_each(|piece| hasher.update(piece));
        }
        hasher
    });
    let copied = async {
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
                    break;
                }
                sink.accept(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            if end {
                break;
            }
        }
        Ok::<_, UploadError>(())
    }
    .await;
    drop(batches);
    let hasher = hashing.await.map_err(std::io::Error::other)?;
    copied.map(|()| hasher)
}
