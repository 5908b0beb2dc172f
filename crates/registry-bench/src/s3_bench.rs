//! Berth and docker-registry each under its own prefix of one bucket of
//! `moto_server` (an in-memory S3 on loopback): monolithic and chunked
//! pushes and pulls of one blob, where a store that answers over HTTP
//! makes every extra crossing of the bytes show. Pulls are measured twice:
//! with each registry serving the bytes, and with each redirecting clients
//! to presigned URLs of the store (docker-registry's default on S3,
//! Berth's `--redirect-blobs`).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use registry_storage::Store;
use test_support::{start_docker_registry_on_s3, start_moto};

use crate::report::Report;
use crate::transfers::{self, BlobFile};

const BUCKET: &str = "berth-bench";

/// What the S3 part is run with.
pub struct S3Workload {
    pub blob_mib: u64,
    pub chunk_mib: u64,
    pub repetitions: usize,
}

pub async fn compare(
    binary: &Path,
    work: &Path,
    workload: &S3Workload,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (moto, storage) = start_moto(BUCKET, "berth")
        .await
        .context("moto_server is not installed: pip install 'moto[server]'")?;
    let not_installed = "docker-registry is not installed: apt-get install docker-registry";
    let distribution = start_docker_registry_on_s3(work, &moto.url, (BUCKET, "dr"), false)
        .await
        .context(not_installed)?;
    let redirecting_distribution =
        start_docker_registry_on_s3(work, &moto.url, (BUCKET, "dr"), true)
            .await
            .context(not_installed)?;
    let berth = crate::start_berth(binary, storage.as_ref()).await;
    let redirecting_berth =
        crate::start_berth_with(binary, storage.as_ref(), &["--redirect-blobs", "5m"]).await;

    let mut blob = BlobFile::create(&work.join("s3-blob"), workload.blob_mib << 20)?;
    let chunk = workload.chunk_mib << 20;
    let mut ceiling = Vec::new();
    let mut figures: [[Vec<f64>; 2]; 4] = Default::default();
    let [monolithic, chunked, pulls, redirected_pulls] = &mut figures;
    for repetition in 0..workload.repetitions {
        eprintln!("s3 round {}/{}", repetition + 1, workload.repetitions);
        blob.vary()?;
        ceiling.push(store_ceiling(&storage, &blob).await?);
        let pairs = [
            (&berth, &redirecting_berth),
            (&distribution, &redirecting_distribution),
        ];
        for (index, (server, redirecting)) in pairs.into_iter().enumerate() {
            blob.vary()?;
            monolithic[index].push(transfers::push_monolithic(&server.url, &blob).await?);
            pulls[index].push(transfers::pull(&server.url, &blob.digest, blob.size).await?);
            redirected_pulls[index]
                .push(transfers::pull(&redirecting.url, &blob.digest, blob.size).await?);
            blob.vary()?;
            chunked[index].push(transfers::push_chunked(&server.url, &blob, chunk).await?);
        }
    }
    let label = format!("s3 (moto), {} MiB blob", workload.blob_mib);
    report.baseline(
        &format!("{label}: written straight into the store, no HTTP in front"),
        crate::report::median(&ceiling),
    );
    report.pair(&format!("{label}: monolithic push (MiB/s)"), monolithic);
    let chunks = workload.chunk_mib;
    report.compare(
        &format!("{label}: push in {chunks} MiB chunks (MiB/s)"),
        chunked,
        2.5,
    );
    report.pair(&format!("{label}: pull (MiB/s)"), pulls);
    report.pair(
        &format!("{label}: pull redirected to the store (MiB/s)"),
        redirected_pulls,
    );
    report.info(
        &format!("{label}: berth peak resident memory (MiB)"),
        crate::peak_rss_mib(berth.pid())?,
    );
    report.info(
        &format!("{label}: docker-registry peak resident memory (MiB)"),
        crate::peak_rss_mib(distribution.pid())?,
    );
    Ok(())
}

/// MiB/s of the blob written straight into the store through Berth's
/// storage layer (the multipart writer a push uses, with its hashing, no
/// HTTP in front): what the store itself takes from one writer.
async fn store_ceiling(storage: &str, blob: &BlobFile) -> anyhow::Result<f64> {
    let store = Store::open(storage)?;
    let file = tokio::fs::File::open(&blob.path).await?;
    let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).boxed();
    let started = Instant::now();
    store
        .put_blob(&"bench/ceiling".parse()?, &blob.digest, body)
        .await?;
    Ok(blob.size as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64())
}
