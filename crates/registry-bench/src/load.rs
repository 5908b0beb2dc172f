//! Request-rate runs with `wrk` (Debian's package): requests per second and
//! the 99th percentile latency at a fixed number of connections.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// What each request does.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// `GET` with the `Accept` header a container client sends.
    GetManifest,
    Head,
}

/// The outcome of one run.
#[derive(Debug)]
pub struct LoadResult {
    pub requests_per_second: f64,
    pub p99_ms: f64,
}

pub fn run(
    url: &str,
    method: Method,
    connections: u32,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let script = tempfile::NamedTempFile::new()?;
    let lua = match method {
        Method::GetManifest => {
            "wrk.method = \"GET\"\nwrk.headers[\"Accept\"] = \"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json\"\n"
        }
        Method::Head => "wrk.method = \"HEAD\"\n",
    };
    std::fs::write(script.path(), lua)?;
    let output = Command::new("wrk")
        .args(["--threads", "2", "--latency"])
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", duration.as_secs()))
        .arg("--script")
        .arg(script.path())
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if text.contains("Non-2xx or 3xx responses") {
        bail!("wrk saw error responses from {url}:\n{text}");
    }
    let requests_per_second = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p99_ms = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("99%"))
        .and_then(|value| parse_duration_ms(value.trim()))
        .with_context(|| format!("no 99% latency in wrk output:\n{text}"))?;
    Ok(LoadResult {
        requests_per_second,
        p99_ms,
    })
}

/// wrk's `1.23ms`, `456.00us`, `1.10s` as milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(value) = text.strip_suffix("us") {
        (value, 0.001)
    } else if let Some(value) = text.strip_suffix("ms") {
        (value, 1.0)
    } else if let Some(value) = text.strip_suffix('s') {
        (value, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}
