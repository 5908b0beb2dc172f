//! Reading a blob from a local file, in pieces of [`PIECE_BYTES`], each
//! read on the blocking pool and the next read while one is sent. A pull
//! holds a blocking thread only while a piece is being read, never while
//! its client is slow to take the bytes: slow clients cannot take every
//! blocking thread from the rest of the registry, and one holds at most
//! [`PIECES_AHEAD`] pieces. The disk is asked for the bytes further ahead.
//!
//! A piece's memory comes from a pool and returns to it once the piece is
//! sent, so a pull neither zeroes nor faults in fresh memory for each
//! piece (on this project's benchmark VM, where memory the guest frees goes
//! back to the host, that was a sixth of a warm pull's CPU). Memory beyond
//! the pool is mapped for the piece alone and unmapped after it, so a burst
//! of pulls leaves nothing resident. A piece shows only the bytes its own
//! read filled. All pulls together hold at most a budget of pieces.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use memmap2::MmapMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::region_pool::RegionPool;

/// Read size: large enough to keep a pull near the speed of a plain file
/// copy, small enough that many pulls at once hold little memory (the disk
/// is kept busy by [`DISK_READ_AHEAD`], not by the size of each read).
const PIECE_BYTES: usize = 512 * 1024;
/// Pieces of one pull in memory at once: the one being sent and the next,
/// being read meanwhile.
const PIECES_AHEAD: usize = 2;
/// Pieces' memory kept for reuse once returned (8 MiB): enough for about
/// four pulls at once to take none fresh.
const POOLED_PIECES: usize = 16;
/// Bytes the disk is asked for ahead of the reads, in steps of half this.
/// A blob written past the page cache (every pushed blob, see
/// `upload::direct_write`) is cold on its first pull; one `read` at a time
/// gets the disk's speed at a queue depth of one (362 MB/s here), while
/// asking for the next 64 MiB at once lets it work on many requests
/// together (1.7 GB/s).
const DISK_READ_AHEAD: u64 = 64 << 20;

/// Memory all pulls together may hold in pieces, unless configured (MiB).
pub const DEFAULT_PULL_MEMORY_MIB: u64 = 256;

/// Returned pieces' memory, shared by a store's pulls, and the budget of
/// pieces all of them may hold at once: a pull whose next piece would go
/// over it waits until another's piece is sent. Clients that take nothing
/// (stalled, or slow on purpose, behind an edge whose address they all
/// share) thus hold at most the budget, however many they are.
#[derive(Clone, Debug)]
pub(crate) struct PiecePool {
    pooled: RegionPool,
    budget: Arc<Semaphore>,
    /// Whether a pull is waiting for the budget (logged once each time).
    spent_out: Arc<AtomicBool>,
}

impl Default for PiecePool {
    fn default() -> Self {
        PiecePool::with_budget(DEFAULT_PULL_MEMORY_MIB << 20)
    }
}

impl PiecePool {
    /// A pool whose pieces hold at most `bytes` at once (never less than
    /// one pull's [`PIECES_AHEAD`]).
    pub(crate) fn with_budget(bytes: u64) -> Self {
        let pieces =
            (bytes / PIECE_BYTES as u64).clamp(PIECES_AHEAD as u64, Semaphore::MAX_PERMITS as u64);
        PiecePool {
            pooled: RegionPool::new(POOLED_PIECES),
            budget: Arc::new(Semaphore::new(pieces as usize)),
            spent_out: Arc::default(),
        }
    }

