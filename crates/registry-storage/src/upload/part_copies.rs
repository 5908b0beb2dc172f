//! Closing a chunked upload on S3 without its bytes crossing the registry
//! again: the chunk objects become the parts of one multipart upload of
//! the blob, each copied on the store's side (`UploadPartCopy`), and
//! completing it makes the blob visible whole, at once. S3 wants every part
//! but the last to hold at least 5 MiB and at most 5 GiB, and at most
//! 10,000 parts: chunks that cannot be cut that way (a client sending small
//! chunks despite `OCI-Chunk-Min-Length`) are concatenated through the
//! registry instead, as are chunks on a store that cannot copy parts.

use std::ops::Range;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;

use super::session::Chunk;
use crate::StorageError;
use crate::s3::S3;

/// The smallest part S3 takes, but for the last: the chunk size clients
/// are asked for on an S3 store.
pub const MIN_PART: u64 = 5 << 20;
/// The largest object S3 copies in one request.
pub(super) const MAX_PART: u64 = 5 << 30;
/// The largest part copied here: a copy is one request that may send
/// nothing back until it is done, so parts are kept small enough to be
/// copied well within `--storage-timeout` by a slow store (1 GiB at 35
/// MiB/s is 30 s), and at 10,000 parts a blob may still reach 10 TiB.
const COPIED_PART: u64 = 1 << 30;
/// The most parts one upload may have.
const MAX_PARTS: usize = 10_000;
/// Part copies in flight at once.
const COPIES_IN_FLIGHT: usize = 4;

/// One part: a byte range of a chunk object.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PartCopy<'a> {
    pub(super) source: &'a Path,
    pub(super) range: Range<u64>,
}

/// The parts the chunks make, in order: each chunk cut into the fewest
/// equal parts of at most `COPIED_PART`, an empty one into none. `None` when a
/// chunk before the last is under `MIN_PART` (it cannot be a part), or
/// there would be no parts or too many.
pub(super) fn plan(chunks: &[Chunk]) -> Option<Vec<PartCopy<'_>>> {
    let mut parts = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        if chunk.size == 0 {
            continue;
        }
        if chunk.size < MIN_PART && index + 1 < chunks.len() {
            return None;
        }
        let each = chunk.size.div_ceil(chunk.size.div_ceil(COPIED_PART));
        for start in (0..chunk.size).step_by(usize::try_from(each).ok()?) {
            parts.push(PartCopy {
                source: &chunk.key,
                range: start..(start + each).min(chunk.size),
            });
        }
    }
    (!parts.is_empty() && parts.len() <= MAX_PARTS).then_some(parts)
}

impl S3 {
    /// Writes `target` as the concatenation of `parts`, copied on the
    /// store's side; nothing is visible at `target` unless all of it is.
    pub(super) async fn assemble(
        &self,
        target: &Path,
        parts: &[PartCopy<'_>],
    ) -> Result<(), StorageError> {
        let upload_id = self.store.create_multipart(target).await?;
        let upload = upload_id.as_str();
        // Boxed one by one: a stream mapping a closure to these futures
        // would not be provably `Send` to the request handlers above.
        let copies: Vec<BoxFuture<'_, Result<PartId, StorageError>>> = parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let range = part.range.clone();
                async move {
                    let e_tag = self
                        .copy_part(target, upload, index + 1, part.source, range)
                        .await?;
                    Ok(PartId { content_id: e_tag })
                }
                .boxed()
            })
            .collect();
        let copied: Result<Vec<PartId>, StorageError> = futures::stream::iter(copies)
            .buffered(COPIES_IN_FLIGHT)
            .try_collect()
            .await;
        let completed = match copied {
            Ok(copied) => self
                .store
                .complete_multipart(target, &upload_id, copied)
                .await
                .map_err(StorageError::from),
            Err(error) => Err(error),
        };
        if completed.is_err()
            && let Err(error) = self.store.abort_multipart(target, &upload_id).await
        {
            // The collector aborts what is left once it is old enough.
            tracing::warn!(%target, %error, "aborting a multipart upload failed");
        }
        completed.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[u64]) -> Vec<Chunk> {
        let mut start = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                let chunk = Chunk {
                    key: Path::from(format!("chunks/{index}")),
                    start,
                    size,
                };
                start += size;
                chunk
            })
            .collect()
    }

    fn ranges(parts: &[PartCopy<'_>]) -> Vec<(String, Range<u64>)> {
        parts
            .iter()
            .map(|part| (part.source.to_string(), part.range.clone()))
            .collect()
    }

    #[test]
    fn chunks_of_at_least_the_minimum_are_one_part_each_and_the_last_may_be_small() {
        let chunks = chunks(&[MIN_PART, 16 << 20, 1]);
        let parts = plan(&chunks).expect("a plan");
        assert_eq!(
            ranges(&parts),
            vec![
                ("chunks/0".to_owned(), 0..MIN_PART),
                ("chunks/1".to_owned(), 0..16 << 20),
                ("chunks/2".to_owned(), 0..1),
            ]
        );
    }

    #[test]
    fn a_small_chunk_before_the_last_cannot_be_a_part() {
        assert!(plan(&chunks(&[16 << 20, MIN_PART - 1, 16 << 20])).is_none());
        assert!(plan(&chunks(&[1, 1])).is_none());
    }

    #[test]
    fn a_chunk_over_the_largest_copied_part_is_cut_into_equal_parts_none_over_it() {
        let size = 2 * COPIED_PART + 3;
        let chunks = chunks(&[size, 7]);
        let parts = plan(&chunks).expect("a plan");
        assert_eq!(parts.len(), 4);
        let mut next = 0;
        for part in &parts[..3] {
            assert_eq!(part.range.start, next);
            assert!(part.range.end - part.range.start <= COPIED_PART);
            assert!(part.range.end - part.range.start >= MIN_PART);
            next = part.range.end;
        }
        assert_eq!(next, size);
        assert_eq!(parts[3].range, 0..7);
    }

    #[test]
    fn empty_chunks_are_no_parts_and_too_many_parts_is_no_plan() {
        let parts_of = |sizes: &[u64]| plan(&chunks(sizes)).map(|parts| ranges(&parts));
        assert_eq!(
            parts_of(&[0, MIN_PART, 0]),
            Some(vec![("chunks/1".to_owned(), 0..MIN_PART)])
        );
        assert_eq!(parts_of(&[]), None);
        assert_eq!(parts_of(&[0]), None);
        assert!(plan(&chunks(&vec![MIN_PART; MAX_PARTS + 1])).is_none());
        assert_eq!(
            plan(&chunks(&vec![MIN_PART; MAX_PARTS])).map(|parts| parts.len()),
            Some(MAX_PARTS)
        );
    }
}
