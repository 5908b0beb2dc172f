//! Listing at scale: one generated store (many repositories of one tag
//! each, and one repository of many tags) served by Berth and by
//! docker-registry from the same directory. Measures the whole catalog
//! walked `n=100` at a time, the big repository's tags in one request, and
//! its tags walked `n=100` at a time, with the slowest page of each walk.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, ensure};
use test_support::start_docker_registry;

use crate::report::Report;
use crate::ui_bench::{BIG, generate};

/// Entries per page of each walk.
const PAGE: usize = 100;
/// Requests of the whole tag list, for its median.
const WHOLE_LIST_REPETITIONS: usize = 5;

/// One walk of a paginated list: its length, its time and its slowest page.
#[derive(Debug)]
struct Walk {
    entries: usize,
    seconds: f64,
    slowest_page_ms: f64,
}

/// Follows `Link: <...>; rel="next"` from `path` until the last page.
async fn walk(client: &reqwest::Client, base: &str, path: &str, key: &str) -> anyhow::Result<Walk> {
    let started = Instant::now();
    let (mut entries, mut slowest_page_ms) = (0, 0.0_f64);
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let sent = Instant::now();
        let response = client.get(format!("{base}{path}")).send().await?;
        ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        next = response
            .headers()
            .get("link")
            .and_then(|link| link.to_str().ok())
            .and_then(|link| Some(link.strip_prefix('<')?.split_once('>')?.0.to_owned()));
        let body: serde_json::Value = response.json().await?;
        slowest_page_ms = slowest_page_ms.max(sent.elapsed().as_secs_f64() * 1000.0);
        entries += body[key].as_array().context("a list")?.len();
    }
    Ok(Walk {
        entries,
        seconds: started.elapsed().as_secs_f64(),
        slowest_page_ms,
    })
}

/// Milliseconds of each request of `url`.
async fn timings(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    for _ in 0..WHOLE_LIST_REPETITIONS {
        let sent = Instant::now();
        let response = client.get(url).send().await?;
        ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await?;
        samples.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

/// Generates the store, serves it with both registries and measures.
pub async fn compare(
    binaries: &Path,
    scratch: &Path,
    repositories: usize,
    tags: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let root = scratch.join("listing-store");
    eprintln!("listing: generating {repositories} repositories and one of {tags} tags");
    generate(&root, repositories, tags).await?;
    let berth = crate::start_berth(&binaries.join("registry-api"), root.as_os_str()).await;
    let distribution = start_docker_registry(&root)
        .await
        .context("docker-registry is not installed")?;
    let client = reqwest::Client::new();
    let label = format!("listing, {repositories} repositories / {tags} tags");

    let mut catalog = Vec::new();
    let mut tag_walks = Vec::new();
    let mut whole = Vec::new();
    for server in [&berth, &distribution] {
        eprintln!("listing: {} walks", server.url);
        let walked = walk(
            &client,
            &server.url,
            &format!("/v2/_catalog?n={PAGE}"),
            "repositories",
        )
        .await?;
        ensure!(
            walked.entries == repositories + 1,
            "the catalog walk found {}",
            walked.entries
        );
        catalog.push(walked);
        let tags_path = format!("/v2/{BIG}/tags/list");
        let walked = walk(
            &client,
            &server.url,
            &format!("{tags_path}?n={PAGE}"),
            "tags",
        )
        .await?;
        ensure!(
            walked.entries == tags,
            "the tag walk found {}",
            walked.entries
        );
        tag_walks.push(walked);
        whole.push(timings(&client, &format!("{}{tags_path}", server.url)).await?);
    }
    let per_second = |walk: &Walk| vec![walk.entries as f64 / walk.seconds];
    report.compare(
        &format!("{label}: catalog walk, n={PAGE} (repositories/s)"),
        &[per_second(&catalog[0]), per_second(&catalog[1])],
        10.0,
    );
    report.ceiling(
        &format!("{label}: berth's slowest catalog page (ms)"),
        catalog[0].slowest_page_ms,
        50.0,
    );
    report.info(
        &format!("{label}: docker-registry's slowest catalog page (ms)"),
        catalog[1].slowest_page_ms,
    );
    let as_rate = |samples: &[f64]| samples.iter().map(|ms| 1000.0 / ms).collect::<Vec<f64>>();
    report.compare(
        &format!("{label}: the whole tag list in one request (lists/s)"),
        &[as_rate(&whole[0]), as_rate(&whole[1])],
        1.0,
    );
    let whole_ms = crate::report::median(&whole[0]);
    report.ceiling_ratio(
        &format!("{label}: berth's tag walk n={PAGE} vs its own whole list (ms)"),
        tag_walks[0].seconds * 1000.0,
        whole_ms,
        2.0,
    );
    report.ceiling(
        &format!("{label}: berth's slowest tag page (ms)"),
        tag_walks[0].slowest_page_ms,
        50.0,
    );
    Ok(())
}
