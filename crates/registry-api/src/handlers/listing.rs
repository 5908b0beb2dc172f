//! `GET /v2/_catalog` and `GET /v2/<name>/tags/list`, paginated with `n`
//! and `last` in lexical order.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use registry_core::{ErrorCode, RegistryError, RepositoryName};

use super::header_value;
use crate::AppState;
use crate::access;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::query::{Page, Query, paginate};

/// The repositories the client may pull, paginated.
pub async fn catalog(
    state: &AppState,
    query: &Query,
    principal: Option<&Principal>,
) -> ApiResult<Response> {
    let all = state.store.repositories().await?;
    let visible = access::visible(state, principal, &all).await?;
    let names = all
        .iter()
        .zip(visible)
        .filter(|(_, visible)| *visible)
        .map(|(name, _)| name.to_string())
        .collect();
    let page = paginate(names, query)?;
    let body = serde_json::json!({ "repositories": page.entries });
    Ok(with_link(Json(body).into_response(), &page, "/v2/_catalog"))
}

pub async fn tags(state: &AppState, name: &RepositoryName, query: &Query) -> ApiResult<Response> {
    let tags = state.store.tags(name).await?.ok_or_else(|| {
        RegistryError::new(
            ErrorCode::NameUnknown,
            format!("repository {name} is not known to this registry"),
        )
    })?;
    let page = paginate(tags.iter().map(ToString::to_string).collect(), query)?;
    let body = serde_json::json!({ "name": name.as_str(), "tags": page.entries });
    let path = format!("/v2/{name}/tags/list");
    Ok(with_link(Json(body).into_response(), &page, &path))
}

fn with_link(mut response: Response, page: &Page, path: &str) -> Response {
    if let Some(link) = page.link(path) {
        response
            .headers_mut()
            .insert(header::LINK, header_value(&link));
    }
    response
}
