//! auth-service: verifies users against an htpasswd file (bcrypt, argon2id)
//! and answers per-repository permissions, over gRPC. It holds no state but
//! the files, which it reloads when they change.

mod config;
mod files;
pub mod hashing;
mod htpasswd;
mod policy;
mod service;

pub use config::{Cli, Command, ServeConfig};
pub use files::{Files, LoadError};

use std::sync::Arc;

use registry_proto::auth::authenticator_server::AuthenticatorServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Loads the files, then serves until `shutdown` is cancelled.
pub async fn run(
    htpasswd: std::path::PathBuf,
    policy: Option<std::path::PathBuf>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let files = Arc::new(Files::load(htpasswd, policy)?);
    tokio::spawn(files.clone().watch(shutdown.clone()));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AuthenticatorServer<service::AuthenticatorService>>()
        .await;
    tracing::info!(listen = ?listener.local_addr().ok(), "auth-service serving");
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(AuthenticatorServer::new(
            service::AuthenticatorService::new(files),
        ))
        .serve_with_incoming_shutdown(
            service_runtime::grpc::incoming(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    tracing::info!("auth-service stopped");
    Ok(())
}
