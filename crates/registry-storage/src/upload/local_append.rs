//! Upload sessions on a local filesystem keep their bytes in one file that
//! each chunk is appended to, so closing an upload is a rename rather than
//! a copy. The file is locked while a chunk is appended, and a chunk that
//! fails midway is cut off again, so the file always holds exactly the
//! chunks that were acknowledged. Closing takes the same lock for the
//! rename, and a chunk checks, once it holds the lock, that the file is
//! still the session's: no write can reach a published blob.
//!
//! One blocking thread per chunk opens the file, writes every block and
//! then keeps or cuts off the chunk, so a chunk costs the request no more
//! thread hand-offs than it must.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::UploadError;
use crate::upload::block::Block;
use crate::upload::direct_write::DirectAppender;
use crate::upload::hashing::BlockSink;

/// Blocks queued for the writer thread.
const WRITE_QUEUE: usize = 2;

enum Message {
    Block(Arc<Block>),
    /// Every byte of the chunk was sent: keep it. A writer whose queue
    /// closes without this cuts the chunk off.
    Keep,
}

/// Appends blocks to an upload's data file on a blocking thread.
pub(crate) struct LocalAppender {
    written: u64,
    messages: tokio::sync::mpsc::Sender<Message>,
    writer: Option<tokio::task::JoinHandle<Result<(), UploadError>>>,
}

impl LocalAppender {
    /// Starts appending to the data file at `path` (created if missing),
    /// which must hold exactly `start` bytes; a file that does not, or that
    /// another chunk is being written to, fails the first write or `keep`.
    pub(crate) fn start(path: PathBuf, start: u64) -> Self {
        let (messages, mut queue) = tokio::sync::mpsc::channel::<Message>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            let file = open_locked(&path, start)?;
            let mut appender = DirectAppender::new(&file, &path, start);
            let written = loop {
                match queue.blocking_recv() {
                    Some(Message::Block(block)) => {
                        if let Err(error) = appender.write(&block) {
                            break Err(error);
                        }
                    }
                    Some(Message::Keep) => break Ok(()),
                    None => {
                        file.set_len(start)?;
                        return Ok(());
                    }
                }
            };
            if written.is_err() {
                file.set_len(start)?;
            }
            Ok(written?)
        });
        LocalAppender {
            written: 0,
            messages,
            writer: Some(writer),
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Waits until every byte is written and the chunk kept.
    pub(crate) async fn keep(mut self) -> Result<(), UploadError> {
        // A writer that stopped early says why when joined.
        let _ = self.messages.send(Message::Keep).await;
        self.join().await
    }

    /// Cuts the chunk off and waits until that is done.
    pub(crate) async fn discard(self) -> Result<(), UploadError> {
        let LocalAppender {
            messages, writer, ..
        } = self;
        drop(messages);
        match writer {
            Some(writer) => writer.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    async fn join(&mut self) -> Result<(), UploadError> {
        match self.writer.take() {
            Some(writer) => writer.await.map_err(std::io::Error::other)?,
            None => Err(std::io::Error::other("the upload writer stopped").into()),
        }
    }
}

/// Opens the data file (created by the first chunk only), locks it, and
/// checks that it is still the session's and holds `start` bytes.
fn open_locked(path: &Path, start: u64) -> Result<File, UploadError> {
    if start == 0
        && let Some(parent) = path.parent()
    {
        std::fs::create_dir_all(parent)?;
    }
    let file = match OpenOptions::new()
        .create(start == 0)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(UploadError::Unknown);
        }
        other => other?,
    };
    file.try_lock().map_err(|_| UploadError::Busy)?;
    // Closed (renamed into blobs/) or cancelled while this chunk waited.
    if !same_file(&file, path)? || !session_open(path) {
        return Err(UploadError::Unknown);
    }
    if file.metadata()?.len() != start {
        return Err(UploadError::Inconsistent);
    }
    Ok(file)
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether the session of the data file at `path` (`<session>/chunks/<file>`)
/// still has its `startedat`: a chunk arriving after the close must not
/// bring the session back.
fn session_open(path: &Path) -> bool {
    path.parent()
        .and_then(Path::parent)
        .is_some_and(|session| session.join("startedat").exists())
}

/// Publishes a session's data file as the blob at `target`: locked, so no
/// chunk is being appended, and holding exactly the `size` bytes hashed.
pub(crate) async fn publish(data: PathBuf, target: PathBuf, size: u64) -> Result<(), UploadError> {
    tokio::task::spawn_blocking(move || {
        let file = match File::open(&data) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(UploadError::Unknown);
            }
            other => other?,
        };
        file.try_lock().map_err(|_| UploadError::Busy)?;
        if file.metadata()?.len() != size {
            return Err(UploadError::Busy);
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&data, &target)?;
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

impl BlockSink for LocalAppender {
    async fn accept(&mut self, block: Arc<Block>) -> Result<(), UploadError> {
        let length = block.data().len() as u64;
        if self.messages.send(Message::Block(block)).await.is_err() {
            return Err(match self.join().await {
                Err(error) => error,
                Ok(()) => std::io::Error::other("the upload writer stopped").into(),
            });
        }
        self.written += length;
        Ok(())
    }
}
