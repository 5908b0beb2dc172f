//! Reading a blob from a local file: on a blocking thread, in pieces of
//! [`PIECE_BYTES`] a few ahead of the network, with the disk asked for the
//! bytes further ahead. A piece's memory comes from a pool and returns to
//! it once the piece is sent, so a pull neither zeroes nor faults in fresh
//! memory for each piece (on this project's benchmark VM, where memory the
//! guest frees goes back to the host, that was a sixth of a warm pull's
//! CPU). A piece shows only the bytes its own read filled.

use std::io::{Read, Seek};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

/// Read size: large enough to keep a pull near the speed of a plain file
/// copy, small enough that many pulls at once hold little memory (the disk
/// is kept busy by [`DISK_READ_AHEAD`], not by the size of each read).
const PIECE_BYTES: usize = 512 * 1024;
/// Pieces read ahead of the network, so reading and sending overlap: with
/// the piece being read and the one being sent, a pull holds at most about
/// 2.5 MiB.
const PIECES_AHEAD: usize = 3;
/// Pieces' memory kept for reuse once returned (8 MiB): enough for about
/// four pulls at once to take none fresh.
const POOLED_PIECES: usize = 16;
/// Bytes the disk is asked for ahead of the reads. A blob written past the
/// page cache (every pushed blob, see `upload::direct_write`) is cold on
/// its first pull; one `read` at a time gets the disk's speed at a queue
/// depth of one (362 MB/s here), while asking for the next 64 MiB at once
/// lets it work on many requests together (1.7 GB/s).
const DISK_READ_AHEAD: u64 = 64 << 20;

/// Returned pieces' memory, shared by a store's pulls.
#[derive(Clone, Debug, Default)]
pub(crate) struct PiecePool(Arc<Mutex<Vec<Vec<u8>>>>);

impl PiecePool {
    /// Memory for one piece, [`PIECE_BYTES`] long.
    fn take(&self) -> Vec<u8> {
        let pooled = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        pooled.unwrap_or_else(|| vec![0; PIECE_BYTES])
    }

    fn give_back(&self, memory: Vec<u8>) {
        let mut pooled = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pooled.len() < POOLED_PIECES {
            pooled.push(memory);
        }
    }

    /// Streams `range` of `file`.
    pub(crate) fn read_ahead(
        &self,
        file: std::fs::File,
        range: Range<u64>,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        let (pieces, receiver) = tokio::sync::mpsc::channel(PIECES_AHEAD);
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            if let Err(error) = file.seek(std::io::SeekFrom::Start(range.start)) {
                let _ = pieces.blocking_send(Err(error));
                return;
            }
            let mut remaining = range.end - range.start;
            let mut advised_to = range.start;
            while remaining > 0 {
                let position = range.end - remaining;
                if position + DISK_READ_AHEAD / 2 >= advised_to && advised_to < range.end {
                    advise_will_need(&file, advised_to, range.end);
                    advised_to = range.end.min(advised_to + DISK_READ_AHEAD);
                }
                let wanted = remaining.min(PIECE_BYTES as u64) as usize;
                let message = pool.read_piece(&mut file, wanted).inspect(|piece| {
                    remaining -= piece.len() as u64;
                });
                let failed = message.is_err();
                if pieces.blocking_send(message).is_err() || failed {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver).boxed()
    }

    /// One `read` of at most `wanted` bytes into pooled memory; an error at
    /// the end of the file, which holds fewer bytes than the blob's size.
    fn read_piece(&self, file: &mut std::fs::File, wanted: usize) -> std::io::Result<Bytes> {
        let mut piece = Piece {
            memory: self.take(),
            length: 0,
            pool: self.clone(),
        };
        match file.read(&mut piece.memory[..wanted])? {
            0 => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than its size",
            )),
            read => {
                piece.length = read;
                Ok(Bytes::from_owner(piece))
            }
        }
    }
}

/// The bytes one read filled, in pooled memory that returns when dropped.
struct Piece {
    memory: Vec<u8>,
    length: usize,
    pool: PiecePool,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.memory[..self.length]
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.memory));
    }
}

/// Asks the kernel to start reading `[from, from + DISK_READ_AHEAD)` (not
/// past `end`) into the page cache; pages already there cost nothing. Only
/// advice: a refusal changes nothing but speed.
fn advise_will_need(file: &std::fs::File, from: u64, end: u64) {
    let length = DISK_READ_AHEAD.min(end - from);
    let (Ok(offset), Ok(length)) = (i64::try_from(from), i64::try_from(length)) else {
        return;
    };
    if let Err(error) = nix::fcntl::posix_fadvise(
        file,
        offset,
        length,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
    ) {
        tracing::debug!(%error, "read-ahead advice refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn file_of(directory: &std::path::Path, name: &str, bytes: &[u8]) -> std::fs::File {
        let path = directory.join(name);
        std::fs::write(&path, bytes).expect("writing the file");
        std::fs::File::open(&path).expect("opening the file")
    }

    async fn read(
        pool: &PiecePool,
        file: std::fs::File,
        range: Range<u64>,
    ) -> std::io::Result<Vec<u8>> {
        let pieces: Vec<Bytes> = pool.read_ahead(file, range).try_collect().await?;
        Ok(pieces.concat())
    }

    /// Memory that held one blob's bytes serves the next blob's pieces
    /// without a stale byte showing: shorter files, ranges that end inside
    /// a piece, and pieces read while earlier ones are still held.
    #[tokio::test]
    async fn reused_memory_shows_only_what_each_read_filled() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let pool = PiecePool::default();
        let long: Vec<u8> = (0..3 * PIECE_BYTES + 17)
            .map(|index| (index % 251) as u8)
            .collect();
        let short: Vec<u8> = (0..PIECE_BYTES / 3)
            .map(|index| (index % 13) as u8 + 100)
            .collect();
        let size = long.len() as u64;
        assert_eq!(
            read(&pool, file_of(directory.path(), "long", &long), 0..size)
                .await
                .expect("long"),
            long
        );
        let held: Vec<Bytes> = pool
            .read_ahead(file_of(directory.path(), "held", &long), 0..size)
            .try_collect()
            .await
            .expect("held");
        let short_size = short.len() as u64;
        assert_eq!(
            read(
                &pool,
                file_of(directory.path(), "short", &short),
                0..short_size
            )
            .await
            .expect("short"),
            short
        );
        let from = PIECE_BYTES as u64 - 5;
        assert_eq!(
            read(
                &pool,
                file_of(directory.path(), "range", &long),
                from..from + 11
            )
            .await
            .expect("range"),
            long[from as usize..from as usize + 11]
        );
        assert_eq!(held.concat(), long, "pieces still held keep their bytes");
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_is_an_error_not_a_short_answer() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let pool = PiecePool::default();
        let bytes = vec![7u8; PIECE_BYTES + 10];
        let error = read(
            &pool,
            file_of(directory.path(), "cut", &bytes),
            0..bytes.len() as u64 + 1,
        )
        .await
        .expect_err("a cut file");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
