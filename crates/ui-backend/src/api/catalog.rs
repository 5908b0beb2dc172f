//! `GET /api/v1/repositories`: search and pages over the whole catalog the
//! user may see, with each listed repository's tag count and newest push.

use axum::Json;
use axum::extract::{Query, State};
use futures::StreamExt;
use serde::Serialize;

use super::error::ApiResult;
use super::params::{self, Paging, Params};
use crate::AppState;
use crate::inspect::{Viewer, rfc3339};
use crate::registry::UpstreamError;

/// Repositories of one page described at once.
const ROWS_AT_ONCE: usize = 8;

#[derive(Debug, Serialize)]
pub struct CatalogPage {
    total: usize,
    #[serde(flatten)]
    paging: Paging,
    repositories: Vec<RepositoryRow>,
}

#[derive(Debug, Serialize)]
struct RepositoryRow {
    name: String,
    tag_count: usize,
    last_pushed: Option<String>,
}

pub async fn repositories(
    State(app): State<AppState>,
    viewer: Viewer,
    Query(params): Query<Params>,
) -> ApiResult<Json<CatalogPage>> {
    let paging = Paging::from_params(&params)?;
    let _turn = app.fan_out_turn().await;
    let search = params::search(&params);
    let all = app.inspector.catalog(&viewer).await?;
    let found: Vec<&String> = all
        .iter()
        .filter(|name| params::matches(name, &search))
        .collect();
    let shown: Vec<String> = paging
        .slice(&found)
        .iter()
        .map(|name| (*name).clone())
        .collect();
    let rows: Vec<Result<RepositoryRow, UpstreamError>> = futures::stream::iter(shown)
        .map(|name| {
            let (app, viewer) = (&app, &viewer);
            async move { row(app, viewer, &name).await }
        })
        .buffered(ROWS_AT_ONCE)
        .collect()
        .await;
    Ok(Json(CatalogPage {
        total: found.len(),
        paging,
        repositories: rows.into_iter().collect::<Result<_, _>>()?,
    }))
}

async fn row(app: &AppState, viewer: &Viewer, name: &str) -> Result<RepositoryRow, UpstreamError> {
    let tags = match app.inspector.tags(viewer, name).await {
        Ok(tags) => tags,
        // Deleted since the catalog was read.
        Err(UpstreamError::NotFound(_)) => Default::default(),
        Err(other) => return Err(other),
    };
    let heads = app.inspector.heads(viewer, name, &tags).await?;
    let last_pushed = heads.iter().filter_map(|(_, head)| head.pushed).max();
    Ok(RepositoryRow {
        name: name.to_owned(),
        tag_count: tags.len(),
        last_pushed: last_pushed.map(rfc3339),
    })
}
