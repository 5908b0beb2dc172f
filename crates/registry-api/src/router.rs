//! The HTTP router: `/v2/` and `/v2/{*rest}` go to one dispatcher that
//! parses the typed [`Endpoint`] and calls its handler; `/healthz` sits
//! beside them (`/metrics` is on the admin port, off the edge). Every
//! response carries the API version header and a request id.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use registry_core::{ErrorCode, RegistryError};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::access;
use crate::endpoint::Endpoint;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{blobs, listing, manifests, referrers, uploads};
use crate::query::Query;
use crate::write_gate::mode_header;
use service_runtime::metrics::{RouteLabel, record_metrics};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP service over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Longest a health check waits for the store: an orchestrator or the
/// edge (HAProxy checks every 2 s) gets its answer before giving up.
const HEALTH_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_millis(1500);

async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(HEALTH_CHECK_LIMIT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
        Err(_) => {
            tracing::error!(limit = ?HEALTH_CHECK_LIMIT, "health check: the store did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
    }
}

async fn not_found() -> ApiError {
    RegistryError::new(ErrorCode::Unsupported, "no such endpoint")
        .with_status(404)
        .into()
}

/// Parses the endpoint, refuses writes while read-only, and calls the handler.
async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let rest = request
        .uri()
        .path()
        .strip_prefix("/v2/")
        .unwrap_or_default()
        .to_owned();
    let endpoint = match Endpoint::parse(&rest) {
        Ok(endpoint) => endpoint,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let route = endpoint.route();
    let mut response = handle(&state, endpoint, request)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(RouteLabel(route));
    response
}

async fn handle(state: &AppState, endpoint: Endpoint, request: Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let query = Query::parse(parts.uri.query());
    let granted = access::check(state, &endpoint, &parts, &query).await?;
    let is_write = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // Taken before the write begins: waiting for a slot is not a write a
    // maintenance window has to wait for.
    let carries_upload_body = match (&endpoint, &method) {
        (Endpoint::Upload(..), &Method::PATCH | &Method::PUT) => true,
        (Endpoint::UploadStart(_), &Method::POST) => query.get("digest").is_some(),
        _ => false,
    };
    let _upload_slot = if carries_upload_body {
        Some(state.upload_slots.take().await?)
    } else {
        None
    };
    // Writes outside a repository (the base, the catalog) are refused by
    // their handlers as methods not allowed.
    let write = match endpoint.repository().filter(|_| is_write) {
        Some(repository) => Some(state.write_gate.begin_write_checked(repository).await?),
        None => None,
    };
    let body = match &write {
        Some(write) => crate::write_cut::cut_when(body, write.cut_signal()),
        None => body,
    };
    let user = match &granted.principal {
        Some(crate::auth::Principal::User(user)) => Some(user.clone()),
        _ => None,
    };
    let headers = &parts.headers;
    let head = method == Method::HEAD;
    let answer = match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => Ok(base(state, head)),
        (Endpoint::Catalog, Method::GET) => {
            listing::catalog(state, &query, granted.principal.as_ref()).await
        }
        (Endpoint::Tags(name), Method::GET) => listing::tags(state, &name, &query).await,
        (Endpoint::Manifest(name, reference), Method::GET | Method::HEAD) => {
            manifests::get(state, &name, &reference, headers, head).await
        }
        (Endpoint::Manifest(name, reference), Method::PUT) => {
            manifests::put(state, &name, &reference, headers, body).await
        }
        (Endpoint::Manifest(name, reference), Method::DELETE) => {
            manifests::delete(state, &name, &reference).await
        }
        (Endpoint::ManifestBadReference(name, text), method) => {
            Err(manifests::bad_reference(&name, &text, &method))
        }
        (Endpoint::Blob(name, digest), Method::GET | Method::HEAD) => {
            blobs::get(state, &name, &digest, headers, head).await
        }
        (Endpoint::Blob(name, digest), Method::DELETE) => {
            blobs::delete(state, &name, &digest).await
        }
        (Endpoint::UploadStart(name), Method::POST) => {
            uploads::start(state, &name, &query, granted.mount, body).await
        }
        (Endpoint::Upload(name, id), Method::GET) => uploads::status(state, &name, &id).await,
        (Endpoint::Upload(name, id), Method::PATCH) => {
            uploads::patch(state, &name, &id, headers, body).await
        }
        (Endpoint::Upload(name, id), Method::PUT) => {
            uploads::finish(state, &name, &id, &query, headers, body).await
        }
        (Endpoint::Upload(name, id), Method::DELETE) => uploads::cancel(state, &name, &id).await,
        (Endpoint::Referrers(name, digest), Method::GET) => {
            referrers::list(state, &name, &digest, &query).await
        }
        (endpoint, method) => Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!(
                "{method} is not supported on the {} endpoint",
                endpoint.route()
            ),
        )
        .into()),
    };
    if is_write {
        // The audit trail of pushes and deletes; the request span adds the
        // method, the path and the request id.
        let status = match &answer {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.status(),
        };
        // Debug-formatted: a user name cannot break the log line.
        let user = user.as_ref().map(tracing::field::debug);
        tracing::info!(status, user, "write answered");
    }
    answer
}

/// `GET /v2/`: `{}`, and the replica's mode in `Berth-Mode`, so CI systems
/// can see a maintenance window coming.
fn base(state: &AppState, head: bool) -> Response {
    let body = if head {
        Body::empty()
    } else {
        Body::from("{}")
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mode = mode_header(&state.write_gate.mode());
    if let Ok(value) = HeaderValue::from_str(&mode) {
        headers.insert(HeaderName::from_static("berth-mode"), value);
    }
    response
}
