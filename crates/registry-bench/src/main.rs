//! `registry-bench`: Berth (a release `registry-api` process) and Debian's
//! `docker-registry` on the same machine, the same store kind (filesystem,
//! no auth) and the same workload, measured in one run. Prints each figure,
//! the ratio and the target from the issues.
//!
//! Run it with `just bench` (which builds `registry-api` first).

mod baselines;
mod concurrency_bench;
mod gc_bench;
mod listing_bench;
mod load;
mod raw_http;
mod report;
mod s3_bench;
mod skopeo_bench;
mod transfers;
mod ui_bench;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use test_support::{
    Blob, ChildServer, Image, free_port, push_blob, push_image, random_bytes, start_docker_registry,
};

use crate::report::Report;
use crate::transfers::BlobFile;

/// Berth beside docker-registry on one workload.
#[derive(Debug, Parser)]
#[command(name = "registry-bench", about)]
struct Options {
    /// Size of the blob pushed and pulled, in MiB.
    #[arg(long, default_value_t = 1024)]
    blob_mib: u64,
    /// Chunk size of the chunked push, in MiB.
    #[arg(long, default_value_t = 16)]
    chunk_mib: u64,
    /// Runs of each transfer; the median is reported.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Seconds of each request-rate run.
    #[arg(long, default_value_t = 10)]
    load_seconds: u64,
    /// Concurrent connections of each request-rate run.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Store shapes for the garbage collection comparison, REPOSITORIESxTAGS.
    #[arg(long, value_delimiter = ',', default_value = "50x20,200x50")]
    gc_shapes: Vec<gc_bench::Shape>,
    /// The UI part's store: repositories of one tag each, and the tags of
    /// one big repository, REPOSITORIESxTAGS.
    #[arg(long, default_value = "5000x2000")]
    ui_shape: gc_bench::Shape,
    /// Concurrent clients of the concurrency part, one run each.
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    clients: Vec<usize>,
    /// The listing part's store, REPOSITORIESxTAGS as for `--ui-shape`.
    #[arg(long, default_value = "10000x10000")]
    listing_shape: gc_bench::Shape,
    /// Size of the blob of the S3 part, in MiB (moto holds it in memory).
    #[arg(long, default_value_t = 256)]
    s3_blob_mib: u64,
    /// Parts to run (default: all).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "push,pull,concurrency,image,rates,auth,gc,ui,listing,s3"
    )]
    parts: Vec<Part>,
    /// The registry-api binary (default: beside this one).
    #[arg(long)]
    registry_api: Option<PathBuf>,
}

/// A part of the benchmark, so one figure can be iterated on alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// 1 GiB blob pushes, monolithic and chunked.
    Push,
    /// 1 GiB blob pulls.
    Pull,
    /// Many pushes and pulls at once, and the memory they take.
    Concurrency,
    /// A 20-layer image pulled by skopeo.
    Image,
    /// Manifest GET and blob HEAD rates under load.
    Rates,
    /// Manifest GET rates with credentials.
    Auth,
    /// Garbage collection of generated stores.
    Gc,
    /// The web UI's JSON API on a store of many repositories and tags.
    Ui,
    /// The catalog and a long tag list, whole and page by page.
    Listing,
    /// Pushes and pulls with each registry on S3 (`moto_server`).
    S3,
}

/// The two registries under test, started once for the whole run.
struct Registries {
    berth: ChildServer,
    berth_root: PathBuf,
    distribution: ChildServer,
    distribution_root: PathBuf,
}

