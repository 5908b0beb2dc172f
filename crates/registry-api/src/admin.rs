//! The admin gRPC port: the Maintenance service and gRPC health. Internal
//! network only; the edge proxy never routes to it. With an admin token
//! configured, calls without `authorization: Bearer <token>` are refused.

use registry_proto::maintenance::maintenance_server::MaintenanceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use crate::AppState;
use crate::maintenance::MaintenanceService;

/// Serves the admin gRPC services until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    token: Option<String>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<MaintenanceServer<MaintenanceService>>()
        .await;
    let expected = token.map(|token| format!("Bearer {token}"));
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let Some(expected) = &expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if constant_time_equal(presented, expected.as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "the admin token is missing or wrong",
            ))
        }
    };
    let maintenance = MaintenanceServer::with_interceptor(MaintenanceService::new(state), check);
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(maintenance)
        .serve_with_incoming_shutdown(
            service_runtime::grpc::incoming(listener),
            shutdown.cancelled_owned(),
        )
        .await
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
}
