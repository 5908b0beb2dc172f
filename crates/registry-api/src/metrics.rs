//! Prometheus metrics: requests by route, method and status, their
//! durations, and blob bytes in and out. One recorder per process.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Which endpoint answered, set by the dispatcher for the metrics layer.
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                DURATION_BUCKETS,
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render_metrics() -> impl IntoResponse {
    handle().render()
}

/// Counts and times every request.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    handle();
    let started = Instant::now();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("other", |label| label.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route, "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Blob bytes received from clients.
pub fn bytes_received(count: u64) {
    metrics::counter!("registry_blob_bytes_received_total").increment(count);
}

/// Blob bytes sent to clients.
pub fn bytes_sent(count: u64) {
    metrics::counter!("registry_blob_bytes_sent_total").increment(count);
}
