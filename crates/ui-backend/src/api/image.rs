//! `GET /api/v1/repositories/{name}/images/{tag-or-digest}`: one image or
//! index with everything the UI shows of it.

use std::collections::BTreeMap;

use registry_core::{Reference, RepositoryName};
use serde::Serialize;

use super::error::ApiResult;
use super::tags::{AttachedTag, attached_tags, tags_by_digest};
use crate::AppState;
use crate::inspect::{PlatformSummary, Viewer, rfc3339};
use crate::model::{AttachmentKind, Descriptor, ImageConfig, Kind};
use crate::registry::UpstreamError;

#[derive(Debug, Serialize)]
pub struct ImagePage {
    repository: String,
    reference: String,
    digest: String,
    media_type: String,
    kind: Kind,
    size: Option<u64>,
    pushed: Option<String>,
    tags: Vec<String>,
    platforms: Vec<PlatformSummary>,
    layers: Vec<Layer>,
    config: Option<ConfigView>,
    history: Vec<Step>,
    subject: Option<String>,
    referrers: Vec<ReferrerGroup>,
    attachments: Vec<AttachedTag>,
    pull: PullCommands,
}

#[derive(Debug, Serialize)]
struct Layer {
    digest: String,
    size: u64,
    media_type: String,
}

#[derive(Debug, Serialize)]
struct ConfigView {
    digest: String,
    size: u64,
    media_type: String,
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    created: Option<String>,
    author: Option<String>,
    env: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Vec<String>,
    volumes: Vec<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct Step {
    created: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
    empty_layer: bool,
    size: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ReferrerGroup {
    artifact_type: String,
    kind: AttachmentKind,
    manifests: Vec<Referrer>,
}

#[derive(Debug, Serialize)]
struct Referrer {
    digest: String,
    size: u64,
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct PullCommands {
    by_tag: Option<String>,
    by_digest: String,
}

pub async fn show(
    app: &AppState,
    viewer: &Viewer,
    repository: &RepositoryName,
    reference: &Reference,
) -> ApiResult<ImagePage> {
    let name = repository.as_str();
    let all_tags = app.inspector.tags(viewer, name).await?;
    let head = match reference {
        Reference::Tag(tag) => app.inspector.head(viewer, name, tag.as_str()).await?,
        Reference::Digest(digest) => {
            app.inspector
                .confirm_digest(viewer, name, &digest.to_string())
                .await?
        }
    };
    let digest = head.digest.clone();
    let doc = app.inspector.manifest(viewer, name, &digest).await?;
    let summary = app.inspector.summary(viewer, name, &digest).await?;
    let tags = tags_by_digest(app, viewer, name, &all_tags)
        .await?
        .remove(&digest)
        .unwrap_or_default();
    let referrers = match app.inspector.referrers(viewer, name, &digest).await {
        Ok(referrers) => group_referrers(&referrers),
        Err(UpstreamError::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let mut page = ImagePage {
        repository: name.to_owned(),
        reference: reference.to_string(),
        digest: digest.clone(),
        media_type: doc.media_type.clone(),
        kind: summary.kind,
        size: summary.size,
        pushed: head.pushed.map(rfc3339),
        tags,
        platforms: summary.platforms,
        layers: Vec::new(),
        config: None,
        history: Vec::new(),
        subject: doc
            .manifest
            .subject
            .as_ref()
            .map(|subject| subject.digest.clone()),
        referrers,
        attachments: attached_tags(&all_tags).remove(&digest).unwrap_or_default(),
        pull: pull_commands(&app.public_name, name, reference, &digest),
    };
    page.layers = doc
        .manifest
        .layers
        .iter()
        .map(|layer| Layer {
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        })
        .collect();
    if let (Kind::Image, Some(descriptor)) = (summary.kind, &doc.manifest.config) {
        let config = app
            .inspector
            .config(viewer, name, &descriptor.digest)
            .await?;
        page.history = history(&config, &doc.manifest.layers);
        page.config = Some(config_view(descriptor, &config));
    }
    Ok(page)
}

fn pull_commands(
    public_name: &str,
    repository: &str,
    reference: &Reference,
    digest: &str,
) -> PullCommands {
    PullCommands {
        by_tag: match reference {
            Reference::Tag(tag) => Some(format!("docker pull {public_name}/{repository}:{tag}")),
            Reference::Digest(_) => None,
        },
        by_digest: format!("docker pull {public_name}/{repository}@{digest}"),
    }
}

/// Referrers grouped by artifact type, signatures first.
fn group_referrers(referrers: &[Descriptor]) -> Vec<ReferrerGroup> {
    let mut groups: BTreeMap<(AttachmentKind, String), Vec<Referrer>> = BTreeMap::new();
    for referrer in referrers {
        let artifact_type = referrer
            .artifact_type
            .clone()
            .unwrap_or_else(|| referrer.media_type.clone());
        let kind = AttachmentKind::of_artifact_type(&artifact_type);
        groups
            .entry((kind, artifact_type))
            .or_default()
            .push(Referrer {
                digest: referrer.digest.clone(),
                size: referrer.size,
                annotations: referrer.annotations.clone(),
            });
    }
    groups
        .into_iter()
        .map(|((kind, artifact_type), manifests)| ReferrerGroup {
            artifact_type,
            kind,
            manifests,
        })
        .collect()
}

/// The build steps newest first, as `docker history` shows them, each with
/// the size of the layer it made.
fn history(config: &ImageConfig, layers: &[Descriptor]) -> Vec<Step> {
    let mut sizes = layers.iter().map(|layer| layer.size);
    let mut steps: Vec<Step> = config
        .history
        .iter()
        .map(|entry| Step {
            created: entry.created.clone(),
            created_by: entry.created_by.clone(),
            comment: entry.comment.clone(),
            empty_layer: entry.empty_layer,
            size: if entry.empty_layer {
                Some(0)
            } else {
                sizes.next()
            },
        })
        .collect();
    steps.reverse();
    steps
}

fn config_view(descriptor: &Descriptor, config: &ImageConfig) -> ConfigView {
    let run = config.config.clone().unwrap_or_default();
    let keys = |map: Option<BTreeMap<String, serde_json::Value>>| {
        map.map(|map| map.into_keys().collect()).unwrap_or_default()
    };
    ConfigView {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        media_type: descriptor.media_type.clone(),
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        created: config.created.clone(),
        author: config.author.clone(),
        env: run.env.unwrap_or_default(),
        entrypoint: run.entrypoint.unwrap_or_default(),
        cmd: run.cmd.unwrap_or_default(),
        working_dir: run.working_dir.filter(|dir| !dir.is_empty()),
        user: run.user.filter(|user| !user.is_empty()),
        exposed_ports: keys(run.exposed_ports),
        volumes: keys(run.volumes),
        labels: run.labels.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HistoryEntry;

    #[test]
    fn history_is_newest_first_with_each_layer_on_its_step() {
        let config = ImageConfig {
            history: vec![
                HistoryEntry {
                    created_by: Some("ADD rootfs".into()),
                    ..Default::default()
                },
                HistoryEntry {
                    created_by: Some("ENV A=1".into()),
                    empty_layer: true,
                    ..Default::default()
                },
                HistoryEntry {
                    created_by: Some("COPY app".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let layer = |size| Descriptor {
            size,
            ..Default::default()
        };
        let steps = history(&config, &[layer(100), layer(7)]);
        let shown: Vec<(Option<&str>, Option<u64>)> = steps
            .iter()
            .map(|step| (step.created_by.as_deref(), step.size))
            .collect();
        assert_eq!(
            shown,
            [
                (Some("COPY app"), Some(7)),
                (Some("ENV A=1"), Some(0)),
                (Some("ADD rootfs"), Some(100))
            ]
        );
    }
}
