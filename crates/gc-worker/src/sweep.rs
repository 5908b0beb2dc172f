//! Sweeping: carrying out a plan. Repositories first (links, sessions,
//! pruning), then blobs. What goes is retired into a trash inside the window
//! (a rename per object on a filesystem) and destroyed after it. The caller
//! drops the sweep the moment the lease is in doubt.

use registry_storage::{Store, Trash};

use crate::plan::Plan;

/// Takes what `plan` names out of the registry, with a progress bar on a
/// terminal.
pub async fn sweep(store: &Store, trash: &Trash, plan: &Plan) -> anyhow::Result<()> {
    let steps = plan.repositories.len() + plan.blobs.len().div_ceil(BLOB_BATCH);
    let progress = Progress::new(steps as u64);
    for repository in &plan.repositories {
        progress.step(&format!("sweeping {}", repository.name));
        if repository.prune {
            store.retire_repository(trash, &repository.name).await?;
            tracing::info!(repository = %repository.name, "repository pruned");
            continue;
        }
        store
            .retire_objects(trash, repository.objects.clone())
            .await?;
        for id in &repository.uploads {
            store.delete_upload_session(&repository.name, id).await?;
        }
    }
    for chunk in plan.blobs.chunks(BLOB_BATCH) {
        progress.step("sweeping blobs");
        let paths = chunk.iter().map(|blob| blob.listed.path.clone()).collect();
        store.retire_objects(trash, paths).await?;
    }
    progress.finish();
    Ok(())
}

/// Blobs deleted per batch.
const BLOB_BATCH: usize = 1024;

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
