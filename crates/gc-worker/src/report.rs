//! The report of one collection: counts, bytes, time per phase and the
//! length of the read-only window. Written into the store as JSON and
//! logged.

use std::time::Duration;

use crate::plan::Plan;

/// What one collection did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub started_at: String,
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub grace_seconds: u64,
    pub repositories_scanned: usize,
    pub repositories_pruned: usize,
    pub manifests_deleted: usize,
    pub layer_links_deleted: usize,
    pub uploads_deleted: usize,
    /// Incomplete S3 multipart uploads (pushes cut off by a killed
    /// replica) older than the upload age limit, aborted.
    pub multipart_uploads_aborted: usize,
    /// Referrers entries written for manifests that had none (a store
    /// written by Distribution, or from before the index existed).
    pub referrers_indexed: usize,
    pub blobs_deleted: usize,
    pub bytes_freed: u64,
    /// Repositories listed again inside the window: those the replicas'
    /// journals named as written since the listing before it, or every
    /// one (`whole_store_relisted`) when the journals could not say.
    pub repositories_relisted: usize,
    pub whole_store_relisted: bool,
    /// Scan and read before the window (milliseconds).
    pub prepare_ms: u64,
    /// Re-scan and mark inside the window.
    pub mark_ms: u64,
    /// Deletions inside the window.
    pub sweep_ms: u64,
    /// First lease taken to last lease released.
    pub window_ms: u64,
    pub total_ms: u64,
}

pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Report {
    pub fn count(&mut self, plan: &Plan) {
        self.repositories_scanned = plan.repositories_scanned;
        self.repositories_pruned = plan
            .repositories
            .iter()
            .filter(|repository| repository.prune)
            .count();
        self.manifests_deleted = plan
            .repositories
            .iter()
            .map(|repository| repository.manifests)
            .sum();
        self.layer_links_deleted = plan
            .repositories
            .iter()
            .map(|repository| repository.layer_links)
            .sum();
        self.uploads_deleted = plan
            .repositories
            .iter()
            .map(|repository| repository.uploads.len())
            .sum();
        self.referrers_indexed = plan
            .repositories
            .iter()
            .map(|repository| repository.referrers_to_index.len())
            .sum();
        self.blobs_deleted = plan.blobs.len();
        self.bytes_freed = plan.bytes();
    }
}

/// The dry run's plan, per repository, for people.
pub fn describe(plan: &Plan, report: &Report) -> String {
    let mut text = String::new();
    for repository in &plan.repositories {
        text.push_str(&format!(
            "{}: {} manifests, {} layer links, {} stale uploads, {} referrers to index{}\n",
            repository.name,
            repository.manifests,
            repository.layer_links,
            repository.uploads.len(),
            repository.referrers_to_index.len(),
            if repository.prune {
                ", repository pruned"
            } else {
                ""
            }
        ));
    }
    text.push_str(&format!(
        "incomplete multipart uploads: {}\n",
        report.multipart_uploads_aborted
    ));
    text.push_str(&format!(
        "blobs: {} ({} bytes) of {} repositories scanned\n",
        plan.blobs.len(),
        plan.bytes(),
        plan.repositories_scanned
    ));
    text
}
