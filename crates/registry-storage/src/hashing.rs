//! Copying an incoming body somewhere while hashing it. Hashing runs on a
//! blocking thread beside the copy, so a push is limited by the slower of
//! the two, not their sum.

use bytes::Bytes;
use futures::StreamExt;
use registry_core::DigestHasher;

use crate::{ByteStream, UploadError};

/// Body pieces waiting to be hashed (each a few KiB to a few hundred KiB).
const HASH_QUEUE: usize = 64;

/// Where the copied bytes go.
pub(crate) trait PieceSink {
    async fn accept(&mut self, piece: Bytes) -> Result<(), UploadError>;
}

/// Copies `body` into `sink` and returns `hasher` fed with every byte.
pub(crate) async fn copy_hashed(
    mut body: ByteStream,
    mut hasher: DigestHasher,
    sink: &mut impl PieceSink,
) -> Result<DigestHasher, UploadError> {
    let (pieces, mut to_hash) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE);
    let hashing = tokio::task::spawn_blocking(move || {
        while let Some(piece) = to_hash.blocking_recv() {
            hasher.update(&piece);
        }
        hasher
    });
    let copied = async {
        while let Some(piece) = body.next().await {
            let piece = piece?;
            if pieces.send(piece.clone()).await.is_err() {
                break;
            }
            sink.accept(piece).await?;
        }
        Ok::<_, UploadError>(())
    }
    .await;
    drop(pieces);
    let hasher = hashing.await.map_err(std::io::Error::other)?;
    copied.map(|()| hasher)
}
