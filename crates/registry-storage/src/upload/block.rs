//! Blocks: fixed-size, aligned buffers that carry an upload's bytes from
//! the socket to the hashing and to the store. Each byte is copied once, out
//! of the HTTP server's read buffer (which it can then reuse at once), and
//! the hashing thread and the writer share the block. Blocks come from a
//! pool, so a push does not pay for fresh zeroed memory; their alignment
//! lets a local writer hand them to the disk with direct I/O; and each is
//! one transparent huge page where the kernel allows, which made copying
//! into blocks and pinning them for the disk about a third cheaper.

use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Advice, MmapMut};

use crate::region_pool::RegionPool;

/// Bytes per block: one huge page, a multiple of [`ALIGNMENT`].
pub(crate) const BLOCK_BYTES: usize = 2 << 20;
/// Memory alignment of a block's first byte, which also makes every
/// multiple of this within a block aligned: enough for direct I/O on any
/// common logical block size.
pub(crate) const ALIGNMENT: usize = 4096;
/// Blocks kept for reuse once returned.
const POOLED_BLOCKS: usize = 8;

/// Returned blocks' memory, shared by a store's uploads.
#[derive(Clone, Debug)]
pub(crate) struct BlockPool(RegionPool);

impl Default for BlockPool {
    fn default() -> Self {
        BlockPool(RegionPool::new(POOLED_BLOCKS))
    }
}

impl BlockPool {
    /// An empty block whose bytes will start `skip` bytes in (less than
    /// [`ALIGNMENT`]), so that they line up with a file offset `skip` past
    /// an aligned one.
    pub(crate) fn take(&self, skip: usize) -> std::io::Result<Block> {
        let storage = self.0.take(huge_page_region)?;
        let base = storage.as_ptr().align_offset(BLOCK_BYTES);
        Ok(Block {
            storage: Some(storage),
            base,
            skip,
            filled: skip,
            pool: self.clone(),
        })
    }
}

/// Anonymous memory holding one [`BLOCK_BYTES`]-aligned block, backed by a
/// huge page where transparent huge pages are enabled for those who ask.
fn huge_page_region() -> std::io::Result<MmapMut> {
    // Twice the size, so an aligned block fits wherever the mapping lands.
    let region = MmapMut::map_anon(2 * BLOCK_BYTES)?;
    let base = region.as_ptr().align_offset(BLOCK_BYTES);
    if let Err(error) = region.advise_range(Advice::HugePage, base, BLOCK_BYTES) {
        tracing::debug!(%error, "no transparent huge pages for upload blocks");
    }
    Ok(region)
}

/// Up to [`BLOCK_BYTES`] of an upload; its memory returns to the pool when
/// dropped.
pub(crate) struct Block {
    storage: Option<MmapMut>,
    /// Where the aligned region starts in `storage`.
    base: usize,
    /// Leading bytes of the aligned region that hold no data.
    skip: usize,
    /// End of the data within the aligned region.
    filled: usize,
    pool: BlockPool,
}

impl Block {
    /// The aligned region; empty only once the block was dropped.
    fn region(&self) -> &[u8] {
        match &self.storage {
            Some(storage) => &storage[self.base..self.base + BLOCK_BYTES],
            None => &[],
        }
    }

    /// Copies as much of `bytes` as fits; returns how much that was.
    pub(crate) fn fill(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(BLOCK_BYTES - self.filled);
        if let Some(storage) = &mut self.storage {
            let at = self.base + self.filled;
            storage[at..at + take].copy_from_slice(&bytes[..take]);
        }
        self.filled += take;
        take
    }

    pub(crate) fn is_full(&self) -> bool {
        self.filled == BLOCK_BYTES
    }

    /// The data bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.region()[self.skip..self.filled]
    }

    /// The bytes from the block's aligned start: `skip` unused ones, then
    /// the data.
    pub(crate) fn aligned(&self) -> &[u8] {
        &self.region()[..self.filled]
    }

    pub(crate) fn skip(&self) -> usize {
        self.skip
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(storage) = self.storage.take() {
            self.pool.0.give_back(storage);
        }
    }
}

/// A shared block's data as [`Bytes`], for writers that take them.
pub(crate) fn block_bytes(block: Arc<Block>) -> Bytes {
    Bytes::from_owner(BlockData(block))
}

struct BlockData(Arc<Block>);

impl AsRef<[u8]> for BlockData {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}
