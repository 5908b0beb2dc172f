//! Prometheus metrics for the HTTP services: one recorder per process, a
//! middleware that counts and times every request by route, method and
//! status, and `GET /metrics` behind the admin token when there is one.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::token::SharedToken;

/// Which endpoint answered, set by a service's dispatcher for the metrics
/// layer.
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

/// `GET /metrics` in the Prometheus text format, behind `token` when there
/// is one.
pub async fn serve_metrics(headers: HeaderMap, token: Option<SharedToken>) -> Response {
    if let Some(token) = token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        if !token.accepts(presented) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "the admin token is missing or wrong\n",
            )
                .into_response();
        }
    }
    handle().render().into_response()
}
