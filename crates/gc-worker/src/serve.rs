//! `gc-worker serve`: a collection at every tick of a cron schedule, with
//! Prometheus metrics (runs by result, duration, blobs and bytes deleted)
//! and a health endpoint.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;

use crate::{GcConfig, run_once};

/// Collects on `schedule` until `shutdown`. With `listen`, serves
/// `/metrics` and `/healthz` there; without (inside registry-stack), the
/// metrics go to whatever recorder the process has.
pub async fn serve(
    config: GcConfig,
    schedule: &str,
    listen: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cron = parse_schedule(schedule)?;
    let server = match listen {
        Some(listen) => Some(metrics_server(listen, shutdown.clone()).await?),
        None => None,
    };
    tracing::info!(%schedule, ?listen, "gc-worker serving");
    loop {
        let now = chrono::Utc::now();
        let next = cron
            .find_next_occurrence(&now, false)
            .with_context(|| format!("--schedule {schedule:?} never fires"))?;
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        tracing::info!(next = %next.to_rfc3339(), "next collection");
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        let started = Instant::now();
        let result = run_once(&config, shutdown.clone()).await;
        metrics::histogram!("gc_run_duration_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(report) => {
                metrics::counter!("gc_runs_total", "result" => "success").increment(1);
                metrics::counter!("gc_blobs_deleted_total").increment(report.blobs_deleted as u64);
                metrics::counter!("gc_bytes_freed_total").increment(report.bytes_freed);
                metrics::gauge!("gc_last_window_seconds").set(report.window_ms as f64 / 1000.0);
            }
            Err(error) => {
                metrics::counter!("gc_runs_total", "result" => "failure").increment(1);
                tracing::error!(error = %format!("{error:#}"), "garbage collection failed");
            }
        }
    }
    if let Some(server) = server {
        server.await.context("metrics server")??;
    }
    Ok(())
}

/// Parses a `--schedule` cron expression, naming the flag on failure.
pub fn parse_schedule(schedule: &str) -> anyhow::Result<croner::Cron> {
    croner::Cron::from_str(schedule)
        .with_context(|| format!("--schedule {schedule:?} is not a cron expression"))
}

async fn metrics_server(
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen)"))?;
    Ok(tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .into_future(),
    ))
}
