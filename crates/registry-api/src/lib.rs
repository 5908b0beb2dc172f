//! registry-api: the OCI Distribution HTTP API (`/v2/...`) over the registry
//! store, plus `/healthz` and `/metrics`, and the admin gRPC port.
//!
//! `main.rs` only parses [`Config`] and calls [`run`]; everything else is
//! here so tests can drive it in process or on real sockets.

mod access;
mod admin;
mod app;
mod auth;
mod config;
mod endpoint;
mod error;
mod handlers;
mod maintenance;
mod metrics;
mod query;
mod router;
mod upload_slots;
mod write_cut;
mod write_gate;
mod write_journal;

pub use app::{App, AppState};
pub use auth::AuthGate;
pub use config::Config;
pub use router::router;
pub use service_runtime::client_address::{TrustedProxies, parse_proxy};
pub use upload_slots::UploadSlots;
pub use write_gate::WriteGate;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store: {0}")]
    Storage(#[from] registry_storage::OpenError),
    #[error(transparent)]
    Redirect(#[from] registry_storage::RedirectError),
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("the admin port failed: {0}")]
    Admin(std::io::Error),
    #[error(transparent)]
    Token(#[from] service_runtime::token::TokenError),
    #[error("--auth-endpoint {0}: {1}")]
    AuthEndpoint(url::Url, tonic::transport::Error),
}

/// Serves the API on `listener` and the admin port on `admin_listener`
/// until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    admin_listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let mut store =
        registry_storage::Store::open_with_timeout(&config.storage, config.storage_timeout)?;
    store.limit_pull_memory(config.max_pull_memory_mib);
    if let Some(expiry) = config.redirect_blobs {
        store.redirect_blobs(expiry)?;
        tracing::warn!(expiry = %humantime::format_duration(expiry), "blob GETs are redirected to presigned URLs of the store: whoever holds one can download that blob until it expires");
    }
    let admin_token = config.admin_token()?;
    let admin_address = admin_listener.local_addr().map_err(ServeError::Http)?;
    if admin_token.is_none() && !admin_address.ip().is_loopback() {
        tracing::warn!(admin = %admin_address, "the admin port is reachable beyond this machine and has no token: anyone who reaches it can hold the registry read-only; set --admin-token-file");
    }
    let auth = match &config.auth_endpoint {
        Some(endpoint) => {
            let proxies = TrustedProxies::new(config.trusted_proxies.clone())
                .with_token(config.proxy_token()?);
            let gate = AuthGate::connect(endpoint, config.auth_token()?, proxies)
                .map_err(|error| ServeError::AuthEndpoint(endpoint.clone(), error))?;
            tokio::spawn(gate.clone().follow_generation(shutdown.clone()));
            tracing::info!(%endpoint, "checking credentials with auth-service");
            Some(gate)
        }
        None => {
            tracing::warn!(
                "no --auth-endpoint: every client may pull, push and delete without credentials"
            );
            None
        }
    };
    let state = AppState::new(
        store,
        WriteGate::new(config.read_only_on_boot),
        auth,
        UploadSlots::new(config.max_concurrent_uploads),
    );
    let admin = announced_admin(admin_listener.local_addr().map_err(ServeError::Http)?);
    if !maintenance::check_lease(&state, &admin, config.lease_check_interval).await {
        tracing::error!(
            "cannot check the maintenance lease at start; writes wait until it is read"
        );
    }
    if let mode @ write_gate::Mode::Maintenance(_) = state.write_gate.mode() {
        tracing::warn!(mode = %write_gate::mode_header(&mode), "starting inside a maintenance window");
    }
    // Stopped after the servers, once no request can write any more.
    let servers_done = CancellationToken::new();
    let lease_checks = tokio::spawn(maintenance::follow_lease(
        state.clone(),
        admin,
        config.lease_check_interval,
        servers_done.clone(),
    ));
    if config.read_only_on_boot {
        tracing::warn!("starting read-only: pushes and deletes are refused");
    }
    tracing::info!(
        listen = %listener.local_addr().map_err(ServeError::Http)?,
        admin = %admin_listener.local_addr().map_err(ServeError::Http)?,
        storage = %registry_storage::shown_storage(&config.storage),
        "registry-api serving"
    );
    let http = service_runtime::http::serve_with(
        listener,
        router(state.clone()),
        config.http_limits,
        &config.trusted_proxies,
        shutdown.clone(),
    );
    let admin = admin::serve(admin_listener, state, admin_token, shutdown.clone());
    let (http, admin) = tokio::join!(http, admin);
    servers_done.cancel();
    if let Err(error) = lease_checks.await {
        tracing::error!(%error, "the lease checks stopped abnormally");
    }
    http.map_err(ServeError::Http)?;
    admin.map_err(ServeError::Admin)?;
    tracing::info!("registry-api stopped");
    Ok(())
}

/// The admin address a replica announces in the store, for an operator to
/// find it: listening on every interface, the host name stands in for the
/// address (containers set `HOSTNAME`).
fn announced_admin(address: std::net::SocketAddr) -> String {
    match std::env::var("HOSTNAME") {
        Ok(host) if address.ip().is_unspecified() && !host.is_empty() => {
            format!("{host}:{}", address.port())
        }
        _ => address.to_string(),
    }
}