    /// A piece's share of the budget, once there is one.
    async fn spend(&self) -> std::io::Result<OwnedSemaphorePermit> {
        if let Ok(spent) = self.budget.clone().try_acquire_owned() {
            self.spent_out.store(false, Ordering::Relaxed);
            return Ok(spent);
        }
        if !self.spent_out.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "blob pulls hold all of --max-pull-memory-mib; pulls wait for pieces to be sent (clients slow to take them?)"
            );
        }
        self.budget
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)
    }

    /// Streams `range` of `file`; after an error, nothing more.
    pub(crate) fn read_ahead(
        &self,
        file: std::fs::File,
        range: Range<u64>,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        let file = Arc::new(file);
        let pool = self.clone();
        let end = range.end;
        futures::stream::iter(range.clone().step_by(PIECE_BYTES))
            .map(move |at| {
                let (file, pool) = (file.clone(), pool.clone());
                let wanted = (end - at).min(PIECE_BYTES as u64) as usize;
                let advise = (at - range.start).is_multiple_of(DISK_READ_AHEAD / 2);
                async move {
                    let spent = pool.spend().await?;
                    tokio::task::spawn_blocking(move || {
                        if advise {
                            advise_will_need(&file, at, end);
                        }
                        pool.read_piece(&file, at, wanted, spent)
                    })
                    .await
                    .map_err(std::io::Error::other)?
                }
            })
            .buffered(PIECES_AHEAD)
            .scan(false, |failed, piece| {
                let give = (!*failed).then_some(piece);
                *failed = give.as_ref().is_none_or(Result::is_err);
                std::future::ready(give)
            })
            .boxed()
    }

    /// The `wanted` bytes at `at`, in pooled memory; an error where the
    /// file ends first (it holds fewer bytes than the blob's size).
    fn read_piece(
        &self,
        file: &std::fs::File,
        at: u64,
        wanted: usize,
        spent: OwnedSemaphorePermit,
    ) -> std::io::Result<Bytes> {
        let mut memory = self.pooled.take(|| MmapMut::map_anon(PIECE_BYTES))?;
        file.read_exact_at(&mut memory[..wanted], at)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::UnexpectedEof => std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob file is shorter than its size",
                ),
                _ => error,
            })?;
        Ok(Bytes::from_owner(Piece {
            memory: Some(memory),
            length: wanted,
            pool: self.pooled.clone(),
            _spent: spent,
        }))
    }
}

impl crate::Store {
    /// Lets pulls from a local store hold at most `mib` MiB of pieces at
    /// once, all together; more wait until pieces are sent.
    pub fn limit_pull_memory(&mut self, mib: u64) {
        self.pieces = PiecePool::with_budget(mib.saturating_mul(1 << 20));
    }
}

/// The bytes one read filled, in pooled memory that returns when dropped,
/// with its share of the pulls' budget.
struct Piece {
    memory: Option<MmapMut>,
    length: usize,
    pool: RegionPool,
    _spent: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        self.memory
            .as_ref()
            .map_or(&[], |memory| &memory[..self.length])
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        if let Some(memory) = self.memory.take() {
            self.pool.give_back(memory);
        }
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

    /// Pulls whose clients take nothing hold no blocking thread: with the
    /// blocking pool at two threads and four pulls stalled after their
    /// first piece, other work still gets a thread (a reader that waited
    /// on its client used to keep its thread, so 512 slow clients froze
    /// every request that touches the disk).
    #[test]
    fn stalled_pulls_leave_the_blocking_threads_free() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let directory = tempfile::tempdir().expect("temporary directory");
            let pool = PiecePool::default();
            let bytes = vec![3u8; 8 * PIECE_BYTES];
            let mut stalled = Vec::new();
            for index in 0..4 {
                let file = file_of(directory.path(), &format!("stalled-{index}"), &bytes);
                let mut pull = pool.read_ahead(file, 0..bytes.len() as u64);
                let first = tokio::time::timeout(std::time::Duration::from_secs(5), pull.next())
                    .await
                    .expect("stalled pulls held every blocking thread")
                    .expect("a first piece")
                    .expect("read");
                assert_eq!(first.len(), PIECE_BYTES);
                stalled.push(pull);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let other = tokio::task::spawn_blocking(|| "ran");
            let answered = tokio::time::timeout(std::time::Duration::from_secs(5), other).await;
            assert!(answered.is_ok(), "stalled pulls held every blocking thread");
            drop(stalled);
        });
    }

    /// Pieces held by clients that take nothing count against the budget
    /// of every pull together: once it is spent, the next pull waits for a
    /// piece to be sent instead of taking more memory (690 stalled pulls
    /// used to hold 700 MiB), and goes on as soon as one is.
    #[tokio::test]
    async fn stalled_pulls_wait_within_the_memory_budget() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let pool = PiecePool::with_budget(3 * PIECE_BYTES as u64);
        let bytes = vec![5u8; 4 * PIECE_BYTES];
        let size = bytes.len() as u64;
        let mut stalled = pool.read_ahead(file_of(directory.path(), "stalled", &bytes), 0..size);
        let first = stalled.next().await.expect("a piece").expect("read");
        let mut other = pool.read_ahead(file_of(directory.path(), "other", &bytes), 0..size);
        let second = other.next().await.expect("a piece").expect("read");
        // The stalled pull holds its first piece and the one read ahead.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(300), other.next()).await;
        assert!(waited.is_err(), "a piece was read past the budget");
        drop((first, second));
        let sent = other.try_fold(0, |sent, piece| async move { Ok(sent + piece.len()) });
        let rest = tokio::time::timeout(std::time::Duration::from_secs(5), sent)
            .await
            .expect("the budget freed once pieces were sent")
            .expect("read");
        assert_eq!(rest, 3 * PIECE_BYTES);
        drop(stalled);
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
