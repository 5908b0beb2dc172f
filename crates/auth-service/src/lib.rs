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
use service_runtime::token::{self, SharedToken};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "auth-service listens on {0}, beyond this machine, without a token: anyone who reaches it could test passwords at full speed. Give it --token-file (and registry-api the same as --auth-token-file)"
    )]
    TokenRequired(std::net::SocketAddr),
    #[error("the gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("cannot read the listening address: {0}")]
    Listen(std::io::Error),
}

/// Loads the files, then serves until `shutdown` is cancelled. Callers must
/// present `token`; without one, only a loopback listener is allowed.
pub async fn run(
    htpasswd: std::path::PathBuf,
    policy: Option<std::path::PathBuf>,
    listener: TcpListener,
    token: Option<SharedToken>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let address = listener.local_addr().map_err(ServeError::Listen)?;
    match &token {
        None if !address.ip().is_loopback() => return Err(ServeError::TokenRequired(address)),
        None => {
            tracing::warn!(listen = %address, "no --token-file: any local process may ask auth-service to check passwords")
        }
        Some(_) => {}
    }
    let files = Arc::new(Files::load(htpasswd, policy)?);
    tokio::spawn(files.clone().watch(shutdown.clone()));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AuthenticatorServer<service::AuthenticatorService>>()
        .await;
    tracing::info!(listen = %address, "auth-service serving");
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(AuthenticatorServer::with_interceptor(
            service::AuthenticatorService::new(files),
            token::require(token),
        ))
        .serve_with_incoming_shutdown(
            service_runtime::grpc::incoming(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    tracing::info!("auth-service stopped");
    Ok(())
}
