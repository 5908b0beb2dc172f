//! ui-backend: Berth's web UI and its JSON API, from one origin. It reads
//! the registry only through registry-api's HTTP API with the browser
//! user's own credentials, and the read-only state through the admin gRPC.

mod admin;
mod api;
mod assets;
mod cache;
mod config;
mod inspect;
mod model;
mod registry;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use service_runtime::client_address::TrustedProxies;
use service_runtime::metrics::{RouteLabel, record_metrics, serve_metrics};
use service_runtime::token::SharedToken;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::Config;

use crate::admin::Admin;
use crate::api::ApiError;
use crate::inspect::{Inspector, Viewer};
use crate::registry::{Credentials, Registry};

/// Only this origin's scripts, styles and connections; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// What every request handler shares.
#[derive(Clone, Debug)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

#[derive(Debug)]
pub struct App {
    inspector: Inspector,
    admin: Admin,
    public_name: String,
    admin_token: Option<SharedToken>,
    proxies: TrustedProxies,
    /// Turns for requests that fan out to the registry (catalog pages, tag
    /// lists, images, previews): however many arrive, only this many build
    /// their answers at once, which bounds the memory and the load on
    /// registry-api that hostile or unlucky bursts can cause.
    fan_outs: tokio::sync::Semaphore,
}

/// Requests that fan out to the registry, answered at once.
const FAN_OUTS_AT_ONCE: usize = 4;

impl App {
    /// Waits for a turn to build a fanned-out answer.
    async fn fan_out_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.fan_outs
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }
}

/// Who is asking, from the request: their credentials and their address
/// (behind the edge, the one it forwards).
///
/// Credentials are checked with registry-api on every call, before any
/// cache is consulted: registry-api applies its failed-login limits first,
/// so a client it has stopped cannot test guesses against what another
/// user's session left in ui-backend's caches, and a changed password stops
/// working as soon as registry-api knows it.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let client = app.proxies.client(peer, &parts.headers);
        let viewer = app
            .inspector
            .viewer(Credentials::new(&parts.headers, client));
        if viewer.user.is_present() {
            app.inspector.registry.check(&viewer.user).await?;
        }
        Ok(viewer)
    }
}

/// Serves the UI and `/api/v1` on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let admin_token = config.admin_token()?;
    let proxy_token = config.proxy_token()?;
    if proxy_token.is_none() {
        tracing::warn!(
            "no --proxy-token-file: registry-api sees every UI user at ui-backend's address, so one user's failed log-ins through the UI slow down and lock out the others; give ui-backend and registry-api the same proxy token"
        );
    }
    let concurrency = usize::try_from(config.registry_concurrency).unwrap_or(64);
    let registry = Registry::new(config.registry_url.clone(), concurrency, proxy_token)
        .context("cannot set up the HTTP client for --registry-url")?;
    let admin = Admin::new(&config.admin_endpoint, admin_token.clone())
        .with_context(|| format!("--admin-endpoint {} is not usable", config.admin_endpoint))?;
    let state = AppState(Arc::new(App {
        inspector: Inspector::new(registry, config.cache_size_mib << 20),
        admin,
        public_name: config.public_name(),
        admin_token,
        proxies: TrustedProxies::new(config.trusted_proxies.clone()),
        fan_outs: tokio::sync::Semaphore::new(FAN_OUTS_AT_ONCE),
    }));
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(
        ui = %format!("http://{address}"),
        registry = %config.registry_url,
        admin = %config.admin_endpoint,
        "ui-backend is up"
    );
    service_runtime::http::serve(listener, router(state), &config.trusted_proxies, shutdown)
        .await
        .context("serving the UI")
}

/// Every route of ui-backend, with the security headers on every answer.
pub fn router(state: AppState) -> Router {
    let api = api::router().layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/assets/{*path}", get(assets::asset))
        .fallback(get(assets::page))
        .layer(axum::middleware::from_fn(label_route))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// 200 while registry-api answers at all, 503 otherwise.
async fn healthz(State(app): State<AppState>) -> Response {
    if app.inspector.registry.reachable().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let message = format!(
            "registry-api at {} does not answer\n",
            app.inspector.registry.base()
        );
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    }
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    serve_metrics(headers, app.admin_token.clone()).await
}

/// Names the kind of route for the request metrics.
async fn label_route(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let label = if path.starts_with("/api/") {
        "api"
    } else if path.starts_with("/assets/") {
        "asset"
    } else if path == "/healthz" || path == "/metrics" {
        "internal"
    } else {
        "page"
    };
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RouteLabel(label));
    response
}