impl Registries {
    fn servers(&self) -> [(&'static str, &ChildServer, &std::path::Path); 2] {
        [
            ("berth", &self.berth, &self.berth_root),
            (
                "docker-registry",
                &self.distribution,
                &self.distribution_root,
            ),
        ]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let binary = match &options.registry_api {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("registry-api"),
    };
    if !binary.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p registry-api` first",
            binary.display()
        );
    }
    let work = tempfile::tempdir_in(std::env::temp_dir()).context("scratch directory")?;
    let mut report = Report::default();

    eprintln!("preparing a {} MiB blob", options.blob_mib);
    let mut blob = BlobFile::create(&work.path().join("blob"), options.blob_mib << 20)?;
    std::process::Command::new("sync")
        .status()
        .context("sync")?;
    warm_page_allocator(work.path(), 2 * (options.blob_mib << 20))?;
    let hashing = baselines::sha256_throughput(5);
    report.baseline("sha256, one core", hashing);
    let berth_root = work.path().join("berth");
    let distribution_root = work.path().join("distribution");
    std::fs::create_dir_all(&distribution_root)?;
    let Some(distribution) = start_docker_registry(&distribution_root).await else {
        bail!("docker-registry is not installed: apt-get install docker-registry");
    };
    let registries = Registries {
        berth: start_berth(&binary, berth_root.as_os_str()).await,
        berth_root,
        distribution,
        distribution_root,
    };

    let wanted = |part| options.parts.contains(&part);
    if wanted(Part::Push) {
        push(&options, &registries, &mut blob, hashing, &mut report).await?;
    }
    if wanted(Part::Pull) {
        pull(&options, &registries, &mut blob, &mut report).await?;
    }
    if wanted(Part::Concurrency) {
        concurrency_bench::compare(&registries, work.path(), &options.clients, &mut report).await?;
    }
    if wanted(Part::Image) {
        skopeo_bench::compare(&registries, work.path(), options.repetitions, &mut report).await?;
    }
    let mut manifest_rate = None;
    if wanted(Part::Rates) || wanted(Part::Auth) {
        let image = push_small_image(&registries).await;
        if wanted(Part::Rates) {
            manifest_rate = Some(rates(&options, &registries, &image, &mut report).await?);
        }
    }
    if wanted(Part::Auth) {
        let authenticated =
            authenticated_rates(&options, &binary, &registries, work.path()).await?;
        report.compare(
            "authenticated manifest GET, bcrypt htpasswd (req/s)",
            &authenticated,
            30.0,
        );
        if let Some(unauthenticated) = manifest_rate {
            report.share_of(
                "berth authenticated / unauthenticated manifest GET",
                &authenticated[0],
                unauthenticated,
                0.80,
            );
        }
    }
    // Issue 12: 64 MiB over the whole benchmark with 8 concurrent clients,
    // 192 MiB once 32 have run.
    let most_clients = options.clients.iter().max().copied().unwrap_or(0);
    let memory_limit = if wanted(Part::Concurrency) && most_clients > 8 {
        192.0
    } else {
        64.0
    };
    report.ceiling(
        "berth peak resident memory (MiB)",
        peak_rss_mib(registries.berth.pid())?,
        memory_limit,
    );
    report.info(
        "docker-registry peak resident memory (MiB)",
        peak_rss_mib(registries.distribution.pid())?,
    );
    if wanted(Part::Gc) {
        let binaries = binary.parent().context("the binary's directory")?;
        for shape in &options.gc_shapes {
            let times = gc_bench::compare(binaries, work.path(), *shape).await?;
            let label = format!("{}x{}", shape.repositories, shape.tags);
            report.ceiling_ratio(
                &format!("gc {label}: berth whole run vs docker-registry garbage-collect (s)"),
                times.berth_total,
                times.distribution,
                1.0,
            );
            report.ceiling_ratio(
                &format!(
                    "gc {label}: berth read-only window vs docker-registry garbage-collect (s)"
                ),
                times.berth_window,
                times.distribution,
                GC_WINDOW_RATIO,
            );
            if shape.repositories >= 1000 {
                report.ceiling(
                    &format!("gc {label}: berth read-only window (s)"),
                    times.berth_window,
                    1.0,
                );
            }
        }
    }
    if wanted(Part::Ui) {
        let binaries = binary.parent().context("the binary's directory")?;
        let shape = options.ui_shape;
        let figures =
            ui_bench::measure(binaries, work.path(), shape.repositories, shape.tags).await?;
        let label = format!(
            "ui, {} repositories / {} tags",
            shape.repositories, shape.tags
        );
        report.ceiling(
            &format!("{label}: catalog search p95 (ms)"),
            figures.catalog_search_p95_ms,
            100.0,
        );
        report.info(
            &format!("{label}: slowest catalog search, re-reading the catalog (ms)"),
            figures.catalog_search_max_ms,
        );
        report.ceiling(
            &format!("{label}: tags by push date, cold (ms)"),
            figures.tags_by_pushed_cold_ms,
            3000.0,
        );
        report.ceiling(
            &format!("{label}: tags by push date p95 (ms)"),
            figures.tags_by_pushed_p95_ms,
            150.0,
        );
        report.info(
            &format!("{label}: slowest tag page, re-reading every tag (ms)"),
            figures.tags_by_pushed_max_ms,
        );
        report.ceiling(
            &format!("{label}: image page p95 (ms)"),
            figures.image_p95_ms,
            50.0,
        );
        report.ceiling(
            "ui-backend peak resident memory (MiB)",
            figures.peak_rss_mib,
            64.0,
        );
    }
    if wanted(Part::Listing) {
        let binaries = binary.parent().context("the binary's directory")?;
        let shape = options.listing_shape;
        listing_bench::compare(
            binaries,
            work.path(),
            shape.repositories,
            shape.tags,
            &mut report,
        )
        .await?;
    }
    if wanted(Part::S3) {
        let workload = s3_bench::S3Workload {
            blob_mib: options.s3_blob_mib,
            chunk_mib: options.chunk_mib,
            repetitions: options.repetitions,
        };
        s3_bench::compare(&binary, work.path(), &workload, &mut report).await?;
    }
    report.print();
    Ok(())
}

/// Monolithic and chunked pushes of a new blob, each registry in turn.
async fn push(
    options: &Options,
    registries: &Registries,
    blob: &mut BlobFile,
    hashing: f64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let chunk = options.chunk_mib << 20;
    let mut monolithic = [Vec::new(), Vec::new()];
    let mut chunked = [Vec::new(), Vec::new()];
    for repetition in 0..options.repetitions {
        eprintln!("push round {}/{}", repetition + 1, options.repetitions);
        for (index, (_, server, root)) in registries.servers().into_iter().enumerate() {
            blob.vary()?;
            monolithic[index].push(transfers::push_monolithic(&server.url, blob).await?);
            forget_blob(root, &blob.digest)?;
            blob.vary()?;
            chunked[index].push(transfers::push_chunked(&server.url, blob, chunk).await?);
            forget_blob(root, &blob.digest)?;
        }
    }
    report.compare("blob push, monolithic (MiB/s)", &monolithic, 4.0);
    report.compare(
        &format!("blob push, {} MiB chunks (MiB/s)", options.chunk_mib),
        &chunked,
        4.0,
    );
    report.share_of(
        "berth monolithic push / sha256",
        &monolithic[0],
        hashing,
        0.60,
    );
    report.share_of("berth chunked push / sha256", &chunked[0], hashing, 0.60);
    Ok(())
}

/// Pulls of one pushed blob from each registry, beside a plain sendfile.
async fn pull(
    options: &Options,
    registries: &Registries,
    blob: &mut BlobFile,
    report: &mut Report,
) -> anyhow::Result<()> {
    let sendfile = baselines::sendfile_throughput(&blob.path, options.repetitions).await?;
    report.baseline("sendfile over loopback", sendfile);
    blob.vary()?;
    // The first pull after a push reads from the disk for Berth, which
    // writes blobs past the page cache, and from the page cache for
    // docker-registry: shown apart from the pulls after it.
    let mut first_pulls = [Vec::new(), Vec::new()];
    let mut push_then_pull = [Vec::new(), Vec::new()];
    for (index, (_, server, _)) in registries.servers().into_iter().enumerate() {
        let pushed = transfers::push_monolithic(&server.url, blob).await?;
        let pulled = transfers::pull(&server.url, &blob.digest, blob.size).await?;
        first_pulls[index].push(pulled);
        // The CI job that pushes and the deployment that pulls at once,
        // end to end: the blob's MiB over both transfers' seconds.
        push_then_pull[index].push(1.0 / (1.0 / pushed + 1.0 / pulled));
    }
    report.compare("first pull right after the push (MiB/s)", &first_pulls, 1.0);
    report.pair(
        "push, then the first pull, end to end (MiB/s)",
        &push_then_pull,
    );
    let mut pulls = [Vec::new(), Vec::new()];
    for repetition in 0..options.repetitions {
        eprintln!("pull round {}/{}", repetition + 1, options.repetitions);
        for (index, (_, server, _)) in registries.servers().into_iter().enumerate() {
            pulls[index].push(transfers::pull(&server.url, &blob.digest, blob.size).await?);
        }
    }
    report.compare("blob pull (MiB/s)", &pulls, 1.3);
    report.share_of("berth pull / sendfile", &pulls[0], sendfile, 0.85);
    Ok(())
}

const SMALL_REPOSITORY: &str = "bench/small";

/// The longest gc-worker's read-only window may be, as a share of
/// Distribution's whole offline collection of the same store.
const GC_WINDOW_RATIO: f64 = 0.02;

/// The small image the request-rate runs ask for, in both registries.
async fn push_small_image(registries: &Registries) -> Image {
    let image = Image::random(1, 4096);
    let client = reqwest::Client::new();
    for (_, server, _) in registries.servers() {
        push_image(&client, &server.url, SMALL_REPOSITORY, "latest", &image).await;
    }
    image
}

/// Sizes of the small blobs whose `GET` rates are measured: an image
/// config, and the largest blob Berth answers from memory.
const SMALL_BLOB_BYTES: [usize; 2] = [1024, 64 * 1024];

/// Blobs of [`SMALL_BLOB_BYTES`] random bytes, in both registries.
async fn push_small_blobs(registries: &Registries) -> Vec<Blob> {
    let blobs: Vec<Blob> = SMALL_BLOB_BYTES
        .iter()
        .map(|&size| Blob::new("application/octet-stream", random_bytes(size)))
        .collect();
    let client = reqwest::Client::new();
    for (_, server, _) in registries.servers() {
        for blob in &blobs {
            push_blob(&client, &server.url, SMALL_REPOSITORY, blob).await;
        }
    }
    blobs
}

/// Manifest GET, blob HEAD and small blob GET rates; returns Berth's
/// manifest GET rate.
async fn rates(
    options: &Options,
    registries: &Registries,
    image: &Image,
    report: &mut Report,
) -> anyhow::Result<f64> {
    let mut manifest_rates = [Vec::new(), Vec::new()];
    let mut head_rates = [Vec::new(), Vec::new()];
    let small_blobs = push_small_blobs(registries).await;
    let mut small_get_rates = vec![[Vec::new(), Vec::new()]; small_blobs.len()];
    let mut small_get_p99 = vec![[Vec::new(), Vec::new()]; small_blobs.len()];
    let mut p99 = [Vec::new(), Vec::new()];
    for (index, (name, server, _)) in registries.servers().into_iter().enumerate() {
        eprintln!("request rates: {name}");
        let seconds = Duration::from_secs(options.load_seconds);
        let manifest_url = format!("{}/v2/{SMALL_REPOSITORY}/manifests/latest", server.url);
        let manifest = load::run(
            &manifest_url,
            load::Method::GetManifest,
            options.connections,
            seconds,
            None,
        )
        .await?;
        let head_url = format!(
            "{}/v2/{SMALL_REPOSITORY}/blobs/{}",
            server.url, image.layers[0].digest
        );
        let head = load::run(
            &head_url,
            load::Method::Head,
            options.connections,
            seconds,
            None,
        )
        .await?;
        // A pull is mostly small blob GETs (configs, small layers).
        for (size, blob) in small_blobs.iter().enumerate() {
            let url = format!("{}/v2/{SMALL_REPOSITORY}/blobs/{}", server.url, blob.digest);
            let small_get =
                load::run(&url, load::Method::Get, options.connections, seconds, None).await?;
            small_get_rates[size][index].push(small_get.requests_per_second);
            small_get_p99[size][index].push(small_get.p99_ms);
        }
        manifest_rates[index].push(manifest.requests_per_second);
        head_rates[index].push(head.requests_per_second);
        p99[index].push(manifest.p99_ms.max(head.p99_ms));
    }
    report.compare(
        &format!(
            "manifest GET by tag, {} connections (req/s)",
            options.connections
        ),
        &manifest_rates,
        10.0,
    );
    report.compare(
        &format!("blob HEAD, {} connections (req/s)", options.connections),
        &head_rates,
        10.0,
    );
    report.ceiling("berth p99 latency under load (ms)", p99[0][0], 10.0);
    for ((blob, rates), p99) in small_blobs.iter().zip(&small_get_rates).zip(&small_get_p99) {
        let kib = blob.bytes.len() / 1024;
        report.compare(
            &format!(
                "small blob GET ({kib} KiB), {} connections (req/s)",
                options.connections
            ),
            rates,
            10.0,
        );
        report.ceiling(
            &format!("berth small blob GET ({kib} KiB) p99 (ms)"),
            p99[0][0],
            10.0,
        );
    }
    Ok(report::median(&manifest_rates[0]))
}

/// Manifest GET rates with credentials on every request: Berth
/// (registry-api asking auth-service) and docker-registry (htpasswd), one
/// bcrypt user of cost 5 (what `htpasswd -B` makes).
async fn authenticated_rates(
    options: &Options,
    binary: &std::path::Path,
    registries: &Registries,
    work: &std::path::Path,
) -> anyhow::Result<[Vec<f64>; 2]> {
    use base64::Engine;
    let htpasswd = work.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("bench:{}\n", bcrypt::hash("bench-password", 5)?),
    )?;
    let auth_port = free_port();
    let mut command = std::process::Command::new(binary.with_file_name("auth-service"));
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{auth_port}"))
        .arg("--htpasswd")
        .arg(&htpasswd)
        .env("RUST_LOG", "warn");
    let _auth = ChildServer::spawn(command, auth_port, "", "auth-service").await;
    let endpoint = format!("http://127.0.0.1:{auth_port}");
    let berth = start_berth_with(
        binary,
        registries.berth_root.as_os_str(),
        &["--auth-endpoint", &endpoint],
    )
    .await;
    let Some(distribution) =
        test_support::start_docker_registry_with_htpasswd(&registries.distribution_root, &htpasswd)
            .await
    else {
        bail!("docker-registry is not installed");
    };
    let credentials = base64::engine::general_purpose::STANDARD.encode("bench:bench-password");
    let header = format!("Basic {credentials}");
    let mut rates = [Vec::new(), Vec::new()];
    for (index, server) in [&berth, &distribution].into_iter().enumerate() {
        eprintln!(
            "authenticated request rates: {}",
            ["berth", "docker-registry"][index]
        );
        let url = format!("{}/v2/bench/small/manifests/latest", server.url);
        let seconds = Duration::from_secs(options.load_seconds);
        let result = load::run(
            &url,
            load::Method::GetManifest,
            options.connections,
            seconds,
            Some(&header),
        )
        .await?;
        rates[index].push(result.requests_per_second);
    }
    Ok(rates)
}

async fn start_berth(binary: &std::path::Path, storage: &std::ffi::OsStr) -> ChildServer {
    start_berth_with(binary, storage, &[]).await
}

/// A release registry-api on `storage`, given `arguments` beside the
/// listen addresses.
async fn start_berth_with(
    binary: &std::path::Path,
    storage: &std::ffi::OsStr,
    arguments: &[&str],
) -> ChildServer {
    let (port, admin) = (free_port(), free_port());
    let mut command = std::process::Command::new(binary);
    command
        .args(arguments)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin}"))
        .arg("--storage")
        .arg(storage)
        .env("RUST_LOG", "warn");
    ChildServer::spawn(command, port, "/v2/", "registry-api").await
}

/// Removes a pushed blob's data behind the registry's back (both use the
/// registry:2 layout), so dirty pages of earlier rounds never make a later
/// push wait for the disk: the pushes measure the registries, not the disk.
fn forget_blob(root: &std::path::Path, digest: &registry_core::Digest) -> anyhow::Result<()> {
    let hex = digest.hex();
    let directory = root
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    std::fs::remove_dir_all(&directory).with_context(|| format!("removing {}", directory.display()))
}

/// Writes and deletes `size` bytes once. On a virtual machine the first
/// write into pages the guest has not touched lately costs several times a
/// warm one (seen here: 338 MB/s cold, 4.2 GB/s warm with `dd`); warming
/// first keeps whichever registry pushes first from paying for it.
fn warm_page_allocator(directory: &std::path::Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let path = directory.join("warm-up");
    let mut file = std::fs::File::create(&path)?;
    let zeros = vec![0u8; 8 << 20];
    let mut written = 0;
    while written < size {
        file.write_all(&zeros)?;
        written += zeros.len() as u64;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// The peak resident set (`VmHWM`) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM missing from /proc status")?;
    Ok(kib / 1024.0)
}
