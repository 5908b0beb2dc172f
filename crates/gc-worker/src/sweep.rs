//! Sweeping: carrying out a plan. Repositories first (links, sessions,
//! pruning), then blobs. What goes is retired into a trash inside the window
//! (a rename per object on a filesystem) and destroyed after it. The caller
//! drops the sweep the moment the lease is in doubt.

use object_store::path::Path;
use registry_storage::{IncompleteUpload, Store, Trash};

use crate::plan::{Plan, Rules};

/// Takes what `plan` names out of the registry, with a progress bar on a
/// terminal. Links go before blobs, so that no link is ever left to a blob
/// that is gone: those of every repository together, in batches.
pub async fn sweep(store: &Store, trash: &Trash, plan: &Plan) -> anyhow::Result<()> {
    let links: Vec<&Path> = plan
        .repositories
        .iter()
        .filter(|repository| !repository.prune)
        .flat_map(|repository| &repository.objects)
        .collect();
    let steps =
        links.len().div_ceil(BATCH) + plan.repositories.len() + plan.blobs.len().div_ceil(BATCH);
    let progress = Progress::new(steps as u64);
    for batch in links.chunks(BATCH) {
        progress.step("sweeping manifests and links");
        tracing::info!(links = batch.len(), "retiring a batch of links");
        let paths = batch.iter().map(|path| (*path).clone()).collect();
        store.retire_objects(trash, paths).await?;
    }
    for repository in &plan.repositories {
        progress.step(&format!("sweeping {}", repository.name));
        trash.ensure_secured()?;
        if repository.prune {
            store.retire_repository(trash, &repository.name).await?;
            tracing::info!(repository = %repository.name, "repository pruned");
            continue;
        }
        for (subject, referrer, descriptor) in &repository.referrers_to_index {
            store
                .add_referrer(&repository.name, subject, referrer, descriptor.clone())
                .await?;
        }
        for id in &repository.uploads {
            store.delete_upload_session(&repository.name, id).await?;
        }
    }
    for batch in plan.blobs.chunks(BATCH) {
        progress.step("sweeping blobs");
        tracing::info!(blobs = batch.len(), "retiring a batch of blobs");
        let paths = batch.iter().map(|blob| blob.listed.path.clone()).collect();
        store.retire_objects(trash, paths).await?;
    }
    progress.finish();
    Ok(())
}

/// Objects taken out per step.
const BATCH: usize = 4096;

/// A progress bar when standard error is a terminal; nothing otherwise
/// (the structured logs say what happened).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(steps: u64) -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(steps);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Progress(Some(bar))
    }

    fn step(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Deletes the tag history of removed manifests, after the window.
pub async fn sweep_tag_history(store: &Store, plan: &Plan) -> anyhow::Result<()> {
    let paths = plan
        .repositories
        .iter()
        .filter(|repository| !repository.prune)
        .flat_map(|repository| repository.tag_history.iter().cloned())
        .collect();
    store.delete_objects(paths).await?;
    Ok(())
}

/// Aborts the incomplete S3 multipart uploads older than the upload age
/// limit and the grace period (pushes cut off by a killed replica); only
/// counts them in a dry run. Nothing visible changes, so this needs no
/// window. Returns how many there were.
pub async fn abort_abandoned_multiparts(
    store: &Store,
    rules: &Rules,
    dry_run: bool,
) -> anyhow::Result<usize> {
    let abandoned: Vec<_> = store
        .incomplete_multipart_uploads()
        .await?
        .into_iter()
        .filter(|upload| is_abandoned(upload, rules))
        .collect();
    if !dry_run {
        for upload in &abandoned {
            store.abort_multipart_upload(upload).await?;
            tracing::info!(key = %upload.key, "incomplete multipart upload aborted");
        }
    }
    Ok(abandoned.len())
}

/// Started before both the upload age limit and the grace period.
fn is_abandoned(upload: &IncompleteUpload, rules: &Rules) -> bool {
    upload.initiated < rules.upload_cutoff && upload.initiated < rules.grace_cutoff
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn only_uploads_older_than_both_limits_are_abandoned() {
        let now = SystemTime::now();
        let rules = Rules {
            delete_untagged: true,
            grace_cutoff: now - Duration::from_secs(3600),
            upload_cutoff: now - Duration::from_secs(24 * 3600),
        };
        let started = |ago: u64| IncompleteUpload {
            key: "docker/registry/v2/blobs/sha256/ab/ab/data".into(),
            upload_id: "id".to_owned(),
            initiated: now - Duration::from_secs(ago),
        };
        assert!(is_abandoned(&started(25 * 3600), &rules));
        assert!(!is_abandoned(&started(23 * 3600), &rules));
        assert!(!is_abandoned(&started(60), &rules));
        let short = Rules {
            upload_cutoff: now - Duration::from_secs(60),
            ..rules
        };
        assert!(
            !is_abandoned(&started(120), &short),
            "grace still protects it"
        );
    }
}
