//! Many clients at once, as a CI fleet pushes and a deployment pulls:
//! N concurrent monolithic pushes of distinct 32 MiB blobs, then N
//! concurrent pulls of distinct 64 MiB blobs right after their push and
//! once more, each client on its own connection, for each N, both
//! registries in turn. Aggregate MiB/s, and
//! Berth's peak resident memory once each N has run (so run this part
//! alone for memory figures: the peak covers the whole run so far).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::report::Report;
use crate::transfers::{self, BlobFile};
use crate::{Registries, forget_blob, peak_rss_mib};

const PUSH_MIB: u64 = 32;
const PULL_MIB: u64 = 64;

/// `count` distinct blobs of `mib` MiB under `directory`.
fn blobs(directory: &Path, prefix: &str, count: usize, mib: u64) -> anyhow::Result<Vec<BlobFile>> {
    (0..count)
        .map(|index| BlobFile::create(&directory.join(format!("{prefix}-{index}")), mib << 20))
        .collect()
}

/// Aggregate MiB/s of everything `run` moves at once.
async fn aggregate<'a, F>(
    blobs: &'a [BlobFile],
    run: impl Fn(&'a BlobFile) -> F,
) -> anyhow::Result<f64>
where
    F: Future<Output = anyhow::Result<f64>>,
{
    let started = Instant::now();
    futures::future::try_join_all(blobs.iter().map(run)).await?;
    let bytes: u64 = blobs.iter().map(|blob| blob.size).sum();
    Ok(bytes as f64 / f64::from(1 << 20) / started.elapsed().as_secs_f64())
}

pub async fn compare(
    registries: &Registries,
    scratch: &Path,
    clients: &[usize],
    report: &mut Report,
) -> anyhow::Result<()> {
    for &count in clients {
        eprintln!("concurrency: {count} pushes of {PUSH_MIB} MiB");
        let pushed = blobs(scratch, "push", count, PUSH_MIB)?;
        let mut pushes = [Vec::new(), Vec::new()];
        for (index, (_, server, root)) in registries.servers().into_iter().enumerate() {
            pushes[index].push(
                aggregate(&pushed, |blob| {
                    transfers::push_monolithic(&server.url, blob)
                })
                .await?,
            );
            for blob in &pushed {
                forget_blob(root, &blob.digest)?;
            }
        }
        remove(&pushed)?;
        report.compare(
            &format!("{count} concurrent pushes of distinct {PUSH_MIB} MiB blobs (MiB/s)"),
            &pushes,
            4.0,
        );

        eprintln!("concurrency: {count} pulls of {PULL_MIB} MiB");
        let pulled = blobs(scratch, "pull", count, PULL_MIB)?;
        let (mut first_pulls, mut pulls) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for (index, (_, server, root)) in registries.servers().into_iter().enumerate() {
            for blob in &pulled {
                transfers::push_monolithic(&server.url, blob).await?;
            }
            for round in [&mut first_pulls, &mut pulls] {
                round[index].push(
                    aggregate(&pulled, |blob| {
                        transfers::pull(&server.url, &blob.digest, blob.size)
                    })
                    .await?,
                );
            }
            for blob in &pulled {
                forget_blob(root, &blob.digest)?;
            }
        }
        remove(&pulled)?;
        report.compare(
            &format!(
                "{count} concurrent pulls of distinct {PULL_MIB} MiB blobs, right after their push (MiB/s)"
            ),
            &first_pulls,
            1.0,
        );
        report.compare(
            &format!("{count} concurrent pulls of the same blobs again (MiB/s)"),
            &pulls,
            1.3,
        );
        let limit = if count <= 8 { 64.0 } else { 192.0 };
        report.ceiling(
            &format!("berth peak resident memory after {count} concurrent clients (MiB)"),
            peak_rss_mib(registries.berth.pid())?,
            limit,
        );
        report.info(
            &format!("docker-registry peak resident memory after {count} concurrent clients (MiB)"),
            peak_rss_mib(registries.distribution.pid())?,
        );
    }
    Ok(())
}

fn remove(blobs: &[BlobFile]) -> anyhow::Result<()> {
    for blob in blobs {
        std::fs::remove_file(&blob.path)
            .with_context(|| format!("removing {}", blob.path.display()))?;
    }
    Ok(())
}
