//! The web UI's JSON API on a generated store: many repositories with one
//! tag each, and one repository with many tags. Measures what a person
//! waits for (a catalog search, the big repository's tags sorted by push
//! date, an image page) as latency percentiles over repeated requests, the
//! tag page once on a cold cache, and ui-backend's peak memory. There is no
//! docker-registry counterpart: the targets are absolute.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::{StreamExt, TryStreamExt};
use registry_core::{RepositoryName, Tag};
use registry_storage::Store;
use test_support::{ChildServer, free_port};

use crate::gc_bench::put_image;

/// The repository with many tags.
pub const BIG: &str = "bench/big";
/// How long each warm measurement runs.
const WARM_FOR: Duration = Duration::from_secs(8);

/// What the UI part measured.
#[derive(Debug)]
pub struct UiFigures {
    pub catalog_search_p95_ms: f64,
    /// The slowest catalog search: one that read the catalog again after
    /// the per-user list's 3 seconds.
    pub catalog_search_max_ms: f64,
    pub tags_by_pushed_cold_ms: f64,
    pub tags_by_pushed_p95_ms: f64,
    /// The slowest: one that asked what every tag points at again.
    pub tags_by_pushed_max_ms: f64,
    pub image_p95_ms: f64,
    pub peak_rss_mib: f64,
}

/// Writes the store: `repositories` with one tag each, and [`BIG`] with
/// `tags` tags, each tag its own image.
pub async fn generate(root: &Path, repositories: usize, tags: usize) -> anyhow::Result<()> {
    let store = Store::open(root.to_str().context("UTF-8 path")?)?;
    let latest: Tag = "latest".parse()?;
    let small = futures::stream::iter(0..repositories).map(|index| {
        let (store, latest) = (&store, &latest);
        async move {
            let name: RepositoryName =
                format!("team-{:02}/service-{index:05}", index % 50).parse()?;
            put_image(store, &name, latest, index as u64).await
        }
    });
    small.buffer_unordered(16).try_collect::<()>().await?;
    let big: RepositoryName = BIG.parse()?;
    let tagged = futures::stream::iter(0..tags).map(|index| {
        let (store, big) = (&store, &big);
        async move {
            let tag: Tag = format!("build-{index:05}").parse()?;
            put_image(store, big, &tag, (repositories + index) as u64).await
        }
    });
    tagged.buffer_unordered(16).try_collect::<()>().await?;
    Ok(())
}

/// Generates the store, serves it with registry-api and ui-backend, and
/// measures.
pub async fn measure(
    binaries: &Path,
    scratch: &Path,
    repositories: usize,
    tags: usize,
) -> anyhow::Result<UiFigures> {
    let root = scratch.join("ui-store");
    eprintln!("ui: generating {repositories} repositories and one of {tags} tags");
    generate(&root, repositories, tags).await?;
    let (port, admin) = (free_port(), free_port());
    let mut command = std::process::Command::new(binaries.join("registry-api"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .arg("--storage")
        .arg(&root)
        .env("RUST_LOG", "warn");
    let registry = ChildServer::spawn(command, port, "/v2/", "registry-api").await;
    let ui = start_ui(binaries, &registry.url, admin).await;
    let client = reqwest::Client::new();
    let api = format!("{}/api/v1", ui.url);
    let tags_url = format!("{api}/repositories/{BIG}/tags?sort=pushed&per_page=50");

    eprintln!("ui: the big repository's tags on a cold cache");
    let started = Instant::now();
    fetch(&client, &tags_url).await?;
    let tags_by_pushed_cold_ms = started.elapsed().as_secs_f64() * 1000.0;

    eprintln!("ui: catalog searches");
    let searches: Vec<String> = (0..20)
        .map(|index| format!("{api}/repositories?q=service-{:03}&per_page=50", index * 7))
        .collect();
    let catalog = latencies(&client, &searches).await?;
    eprintln!("ui: the big repository's tags sorted by push date");
    let tag_page = latencies(&client, std::slice::from_ref(&tags_url)).await?;
    eprintln!("ui: image pages");
    let images: Vec<String> = (0..20)
        .map(|index| {
            format!(
                "{api}/repositories/{BIG}/images/build-{:05}",
                index * 97 % tags
            )
        })
        .collect();
    let image = latencies(&client, &images).await?;
    Ok(UiFigures {
        catalog_search_p95_ms: percentile(&catalog, 0.95),
        catalog_search_max_ms: percentile(&catalog, 1.0),
        tags_by_pushed_cold_ms,
        tags_by_pushed_p95_ms: percentile(&tag_page, 0.95),
        tags_by_pushed_max_ms: percentile(&tag_page, 1.0),
        image_p95_ms: percentile(&image, 0.95),
        peak_rss_mib: crate::peak_rss_mib(ui.pid())?,
    })
}

async fn start_ui(binaries: &Path, registry: &str, admin: u16) -> ChildServer {
    let port = free_port();
    let mut command = std::process::Command::new(binaries.join("ui-backend"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--registry-url", registry])
        .args(["--admin-endpoint", &format!("http://127.0.0.1:{admin}")])
        .env("RUST_LOG", "warn");
    ChildServer::spawn(command, port, "/healthz", "ui-backend").await
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    ensure!(
        status.is_success(),
        "{url}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// Milliseconds of each request, asking `urls` in turn, one at a time (as
/// one person clicks), for [`WARM_FOR`]; the first round warms the cache
/// and is not counted.
async fn latencies(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<Vec<f64>> {
    for url in urls {
        fetch(client, url).await?;
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < WARM_FOR {
        for url in urls {
            let sent = Instant::now();
            fetch(client, url).await?;
            samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(samples)
}

fn percentile(samples: &[f64], share: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 * share).ceil() as usize).saturating_sub(1);
    sorted.get(index).copied().unwrap_or(f64::NAN)
}
