//! The admin port: the Maintenance gRPC service, gRPC health, and
//! `GET /metrics` for Prometheus, on one listener that only the internal
//! network reaches (the edge proxy never routes to it). With an admin
//! token, Maintenance calls and `/metrics` must carry
//! `authorization: Bearer <token>`; health stays open for orchestrators.

use axum::http::HeaderMap;
use axum::routing::get;
use axum::serve::ListenerExt;
use registry_proto::maintenance::maintenance_server::MaintenanceServer;
use service_runtime::metrics::serve_metrics;
use service_runtime::token::{self, SharedToken};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::maintenance::MaintenanceService;

/// Serves the admin port until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    token: Option<SharedToken>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<MaintenanceServer<MaintenanceService>>()
        .await;
    let maintenance = MaintenanceServer::with_interceptor(
        MaintenanceService::new(state),
        token::require(token.clone()),
    );
    let router = tonic::service::Routes::new(health)
        .add_service(maintenance)
        .prepare()
        .into_axum_router()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| serve_metrics(headers, token.clone())),
        );
    // Small gRPC calls are answered at once, not after a delayed ACK.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY on an admin connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
