//! Blob pushes (monolithic, chunked) and pulls over HTTP, timed from the
//! first request to the last byte, reading and writing the same file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use rand::RngCore;
use registry_core::{Algorithm, Digest, DigestHasher};

use crate::raw_http::{self, FileBody, Response};

const REPOSITORY: &str = "bench/blob";
const READ_SIZE: usize = 1 << 20;

/// A large blob on disk; `vary` gives it new content (and digest) so every
/// push stores a blob the registry has not seen.
#[derive(Debug)]
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
    body: Option<(PathBuf, u64, u64)>,
) -> anyhow::Result<Response> {
    tokio::task::spawn_blocking(move || {
        let body = body.as_ref().map(|(path, offset, length)| FileBody {
            path,
            offset: *offset,
            length: *length,
        });
        raw_http::request(method, &url, &headers, body)
    })
    .await?
}

async fn start_upload(base: &str) -> anyhow::Result<String> {
    let response = send(
        "POST",
        format!("{base}/v2/{REPOSITORY}/blobs/uploads/"),
        Vec::new(),
        None,
    )
    .await?;
    ensure!(
        response.status == 202,
        "upload start answered {}",
        response.status
    );
    Ok(resolve(
        base,
        response.header("location").context("no Location")?,
    ))
}

const OCTET_STREAM: (&str, &str) = ("Content-Type", "application/octet-stream");

/// `POST` a session, then one `PUT ?digest=` with the whole blob.
pub async fn push_monolithic(base: &str, blob: &BlobFile) -> anyhow::Result<f64> {
    let started = Instant::now();
    let location = start_upload(base).await?;
    let headers = vec![(OCTET_STREAM.0, OCTET_STREAM.1.to_owned())];
    let body = Some((blob.path.clone(), 0, blob.size));
    let response = send("PUT", with_digest(&location, &blob.digest), headers, body).await?;
    ensure!(
        response.status == 201,
        "monolithic push answered {}",
        response.status
    );
    Ok(mib_per_second(blob.size, started))
}

/// `POST`, one `PATCH` per chunk with `Content-Range`, then `PUT ?digest=`.
pub async fn push_chunked(base: &str, blob: &BlobFile, chunk: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut location = start_upload(base).await?;
    let mut offset = 0;
    while offset < blob.size {
        let length = chunk.min(blob.size - offset);
        let headers = vec![
            (OCTET_STREAM.0, OCTET_STREAM.1.to_owned()),
            ("Content-Range", format!("{offset}-{}", offset + length - 1)),
        ];
        let response = send(
            "PATCH",
            location.clone(),
            headers,
            Some((blob.path.clone(), offset, length)),
        )
        .await?;
        if response.status != 202 {
            bail!("chunk at {offset} answered {}", response.status);
        }
        location = resolve(base, response.header("location").context("no Location")?);
        offset += length;
    }
    let response = send(
        "PUT",
        with_digest(&location, &blob.digest),
        Vec::new(),
        None,
    )
    .await?;
    ensure!(
        response.status == 201,
        "closing the upload answered {}",
        response.status
    );
    Ok(mib_per_second(blob.size, started))
}

/// `GET` a pushed blob, counting every byte.
pub async fn pull(base: &str, digest: &Digest, size: u64) -> anyhow::Result<f64> {
    download(&format!("{base}/v2/{REPOSITORY}/blobs/{digest}"), size).await
}

/// Downloads `url`, discarding the bytes; MiB/s.
pub async fn download(url: &str, expected: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let response = send("GET", url.to_owned(), Vec::new(), None).await?;
    ensure!(
        response.status == 200,
        "GET {url} answered {}",
        response.status
    );
    ensure!(
        response.body_bytes == expected,
        "received {} of {expected} bytes",
        response.body_bytes
    );
    Ok(mib_per_second(expected, started))
}
