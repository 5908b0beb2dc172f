//! gc-worker: garbage collection that can never leave the registry stuck
//! read-only or lose data.
//!
//! A collection reads the whole store before the window (manifests are
//! content-addressed, so what it reads stays true), then takes the
//! read-only lease on every replica, lists again the repositories the
//! replicas wrote to since (every repository when their journals cannot
//! say, see [`journal`]) and marks those again, keeping the marks made
//! before the window for the rest (see [`plan::Marking`]), sweeps, and
//! releases the lease on every way out, once nothing is being swept any
//! more. Nothing referenced within the grace period is deleted.

mod config;
pub mod fsck;
mod journal;
mod lease;
pub mod lease_admin;
mod plan;
mod report;
mod serve;
mod sweep;

pub use config::{Cli, Command, GcConfig, LeaseAction};
pub use report::Report;
pub use serve::{parse_schedule, serve};

use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use futures::FutureExt;
use registry_storage::{Store, shown_storage};
use tokio_util::sync::CancellationToken;

use crate::lease::LeaseSet;
use crate::plan::{Marking, Reader, Rules};

/// Opens the store `--storage` names; an error names the flag and its
/// value with every query value hidden.
pub fn open_store(storage: &str) -> anyhow::Result<Store> {
    Store::open(storage).with_context(|| format!("--storage {}", shown_storage(storage)))
}

