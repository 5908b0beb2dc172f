//! Garbage collection beside `docker-registry garbage-collect
//! --delete-untagged`: one generated store (R repositories x T tags, half of
//! the tags pushed again with new content), copied for each, and the
//! read-only window of gc-worker against the whole run of Distribution's
//! collector (which needs the registry stopped throughout).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use registry_core::media_types::OCI_MANIFEST;
use registry_core::{RepositoryName, Tag};
use registry_storage::Store;
use test_support::{ChildServer, free_port};

/// One shape of store: repositories x tags.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub repositories: usize,
    pub tags: usize,
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (repositories, tags) = text
            .split_once('x')
            .ok_or("use REPOSITORIESxTAGS, e.g. 50x20")?;
        Ok(Shape {
            repositories: repositories
                .parse()
                .map_err(|_| "repositories is not a number")?,
            tags: tags.parse().map_err(|_| "tags is not a number")?,
        })
    }
}

/// What one shape measured, in seconds.
#[derive(Debug)]
pub struct GcTimes {
    pub berth_window: f64,
    pub berth_total: f64,
    pub distribution: f64,
}

/// A small single-layer OCI image, pushed straight into the store.
pub async fn put_image(
    store: &Store,
    name: &RepositoryName,
    tag: &Tag,
    seed: u64,
) -> anyhow::Result<()> {
    let layer = store
        .put_small_blob(name, Bytes::from(format!("layer {name} {tag} {seed}")))
        .await?;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"seed":{seed}}}"#
    );
    let config_size = config.len();
    let config = store.put_small_blob(name, Bytes::from(config)).await?;
    let layer_size = format!("layer {name} {tag} {seed}").len();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let digest = registry_core::Digest::sha256_of(manifest.as_bytes());
    store
        .put_manifest(name, &digest, Bytes::from(manifest), Some(tag), None)
        .await?;
    Ok(())
}

/// Writes the store: every tag pushed once, then half pushed again.
pub async fn generate(root: &Path, shape: Shape) -> anyhow::Result<()> {
    let store = Store::open(root.to_str().context("UTF-8 path")?)?;
    let mut seed = 0;
    for repository in 0..shape.repositories {
        let name: RepositoryName = format!("bench/repo-{repository:04}").parse()?;
        for tag in 0..shape.tags {
            let tag: Tag = format!("v{tag}").parse()?;
            seed += 1;
            put_image(&store, &name, &tag, seed).await?;
        }
        for tag in (0..shape.tags).step_by(2) {
            let tag: Tag = format!("v{tag}").parse()?;
            seed += 1;
            put_image(&store, &name, &tag, seed).await?;
        }
    }
    Ok(())
}

/// Runs both collectors on copies of one generated store.
pub async fn compare(binaries: &Path, scratch: &Path, shape: Shape) -> anyhow::Result<GcTimes> {
    let source = scratch.join(format!("gc-{}x{}", shape.repositories, shape.tags));
    eprintln!(
        "generating {} repositories x {} tags",
        shape.repositories, shape.tags
    );
    generate(&source, shape).await?;
    let (berth, distribution) = (
        source.with_extension("berth"),
        source.with_extension("distribution"),
    );
    for copy in [&berth, &distribution] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(copy)
            .status()?;
        ensure!(status.success(), "copying the generated store failed");
    }

    let config = distribution.with_extension("yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            distribution.display()
        ),
    )?;
    eprintln!("docker-registry garbage-collect --delete-untagged");
    let started = Instant::now();
    let output = Command::new("docker-registry")
        .args(["garbage-collect", "--delete-untagged"])
        .arg(&config)
        .output()
        .context("docker-registry garbage-collect")?;
    let distribution_seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "docker-registry garbage-collect failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let (port, admin) = (free_port(), free_port());
    let mut api = Command::new(binaries.join("registry-api"));
    api.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--admin-listen",
        &format!("127.0.0.1:{admin}"),
    ])
    .arg("--storage")
    .arg(&berth)
    .env("RUST_LOG", "warn");
    let _api = ChildServer::spawn(api, port, "/healthz", "registry-api").await;
    eprintln!("gc-worker run --delete-untagged --grace 0s");
    let output = Command::new(binaries.join("gc-worker"))
        .args(["run", "--delete-untagged", "--grace", "0s", "--storage"])
        .arg(&berth)
        .arg("--admin-endpoints")
        .arg(format!("http://127.0.0.1:{admin}"))
        .env("RUST_LOG", "warn")
        .output()
        .context("gc-worker")?;
    if !output.status.success() {
        bail!(
            "gc-worker failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("gc-worker report")?;
    eprintln!(
        "gc-worker: prepare {} ms, mark {} ms, sweep {} ms, window {} ms",
        report["prepare_ms"], report["mark_ms"], report["sweep_ms"], report["window_ms"]
    );
    let expected = shape.repositories * shape.tags.div_ceil(2);
    ensure!(
        report["manifests_deleted"].as_u64() == Some(expected as u64),
        "gc-worker removed {} manifests, expected {expected}",
        report["manifests_deleted"]
    );
    for copy in [&source, &berth, &distribution] {
        let _ = std::fs::remove_dir_all(copy);
    }
    Ok(GcTimes {
        berth_window: report["window_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        berth_total: report["total_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        distribution: distribution_seconds,
    })
}
