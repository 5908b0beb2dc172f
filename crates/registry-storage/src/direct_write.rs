//! Appending to a file with direct I/O (`O_DIRECT`). Whole aligned blocks go
//! from an aligned staging buffer straight to the disk; through the page
//! cache, Linux would spend about as much time allocating cache pages and
//! their filesystem bookkeeping as copying the bytes, on the same two cores
//! that receive and hash them. Bytes before the first aligned offset and
//! after the last go through an ordinary buffered handle. Where the
//! filesystem refuses direct I/O (older tmpfs, some network filesystems),
//! every byte is written buffered.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::fcntl::OFlag;

/// Offsets, lengths and memory of direct writes are multiples of this,
/// which covers every common logical block size.
const ALIGNMENT: usize = 4096;
/// Bytes gathered before one direct write.
const STAGING_BYTES: usize = 2 << 20;

/// Staging buffers kept for reuse, so a chunk does not pay for fresh
/// zeroed memory.
const POOLED_BUFFERS: usize = 4;

/// A heap buffer whose usable part starts at an aligned address.
#[derive(Default)]
struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
}

impl AlignedBuffer {
    fn new() -> Self {
        let storage = vec![0; STAGING_BYTES + ALIGNMENT];
        let start = storage.as_ptr().align_offset(ALIGNMENT);
        AlignedBuffer { storage, start }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + STAGING_BYTES]
    }
}

/// Staging buffers of finished appends, shared by a store's uploads.
#[derive(Clone, Default)]
pub(crate) struct StagingPool(Arc<Mutex<Vec<AlignedBuffer>>>);

impl fmt::Debug for StagingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagingPool").finish_non_exhaustive()
    }
}

impl StagingPool {
    fn buffers(&self) -> MutexGuard<'_, Vec<AlignedBuffer>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> AlignedBuffer {
        self.buffers().pop().unwrap_or_else(AlignedBuffer::new)
    }

    fn give_back(&self, buffer: AlignedBuffer) {
        let mut buffers = self.buffers();
        if buffers.len() < POOLED_BUFFERS {
            buffers.push(buffer);
        }
    }
}

/// Writes a byte sequence to a file from a given offset on.
pub(crate) struct DirectAppender<'a> {
    buffered: &'a File,
    direct: Option<File>,
    staging: AlignedBuffer,
    pool: StagingPool,
    /// The file offset of the staging buffer's first byte; always aligned.
    base: u64,
    /// The staged bytes not yet written are `staging[from..filled]`.
    from: usize,
    filled: usize,
}

impl<'a> DirectAppender<'a> {
    /// Appends through `buffered` (open for writing, without `O_APPEND`)
    /// from offset `start` on, opening `path` once more for direct writes.
    pub(crate) fn new(buffered: &'a File, path: &Path, start: u64, pool: StagingPool) -> Self {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_DIRECT.bits())
            .open(path)
            .inspect_err(|error| {
                tracing::debug!(path = %path.display(), %error, "direct I/O unavailable; writing through the page cache");
            })
            .ok();
        let unaligned = (start % ALIGNMENT as u64) as usize;
        DirectAppender {
            buffered,
            direct,
            staging: pool.take(),
            pool,
            base: start - unaligned as u64,
            from: unaligned,
            filled: unaligned,
        }
    }

    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let take = bytes.len().min(STAGING_BYTES - self.filled);
            self.staging.bytes()[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == STAGING_BYTES {
                self.flush_aligned()?;
                self.base += STAGING_BYTES as u64;
                (self.from, self.filled) = (0, 0);
            }
        }
        Ok(())
    }

    /// Writes what is still staged.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.flush_aligned()?;
        let tail = self.from..self.filled;
        let offset = self.base + tail.start as u64;
        self.buffered
            .write_all_at(&self.staging.bytes()[tail], offset)
    }

    /// Writes the staged bytes up to the last aligned offset: an unaligned
    /// head buffered, the aligned rest directly.
    fn flush_aligned(&mut self) -> std::io::Result<()> {
        let head_end = self.from.next_multiple_of(ALIGNMENT).min(self.filled);
        if head_end > self.from {
            let offset = self.base + self.from as u64;
            self.buffered
                .write_all_at(&self.staging.bytes()[self.from..head_end], offset)?;
            self.from = head_end;
        }
        let aligned_end = self.filled - self.filled % ALIGNMENT;
        if aligned_end > self.from {
            let range = self.from..aligned_end;
            let offset = self.base + range.start as u64;
            let bytes = &self.staging.bytes()[range];
            let written = match &self.direct {
                Some(direct) => direct.write_all_at(bytes, offset),
                None => self.buffered.write_all_at(bytes, offset),
            };
            match written {
                Err(error) if error.kind() == ErrorKind::InvalidInput && self.direct.is_some() => {
                    tracing::debug!(%error, "direct write refused; writing through the page cache");
                    self.direct = None;
                    self.buffered.write_all_at(bytes, offset)?;
                }
                other => other?,
            }
            self.from = aligned_end;
        }
        Ok(())
    }
}

impl Drop for DirectAppender<'_> {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.staging));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `pieces` from `start` on to a file holding `start` bytes.
    fn append(start: usize, pieces: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("data");
        let existing: Vec<u8> = (0..start).map(|index| (index % 7) as u8).collect();
        std::fs::write(&path, &existing).expect("writing the start");
        let file = OpenOptions::new().write(true).open(&path).expect("opening");
        let mut appender = DirectAppender::new(&file, &path, start as u64, StagingPool::default());
        let mut expected = existing;
        for (number, length) in pieces.iter().enumerate() {
            let piece: Vec<u8> = (0..*length).map(|index| (index * 31 + number) as u8).collect();
            appender.write(&piece).expect("writing");
            expected.extend_from_slice(&piece);
        }
        appender.finish().expect("finishing");
        (std::fs::read(&path).expect("reading back"), expected)
    }

    #[test]
    fn every_alignment_of_start_and_length_lands_exactly() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (0, &[1]),
            (0, &[ALIGNMENT]),
            (0, &[STAGING_BYTES]),
            (0, &[STAGING_BYTES + 1, 3]),
            (1, &[ALIGNMENT - 1]),
            (100, &[10, 5000, STAGING_BYTES, 77]),
            (ALIGNMENT - 1, &[2, STAGING_BYTES * 2 + 5]),
            (3 * ALIGNMENT, &[STAGING_BYTES - 3 * ALIGNMENT, 1]),
            (STAGING_BYTES + 17, &[STAGING_BYTES]),
        ];
        for (start, pieces) in cases {
            let (written, expected) = append(*start, pieces);
            assert_eq!(written.len(), expected.len(), "start {start}, pieces {pieces:?}");
            assert!(written == expected, "start {start}, pieces {pieces:?}: bytes differ");
        }
    }
}