/// Runs one collection; `shutdown` (SIGTERM, SIGINT) stops it, releasing
/// the lease first.
pub async fn run_once(config: &GcConfig, shutdown: CancellationToken) -> anyhow::Result<Report> {
    let started = Instant::now();
    lease::validate(&config.admin_endpoints)?;
    let token = config.admin_token()?;
    let store = open_store(&config.storage)?;
    // Ages are measured on the store's clock, which wrote the times compared.
    let store_now = store.clock().await.context("reading the store's clock")?;
    let rules = Rules {
        delete_untagged: config.delete_untagged,
        grace_cutoff: store_now
            .checked_sub(config.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        upload_cutoff: store_now
            .checked_sub(config.upload_max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    };
    let mut report = Report {
        started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        dry_run: config.dry_run,
        delete_untagged: config.delete_untagged,
        grace_seconds: config.grace.as_secs(),
        ..Report::default()
    };

    let replicas = lease::connect(&config.admin_endpoints).await?;
    let positions = journal::positions(&replicas, token.as_ref(), store_now).await;
    tracing::info!(storage = %shown_storage(&config.storage), "reading the store before the window");
    let reader = Reader::default();
    let before = store.scan_repositories().await?;
    let marking = Marking::of(&store, &reader, before, rules).await?;
    // Blobs and layer links written after these listings are not
    // candidates, so listing them before the window is enough; the marking
    // inside it decides which candidates go.
    let blobs = store.scan_blobs().await?;
    report.multipart_uploads_aborted =
        sweep::abort_abandoned_multiparts(&store, &rules, config.dry_run).await?;
    if config.dry_run {
        let plan = marking.plan(blobs, rules);
        report.count(&plan);
        print!("{}", report::describe(&plan, &report));
        report.total_ms = report::millis(started.elapsed());
        return Ok(report);
    }
    report.prepare_ms = report::millis(started.elapsed());

    let window = Instant::now();
    let lease = tokio::select! {
        lease = LeaseSet::acquire(replicas, config.lease_ttl, token) => lease?,
        () = shutdown.cancelled() => bail!("interrupted before the window"),
    };
    // Not spawned: when the select below ends any other way, the sweep is
    // dropped, so it stops before the registry becomes writable again. The
    // trash itself takes nothing out past the time the lease is secured.
    let trash = store.trash(lease.secured_until());
    let inside = std::panic::AssertUnwindSafe(async {
        lease.check_every_replica_told(&store).await?;
        store.adopt_leftover_trash(&trash).await?;
        let mark_started = Instant::now();
        // Every decision rests on the store as it is inside the window: a
        // push acknowledged before it is seen here, whatever the listing
        // before the window missed.
        let (marking, relisted) =
            mark_inside_the_window(&store, &reader, &lease, positions, marking, rules).await?;
        let plan = marking.plan(blobs, rules);
        let mark_ms = report::millis(mark_started.elapsed());
        tracing::info!(
            repositories = plan.repositories.len(),
            blobs = plan.blobs.len(),
            "sweeping what nothing kept references"
        );
        let sweeping = Instant::now();
        sweep::sweep(&store, &trash, &plan).await?;
        Ok::<_, anyhow::Error>((plan, relisted, mark_ms, report::millis(sweeping.elapsed())))
    })
    .catch_unwind();
    // The lease is looked at first whenever several are ready: a sweep
    // step is never taken once the lease may have run out.
    let outcome = tokio::select! {
        biased;
        () = lease.keep_renewed(&trash) => {
            Err(anyhow::anyhow!("the read-only lease could not be kept; nothing more was swept"))
        }
        () = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted by a signal inside the window")),
        finished = inside => finished.unwrap_or_else(|_| Err(anyhow::anyhow!("the collection panicked"))),
    };
    // The sweep is dropped, but renames already handed to threads would
    // run on: none may land once the registry is writable again.
    trash.halt().await;
    lease.release().await;
    report.window_ms = report::millis(window.elapsed());
    tracing::info!("destroying the trash of this and any earlier interrupted collection");
    // What the trash holds is out of every reader's view, and the next run
    // destroys whatever is left of it: a signal may stop this at any point.
    let emptied = tokio::select! {
        emptied = store.empty_trash(trash) => emptied.context("emptying the trash of this collection"),
        () = shutdown.cancelled() => Err(anyhow::anyhow!(
            "interrupted by a signal while destroying the trash; the next run destroys the rest"
        )),
    };
    let (plan, relisted, mark_ms, sweep_ms) = outcome?;
    emptied?;
    if let Err(error) = sweep::sweep_tag_history(&store, &plan).await {
        tracing::warn!(error = %format!("{error:#}"), "some tag history entries were not removed; the next run retries");
    }
    report.count(&plan);
    report.whole_store_relisted = relisted.is_none();
    report.repositories_relisted = relisted.unwrap_or(report.repositories_scanned);
    report.mark_ms = mark_ms;
    report.sweep_ms = sweep_ms;
    report.total_ms = report::millis(started.elapsed());
    let json = serde_json::to_vec_pretty(&report)?;
    let name = report.started_at.replace(':', "-");
    store.write_gc_report(&name, json.into()).await?;
    tracing::info!(
        blobs = report.blobs_deleted,
        bytes = report.bytes_freed,
        manifests = report.manifests_deleted,
        repositories_pruned = report.repositories_pruned,
        window_ms = report.window_ms,
        "garbage collected"
    );
    Ok(report)
}

/// The marking as the store is inside the window: the one made before it,
/// with the repositories the replicas' journals name as written since
/// listed and marked again (and how many that was); the whole store listed
/// and marked again (`None`) when the journals cannot say.
async fn mark_inside_the_window(
    store: &Store,
    reader: &Reader,
    lease: &LeaseSet,
    positions: Option<journal::Positions>,
    mut marking: Marking,
    rules: Rules,
) -> anyhow::Result<(Marking, Option<usize>)> {
    let written = match positions {
        Some(positions) => journal::written_since(lease, &positions, store).await?,
        None => None,
    };
    let Some(written) = written else {
        tracing::info!(
            "marking what the tags reach, from a listing of the whole store inside the window"
        );
        let current = store.scan_repositories().await?;
        return Ok((Marking::of(store, reader, current, rules).await?, None));
    };
    tracing::info!(
        repositories = written.len(),
        "marking what the tags reach, listing again the repositories written since the listing"
    );
    marking.update(store, reader, &written, rules).await?;
    Ok((marking, Some(written.len())))
}
