//! `/api/v1`: the JSON API the web UI runs on (documented in this crate's
//! README). Every call acts with the caller's own credentials.

mod catalog;
mod delete;
mod error;
mod image;
mod params;
mod route;
mod session;
mod tags;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::inspect::Viewer;
use delete::Doomed;
pub use error::{ApiError, ApiResult};
use params::Params;
use route::Target;

/// The routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", get(session::session))
        .route("/status", get(status))
        .route("/repositories", get(catalog::repositories))
        .route("/repositories/{*rest}", get(repository).delete(repository))
        .fallback(|| async { ApiError::not_found("no such API path: see the README for the list") })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::method_not_allowed(format!(
                "{method} is not an operation on this path: see the README for the list"
            ))
        })
}

/// Everything under `/repositories/{name}/...`, dispatched by [`Target`].
async fn repository(
    State(app): State<AppState>,
    method: Method,
    viewer: Viewer,
    Path(rest): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<Response> {
    let target = Target::parse(&rest)?;
    let _turn = app.fan_out_turn().await;
    let v = &viewer;
    let response = match (&method, &target) {
        (&Method::GET, Target::Tags(name)) => {
            Json(tags::list(&app, v, name, &params).await?).into_response()
        }
        (&Method::GET, Target::Image(name, reference)) => {
            Json(image::show(&app, v, name, reference).await?).into_response()
        }
        (&Method::GET, Target::TagDeletePreview(name, tag)) => {
            Json(delete::preview(&app, v, name, Doomed::Tag(tag)).await?).into_response()
        }
        (&Method::GET, Target::ManifestDeletePreview(name, digest)) => {
            Json(delete::preview(&app, v, name, Doomed::Manifest(digest)).await?).into_response()
        }
        (&Method::DELETE, Target::Tag(name, tag)) => {
            Json(delete::delete(&app, v, name, Doomed::Tag(tag)).await?).into_response()
        }
        (&Method::DELETE, Target::Manifest(name, digest)) => {
            Json(delete::delete(&app, v, name, Doomed::Manifest(digest)).await?).into_response()
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not an operation on this path"
            )));
        }
    };
    Ok(response)
}

/// `GET /api/v1/status`, for a user the registry knows.
async fn status(State(app): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    app.inspector.registry.check(&viewer.user).await?;
    let status = app
        .admin
        .status()
        .await
        .map_err(|error| ApiError::unreachable(error.to_string()))?;
    Ok(Json(status.as_ref().clone()).into_response())
}
