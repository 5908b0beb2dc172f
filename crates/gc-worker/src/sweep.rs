//! Sweeping: carrying out a plan. Repositories first (links, sessions,
//! pruning), then blobs. The caller drops the sweep the moment the lease is
//! in doubt.

use registry_storage::Store;

use crate::plan::Plan;

/// Deletes what `plan` names.
pub async fn sweep(store: &Store, plan: &Plan) -> anyhow::Result<()> {
    for repository in &plan.repositories {
        if repository.prune {
            store.delete_repository(&repository.name).await?;
            tracing::info!(repository = %repository.name, "repository pruned");
            continue;
        }
        store.delete_objects(repository.objects.clone()).await?;
        for id in &repository.uploads {
            store.delete_upload_session(&repository.name, id).await?;
        }
    }
    for chunk in plan.blobs.chunks(1024) {
        let paths = chunk.iter().map(|blob| blob.listed.path.clone()).collect();
        store.delete_objects(paths).await?;
    }
    Ok(())
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
