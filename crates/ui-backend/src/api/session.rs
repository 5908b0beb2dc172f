//! `GET /api/v1/session`: checks the browser's credentials against
//! registry-api's `GET /v2/` and says who they belong to.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use super::error::ApiResult;
use crate::AppState;
use crate::inspect::Viewer;

#[derive(Debug, serde::Serialize)]
pub struct Session {
    /// The user name; none on a registry without authentication.
    user: Option<String>,
    /// The registry's name in pull commands (`--public-name`).
    public_name: String,
}

pub async fn session(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> ApiResult<Json<Session>> {
    app.inspector.registry.check(&viewer.user).await?;
    Ok(Json(Session {
        user: basic_user(&headers),
        public_name: app.public_name.clone(),
    }))
}

/// The user name of a `Basic` `Authorization` header.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    registry_core::parse_basic(value.as_bytes()).map(|(user, _)| user)
}
