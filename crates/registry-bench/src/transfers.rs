//! Blob pushes (monolithic, chunked) and pulls over HTTP, timed from the
//! first request to the last byte, reading and writing the same file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use rand::RngCore;
use registry_core::{Algorithm, Digest, DigestHasher};

use crate::raw_http::{self, Connection, FileBody, Response};

const REPOSITORY: &str = "bench/blob";
const READ_SIZE: usize = 1 << 20;

/// A large blob on disk; `vary` gives it new content (and digest) so every
/// push stores a blob the registry has not seen.
#[derive(Clone, Debug)]
pub struct BlobFile {
    pub path: PathBuf,
    pub size: u64,
    pub digest: Digest,
    variant: u64,
}

impl BlobFile {
    pub fn create(path: &Path, size: u64) -> anyhow::Result<Self> {
        let mut file = std::fs::File::create(path)?;
        let mut piece = vec![0u8; 8 << 20];
        let mut written = 0;
        while written < size {
            rand::rng().fill_bytes(&mut piece);
            let take = piece.len().min((size - written) as usize);
            file.write_all(&piece[..take])?;
            written += take as u64;
        }
        let mut blob = BlobFile {
            path: path.to_owned(),
            size,
            digest: Digest::sha256_of(b""),
            variant: 0,
        };
        blob.digest = blob.hash()?;
        Ok(blob)
    }

    pub fn vary(&mut self) -> anyhow::Result<()> {
        self.variant += 1;
        let mut file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        file.write_all(&self.variant.to_le_bytes())?;
        self.digest = self.hash()?;
        Ok(())
    }

    fn hash(&self) -> anyhow::Result<Digest> {
        let mut hasher = DigestHasher::new(Algorithm::Sha256);
        let mut file = std::fs::File::open(&self.path)?;
        let mut buffer = vec![0u8; READ_SIZE];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok(hasher.finish());
            }
            hasher.update(&buffer[..read]);
        }
    }
}

fn mib_per_second(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

/// An absolute URL for a `Location` that may be relative.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// Runs a blocking raw request off the async threads.
async fn send(
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
) -> anyhow::Result<Response> {
    tokio::task::spawn_blocking(move || raw_http::request(method, &url, &headers, None)).await?
}

/// One push on one keep-alive connection, run off the async threads.
struct Push<'a> {
    base: &'a str,
    blob: &'a BlobFile,
    connection: Connection,
}

const OCTET_STREAM: (&str, &str) = ("Content-Type", "application/octet-stream");

impl<'a> Push<'a> {
    fn open(base: &'a str, blob: &'a BlobFile) -> anyhow::Result<Self> {
        let host = base.strip_prefix("http://").context("only http:// URLs")?;
        Ok(Push {
            base,
            blob,
            connection: Connection::open(host)?,
        })
    }

    /// `POST` a session; returns its absolute location.
    fn start(&mut self) -> anyhow::Result<String> {
        let url = format!("{}/v2/{REPOSITORY}/blobs/uploads/", self.base);
        let response = self.connection.request("POST", &url, &[], None)?;
        response.expect(202, &format!("{}: upload start", self.base))?;
        self.next_location(&response)
    }

    fn next_location(&self, response: &Response) -> anyhow::Result<String> {
        let location = response.header("location").context("no Location")?;
        Ok(resolve(self.base, location))
    }

    /// Sends `length` bytes of the blob from `offset` on.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        offset: u64,
        length: u64,
    ) -> anyhow::Result<Response> {
        let body = FileBody {
            path: &self.blob.path,
            offset,
            length,
        };
        self.connection.request(method, url, headers, Some(body))
    }
}

/// Runs a whole push on a blocking thread; returns MiB/s.
async fn timed_push(
    base: &str,
    blob: &BlobFile,
    push: impl FnOnce(&mut Push<'_>) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<f64> {
    let (base, blob) = (base.to_owned(), blob.clone());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        push(&mut Push::open(&base, &blob)?)?;
        Ok(mib_per_second(blob.size, started))
    })
    .await?
}

/// `POST` a session, then one `PUT ?digest=` with the whole blob.
pub async fn push_monolithic(base: &str, blob: &BlobFile) -> anyhow::Result<f64> {
    timed_push(base, blob, |push| {
        let location = push.start()?;
        let url = with_digest(&location, &push.blob.digest);
        let headers = [(OCTET_STREAM.0, OCTET_STREAM.1.to_owned())];
        let response = push.send("PUT", &url, &headers, 0, push.blob.size)?;
        response.expect(201, &format!("{}: monolithic push", push.base))?;
        Ok(())
    })
    .await
}

/// `POST`, one `PATCH` per chunk of `chunk` bytes with `Content-Range`, then
/// `PUT ?digest=`.
pub async fn push_chunked(base: &str, blob: &BlobFile, chunk: u64) -> anyhow::Result<f64> {
    timed_push(base, blob, move |push| {
        let mut location = push.start()?;
        let mut offset = 0;
        while offset < push.blob.size {
            let length = chunk.min(push.blob.size - offset);
            let headers = [
                (OCTET_STREAM.0, OCTET_STREAM.1.to_owned()),
                ("Content-Range", format!("{offset}-{}", offset + length - 1)),
            ];
            let response = push.send("PATCH", &location, &headers, offset, length)?;
            response.expect(202, &format!("{}: chunk at {offset}", push.base))?;
            location = push.next_location(&response)?;
            offset += length;
        }
        let url = with_digest(&location, &push.blob.digest);
        let response = push.connection.request("PUT", &url, &[], None)?;
        response.expect(201, &format!("{}: closing the upload", push.base))?;
        Ok(())
    })
    .await
}

/// `GET` a pushed blob, counting every byte.
pub async fn pull(base: &str, digest: &Digest, size: u64) -> anyhow::Result<f64> {
    download(&format!("{base}/v2/{REPOSITORY}/blobs/{digest}"), size).await
}

/// Downloads `url`, following a redirect to the store as clients do,
/// discarding the bytes; MiB/s, the redirect's round trip included.
pub async fn download(url: &str, expected: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut response = send("GET", url.to_owned(), Vec::new()).await?;
    if let (307 | 302, Some(location)) = (response.status, response.header("location")) {
        response = send("GET", location.to_owned(), Vec::new()).await?;
    }
    response.expect(200, &format!("GET {url}"))?;
    ensure!(
        response.body_bytes == expected,
        "received {} of {expected} bytes",
        response.body_bytes
    );
    Ok(mib_per_second(expected, started))
}
