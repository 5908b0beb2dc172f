//! Upload sessions on a local filesystem keep their bytes in one file that
//! each chunk is appended to, so closing an upload is a rename rather than
//! a copy. The file is locked while a chunk is appended, and a chunk that
//! fails midway is cut off again, so the file always holds exactly the
//! chunks that were acknowledged.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use bytes::Bytes;

use crate::UploadError;
use crate::direct_write::DirectAppender;
use crate::hashing::PieceSink;

/// Batches queued for the writer thread.
const WRITE_QUEUE: usize = 16;

/// Appends pieces to an upload's data file on a blocking thread.
pub(crate) struct LocalAppender {
    start: u64,
    written: u64,
    batches: Option<tokio::sync::mpsc::Sender<Vec<Bytes>>>,
    writer: tokio::task::JoinHandle<(File, std::io::Result<()>)>,
}

impl LocalAppender {
    /// Opens (or creates) the data file, locks it, and checks it holds
    /// exactly `start` bytes.
    pub(crate) async fn open(path: PathBuf, start: u64) -> Result<Self, UploadError> {
        let file = tokio::task::spawn_blocking(move || -> Result<(File, PathBuf), UploadError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.try_lock().map_err(|_| UploadError::Busy)?;
            if file.metadata()?.len() != start {
                return Err(UploadError::Inconsistent);
            }
            Ok((file, path))
        })
        .await
        .map_err(std::io::Error::other)??;
        let (batches, mut queue) = tokio::sync::mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            let (file, path) = file;
            let mut appender = DirectAppender::new(&file, &path, start);
            while let Some(batch) = queue.blocking_recv() {
                for piece in batch {
                    if let Err(error) = appender.write(&piece) {
                        return (file, Err(error));
                    }
                }
            }
            let finished = appender.finish();
            (file, finished)
        });
        Ok(LocalAppender {
            start,
            written: 0,
            batches: Some(batches),
            writer,
        })
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Waits for every queued byte to be written. On failure (or when
    /// `keep` is false) the file is cut back to where this chunk started.
    pub(crate) async fn close(mut self, keep: bool) -> Result<(), UploadError> {
        self.batches.take();
        let start = self.start;
        let (file, written) = (&mut self.writer).await.map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || -> Result<(), UploadError> {
            if !keep || written.is_err() {
                file.set_len(start)?;
            }
            Ok(written?)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl PieceSink for LocalAppender {
    async fn accept(&mut self, batch: Vec<Bytes>) -> Result<(), UploadError> {
        let length: u64 = batch.iter().map(|piece| piece.len() as u64).sum();
        let sent = match &self.batches {
            Some(batches) => batches.send(batch).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(std::io::Error::other("the upload writer stopped").into());
        }
        self.written += length;
        Ok(())
    }
}
