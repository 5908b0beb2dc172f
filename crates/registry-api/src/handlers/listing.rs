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
use crate::query::{Page, PageRequest, Query, paginate};

/// The repositories the client may pull, paginated. The store is walked
/// only as far as the page needs, asking the policy about a page's worth
/// of names at a time.
pub async fn catalog(
    state: &AppState,
    query: &Query,
    principal: Option<&Principal>,
) -> ApiResult<Response> {
    let request = PageRequest::parse(query)?;
    let wanted = request.size.saturating_add(1);
    let mut walk = state.store.walk_repositories(Some(&request.after));
    let mut names = Vec::new();
    while names.len() < wanted {
        let batch = walk.next_batch(wanted - names.len()).await?;
        if batch.is_empty() {
            break;
        }
        let visible = access::visible(state, principal, &batch).await?;
        names.extend(
            batch
                .iter()
                .zip(visible)
                .filter(|(_, visible)| *visible)
                .map(|(name, _)| name.to_string()),
        );
    }
    let page = request.page(names);
    let body = serde_json::json!({ "repositories": page.entries });
    Ok(with_link(Json(body).into_response(), &page, "/v2/_catalog"))
}

pub async fn tags(state: &AppState, name: &RepositoryName, query: &Query) -> ApiResult<Response> {
    let continuing = query.get("last").is_some_and(|last| !last.is_empty());
    let tags = state
        .store
        .tag_list(name, continuing)
        .await?
        .ok_or_else(|| {
            RegistryError::new(
                ErrorCode::NameUnknown,
                format!("repository {name} is not known to this registry"),
            )
        })?;
    let page = paginate(&tags, query)?;
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
