//! Request-rate runs: a fixed number of keep-alive connections, each sending
//! its next request as soon as the last one is answered, for a fixed time.
//! Reports requests per second and the 99th percentile latency.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// The `Accept` header a container client sends for manifests.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// What each request does.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// `GET` with the `Accept` header a container client sends.
    GetManifest,
    Head,
    /// `GET` of a blob, body read whole.
    Get,
}

/// The outcome of one run.
#[derive(Debug)]
pub struct LoadResult {
    pub requests_per_second: f64,
    pub p99_ms: f64,
}

/// Runs `method` on `url`; `authorization` is sent as the header when given.
pub async fn run(
    url: &str,
    method: Method,
    connections: u32,
    duration: Duration,
    authorization: Option<&str>,
) -> anyhow::Result<LoadResult> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').context("URL without a path")?;
    let (host, path) = (host.to_owned(), format!("/{path}"));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let authorization = authorization.map(str::to_owned);
            tokio::spawn(connection(
                host.clone(),
                path.clone(),
                method,
                deadline,
                authorization,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(!latencies.is_empty(), "no request completed");
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Ok(LoadResult {
        requests_per_second: latencies.len() as f64 / elapsed,
        p99_ms: p99.as_secs_f64() * 1000.0,
    })
}

/// One keep-alive connection sending requests until `deadline`; the
/// latency of each.
async fn connection(
    host: String,
    path: String,
    method: Method,
    deadline: Instant,
    authorization: Option<String>,
) -> anyhow::Result<Vec<Duration>> {
    let stream = tokio::net::TcpStream::connect(&host).await?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(driver);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let mut request = hyper::Request::builder().uri(&path).header("host", &host);
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let request = match method {
            Method::GetManifest => request.method("GET").header("accept", MANIFEST_ACCEPT),
            Method::Head => request.method("HEAD"),
            Method::Get => request.method("GET"),
        }
        .body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        let response = sender.send_request(request).await?;
        ensure!(
            response.status() == 200,
            "{path} answered {}",
            response.status()
        );
        response.into_body().collect().await?;
        latencies.push(sent.elapsed());
    }
    Ok(latencies)
}
