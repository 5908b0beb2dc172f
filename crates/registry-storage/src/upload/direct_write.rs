//! Writing blocks to a file with direct I/O (`O_DIRECT`). The aligned part
//! of each block goes straight from its memory to the disk; through the
//! page cache, Linux would spend about as much time allocating cache pages
//! and their filesystem bookkeeping as copying the bytes, on the same cores
//! that receive and hash them. Bytes before the first aligned offset and
//! after the last go through an ordinary buffered handle. Where the
//! filesystem refuses direct I/O (older tmpfs, some network filesystems),
//! every byte is written buffered.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

use crate::upload::block::{ALIGNMENT, Block};

/// Writes a sequence of blocks to a file from a given offset on; every
/// block but the last must be full.
pub(crate) struct DirectAppender<'a> {
    buffered: &'a File,
    direct: Option<File>,
    /// The file offset of the next block's aligned start.
    position: u64,
}

impl<'a> DirectAppender<'a> {
    /// Appends through `buffered` (open for writing, without `O_APPEND`)
    /// from offset `start` on, opening `path` once more for direct writes.
    /// The first block must skip `start % ALIGNMENT` bytes.
    pub(crate) fn new(buffered: &'a File, path: &Path, start: u64) -> Self {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_DIRECT.bits())
            .open(path)
            .inspect_err(|error| {
                tracing::debug!(path = %path.display(), %error, "direct I/O unavailable; writing through the page cache");
            })
            .ok();
        DirectAppender {
            buffered,
            direct,
            position: start - start % ALIGNMENT as u64,
        }
    }

    /// Writes a block's data: an unaligned head and tail buffered, the
    /// aligned rest directly.
    pub(crate) fn write(&mut self, block: &Block) -> std::io::Result<()> {
        let bytes = block.aligned();
        let head_end = block.skip().next_multiple_of(ALIGNMENT).min(bytes.len());
        let aligned_end = (bytes.len() - bytes.len() % ALIGNMENT).max(head_end);
        self.write_buffered(&bytes[block.skip()..head_end], block.skip())?;
        self.write_direct(&bytes[head_end..aligned_end], head_end)?;
        self.write_buffered(&bytes[aligned_end..], aligned_end)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Writes `bytes` at `offset` past the current block's start.
    fn write_buffered(&self, bytes: &[u8], offset: usize) -> std::io::Result<()> {
        self.buffered
            .write_all_at(bytes, self.position + offset as u64)
    }

    fn write_direct(&mut self, bytes: &[u8], offset: usize) -> std::io::Result<()> {
        let Some(direct) = &self.direct else {
            return self.write_buffered(bytes, offset);
        };
        match direct.write_all_at(bytes, self.position + offset as u64) {
            Err(error) if error.kind() == ErrorKind::InvalidInput => {
                tracing::debug!(%error, "direct write refused; writing through the page cache");
                self.direct = None;
                self.write_buffered(bytes, offset)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::block::{BLOCK_BYTES, BlockPool};

    /// Appends `length` bytes in blocks from `start` on to a file holding
    /// `start` bytes; returns what the file holds and what it should.
    fn append(start: usize, length: usize) -> (Vec<u8>, Vec<u8>) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("data");
        let mut expected: Vec<u8> = (0..start).map(|index| (index % 7) as u8).collect();
        std::fs::write(&path, &expected).expect("writing the start");
        let file = OpenOptions::new().write(true).open(&path).expect("opening");
        let mut appender = DirectAppender::new(&file, &path, start as u64);
        let appended: Vec<u8> = (0..length).map(|index| (index * 31 % 251) as u8).collect();
        let pool = BlockPool::default();
        let mut rest = &appended[..];
        let mut block = pool.take(start % ALIGNMENT).expect("a block");
        while !rest.is_empty() {
            rest = &rest[block.fill(rest)..];
            if block.is_full() {
                appender.write(&block).expect("writing a block");
                block = pool.take(0).expect("a block");
            }
        }
        appender.write(&block).expect("writing the last block");
        expected.extend_from_slice(&appended);
        (std::fs::read(&path).expect("reading back"), expected)
    }

    #[test]
    fn every_alignment_of_start_and_length_lands_exactly() {
        let cases = [
            (0, 0),
            (0, 1),
            (0, ALIGNMENT),
            (0, BLOCK_BYTES),
            (0, BLOCK_BYTES + 1),
            (1, ALIGNMENT - 1),
            (100, 2 * BLOCK_BYTES + 5092),
            (ALIGNMENT - 1, 2),
            (3 * ALIGNMENT, BLOCK_BYTES - 3 * ALIGNMENT + 1),
            (BLOCK_BYTES + 17, BLOCK_BYTES),
        ];
        for (start, length) in cases {
            let (written, expected) = append(start, length);
            assert_eq!(
                written.len(),
                expected.len(),
                "start {start}, length {length}"
            );
            assert!(
                written == expected,
                "start {start}, length {length}: bytes differ"
            );
        }
    }
}
