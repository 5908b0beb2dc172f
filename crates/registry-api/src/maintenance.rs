//! The `registry.maintenance.v1.Maintenance` gRPC service: read-only leases
//! recorded in the store, so every replica honours one window, and a
//! status. The lease ends by itself when nobody renews it.

use std::time::Duration;

use registry_proto::maintenance::maintenance_server::Maintenance;
use registry_proto::maintenance::{
    AcquireReadOnlyRequest, Lease, ReleaseReadOnlyRequest, ReleaseReadOnlyResponse,
    RenewReadOnlyRequest, RepositoriesWritten, RepositoriesWrittenRequest, StatusRequest,
    StatusResponse,
};
use registry_storage::{LeaseRecord, Store, now_unix_ms};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::write_gate::{Mode, format_time};
use crate::{AppState, WriteGate};

/// Longest lease one call may ask for.
const MAX_TTL_SECONDS: u64 = 3600;
/// How long entering read-only waits for this replica's writes in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
/// How long writes whose bodies were cut off get to answer.
const CUT_LIMIT: Duration = Duration::from_secs(5);

/// How many recent garbage collection reports `Status` answers.
const RECENT_GC_REPORTS: usize = 20;
/// For how many check intervals one successful lease check vouches.
const CHECKS_VOUCHED: u32 = 2;
/// The least time between two checks off the schedule: the retries after
/// a failed check, and the checks writes ask for while the view is stale.
/// Writes resume within about this long of the store answering again.
const CHECK_RETRY: Duration = Duration::from_secs(1);

/// The gRPC service over this replica's store and write gate.
#[derive(Debug, Clone)]
pub struct MaintenanceService {
    state: AppState,
}

/// Acquire's answer when this replica did not stop writing in time.
fn not_drained(what: &str) -> Status {
    Status::failed_precondition(format!(
        "{what} on this replica after {} s; release and retry later",
        DRAIN_LIMIT.as_secs()
    ))
}

/// Why a lease state was not recorded: refused, or the store failed.
enum LeaseError {
    Refused(Status),
    Storage(registry_storage::StorageError),
}

impl From<registry_storage::StorageError> for LeaseError {
    fn from(error: registry_storage::StorageError) -> Self {
        LeaseError::Storage(error)
    }
}

fn storage(error: registry_storage::StorageError) -> Status {
    tracing::error!(%error, "maintenance: storage failure");
    Status::unavailable(format!("the store did not answer: {error}"))
}

fn ttl_ms(ttl_seconds: u64) -> Result<i64, Status> {
    if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
        return Err(Status::invalid_argument(format!(
            "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
        )));
    }
    Ok(i64::try_from(ttl_seconds * 1000).unwrap_or(i64::MAX))
}

fn held_by_other(record: &LeaseRecord) -> Status {
    Status::failed_precondition(format!(
        "the registry is already read-only for {} ({}) until {}",
        record.holder,
        record.reason,
        format_time(record.expires_at_unix_ms)
    ))
}

impl MaintenanceService {
    pub fn new(state: AppState) -> Self {
        MaintenanceService { state }
    }

    fn store(&self) -> &Store {
        &self.state.store
    }

    fn write_gate(&self) -> &WriteGate {
        &self.state.write_gate
    }

    /// `record` as answered to a caller, naming this replica.
    fn to_proto(&self, record: &LeaseRecord) -> Lease {
        Lease {
            lease_id: record.lease_id.clone(),
            holder: record.holder.clone(),
            reason: record.reason.clone(),
            expires_at_unix_ms: record.expires_at_unix_ms,
            replica_id: self.state.replica_id.clone(),
        }
    }
}

impl MaintenanceService {
    /// Records the state that follows the newest one in the store, as
    /// `next` makes it from that one (`None`: nothing to record), and tells
    /// the write gate. When another replica records a state first, the
    /// decision is made again on the newer one. Returns the state now in
    /// force.
    async fn record_next(
        &self,
        mut next: impl FnMut(Option<&LeaseRecord>) -> Result<Option<LeaseRecord>, Status>,
    ) -> Result<Option<LeaseRecord>, Status> {
        let in_force = self
            .store()
            .record_next_lease(|current| next(current).map_err(LeaseError::Refused))
            .await
            .map_err(|error| match error {
                LeaseError::Refused(status) => status,
                LeaseError::Storage(error) => storage(error),
            })?;
        self.write_gate().observe(in_force.clone());
        Ok(in_force)
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn acquire_read_only(
        &self,
        request: Request<AcquireReadOnlyRequest>,
    ) -> Result<Response<Lease>, Status> {
        let request = request.into_inner();
        if request.lease_id.is_empty() || request.holder.is_empty() {
            return Err(Status::invalid_argument("lease_id and holder are required"));
        }
        let ttl = ttl_ms(request.ttl_seconds)?;
        let granted = self
            .record_next(|current| {
                if let Some(current) = current
                    && current.is_active(now_unix_ms())
                    && current.lease_id != request.lease_id
                {
                    return Err(held_by_other(current));
                }
                Ok(Some(LeaseRecord {
                    version: 0,
                    lease_id: request.lease_id.clone(),
                    holder: request.holder.clone(),
                    reason: request.reason.clone(),
                    expires_at_unix_ms: now_unix_ms() + ttl,
                    released: false,
                }))
            })
            .await?
            .expect("acquiring always records a state");
        tracing::warn!(holder = %granted.holder, reason = %granted.reason, version = granted.version, until = %format_time(granted.expires_at_unix_ms), "read-only for maintenance");
        let mut still_writing = self.write_gate().drain(DRAIN_LIMIT).await;
        if still_writing > 0 {
            // Bodies still arriving (a slow client) are cut off rather than
            // holding off the window; their clients retry after it.
            tracing::warn!(
                writes = still_writing,
                "cutting off request bodies still arriving after {}s",
                DRAIN_LIMIT.as_secs()
            );
            self.write_gate().cut_writes_in_flight();
            still_writing = self.write_gate().drain(CUT_LIMIT).await;
        }
        if still_writing > 0 {
            return Err(not_drained(&format!(
                "{still_writing} writes still in flight"
            )));
        }
        // Answered chunks may still be hashing; their states are writes too.
        if tokio::time::timeout(DRAIN_LIMIT, self.store().settle_uploads())
            .await
            .is_err()
        {
            return Err(not_drained("upload hashes still being saved"));
        }
        Ok(Response::new(self.to_proto(&granted)))
    }

    async fn renew_read_only(
        &self,
        request: Request<RenewReadOnlyRequest>,
    ) -> Result<Response<Lease>, Status> {
        let request = request.into_inner();
        let ttl = ttl_ms(request.ttl_seconds)?;
        let renewed = self
            .record_next(|current| {
                let Some(current) = current else {
                    return Err(Status::failed_precondition(
                        "no lease is in force; acquire a new one",
                    ));
                };
                if !current.is_held_by(&request.lease_id, &request.holder) {
                    return Err(Status::permission_denied(
                        "only the holder of the lease may renew it",
                    ));
                }
                if !current.is_active(now_unix_ms()) {
                    return Err(Status::failed_precondition(
                        "the lease has ended and writes may have resumed; acquire a new one",
                    ));
                }
                Ok(Some(LeaseRecord {
                    expires_at_unix_ms: now_unix_ms() + ttl,
                    ..current.clone()
                }))
            })
            .await?
            .expect("renewing always records a state");
        Ok(Response::new(self.to_proto(&renewed)))
    }

    async fn release_read_only(
        &self,
        request: Request<ReleaseReadOnlyRequest>,
    ) -> Result<Response<ReleaseReadOnlyResponse>, Status> {
        let request = request.into_inner();
        let released = self
            .record_next(|current| match current {
                Some(current)
                    if current.is_held_by(&request.lease_id, &request.holder)
                        && !current.released =>
                {
                    Ok(Some(LeaseRecord {
                        expires_at_unix_ms: now_unix_ms(),
                        released: true,
                        ..current.clone()
                    }))
                }
                Some(current)
                    if current.is_active(now_unix_ms())
                        && !current.is_held_by(&request.lease_id, &request.holder) =>
                {
                    Err(Status::permission_denied(
                        "only the holder of the lease may release it",
                    ))
                }
                _ => Ok(None),
            })
            .await?;
        if let Some(record) = released.filter(|record| record.released) {
            tracing::info!(holder = %record.holder, version = record.version, "read-only window released");
        }
        Ok(Response::new(ReleaseReadOnlyResponse {}))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let mode = self.write_gate().mode();
        let last_gc_report = self
            .store()
            .latest_gc_report()
            .await
            .map_err(storage)?
            .map(|report| String::from_utf8_lossy(&report).into_owned())
            .unwrap_or_default();
        let recent_gc_reports = self
            .store()
            .recent_gc_reports(RECENT_GC_REPORTS)
            .await
            .map_err(storage)?
            .iter()
            .map(|report| String::from_utf8_lossy(report).into_owned())
            .collect();
        Ok(Response::new(StatusResponse {
            read_only: mode != Mode::ReadWrite,
            lease: match &mode {
                Mode::Maintenance(record) => Some(self.to_proto(record)),
                _ => None,
            },
            writes_in_flight: self.write_gate().writes_in_flight(),
            read_only_on_boot: mode == Mode::ReadOnlyOnBoot,
            last_gc_report,
            recent_gc_reports,
        }))
    }

    async fn repositories_written(
        &self,
        request: Request<RepositoriesWrittenRequest>,
    ) -> Result<Response<RepositoriesWritten>, Status> {
        let journal = &self.write_gate().journal;
        // The position first: a write admitted between the two is
        // reported again next time, never missed.
        let position = journal.position();
        let (repositories, complete) = match request.into_inner().since {
            None => (Vec::new(), true),
            Some(since) => match journal.written_since(since) {
                Some(written) => (written.iter().map(ToString::to_string).collect(), true),
                None => (Vec::new(), false),
            },
        };
        Ok(Response::new(RepositoriesWritten {
            replica_id: self.state.replica_id.clone(),
            position,
            repositories,
            complete,
        }))
    }
}

/// One lease check: announces this replica in the store, then reads the
/// lease. In that order: gc-worker records a lease before it reads the
/// announcements, so a replica it did not see as announced reads the lease
/// after it was recorded. On success the view is fresh for
/// [`CHECKS_VOUCHED`] intervals from the check's start.
pub async fn check_lease(state: &AppState, admin: &str, interval: Duration) -> bool {
    let (started, started_unix_ms) = (tokio::time::Instant::now(), now_unix_ms());
    let vouched = interval * CHECKS_VOUCHED;
    let checked = async {
        state
            .store
            .announce_replica(&state.replica_id, admin, vouched)
            .await?;
        state.store.read_lease().await
    };
    match checked.await {
        Ok(lease) => {
            state
                .write_gate
                .confirm(lease, started_unix_ms, started + vouched);
            true
        }
        Err(error) => {
            tracing::warn!(%error, "cannot check the maintenance lease in the store; writes stop if this lasts");
            false
        }
    }
}

/// Checks the lease every `interval`, every [`CHECK_RETRY`] while checks
/// fail, and soon when a write found the view stale, until `shutdown`;
/// then withdraws this replica's announcement. `shutdown` must come only
/// once no request can write any more: a replica is announced for as
/// long as it may. Writes in flight are cut off the moment the view goes
/// stale, even while a check is still waiting on the store.
pub async fn follow_lease(
    state: AppState,
    admin: String,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut last_check = tokio::time::Instant::now();
    let first_passed = state.write_gate.view_is_fresh();
    let mut next_check = last_check + next_check_after(first_passed, interval);
    let mut checking = None;
    // The end of the view whose writes were already cut off.
    let mut cut_at = None;
    loop {
        let fresh_until = state.write_gate.view_fresh_until();
        let stale_at = fresh_until.filter(|_| fresh_until != cut_at);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(next_check), if checking.is_none() => {
                last_check = tokio::time::Instant::now();
                checking = Some(Box::pin(check_lease(&state, &admin, interval)));
            }
            passed = async { checking.as_mut().expect("guarded").await }, if checking.is_some() => {
                checking = None;
                next_check = last_check + next_check_after(passed, interval);
            }
            () = state.write_gate.check_wanted() => {
                // Writes arriving while the store fails ask again and again.
                next_check = next_check.min(last_check + CHECK_RETRY);
            }
            () = sleep_until_some(stale_at) => {
                cut_writes_on_a_stale_view(&state);
                cut_at = fresh_until;
            }
        }
    }
    drop(checking);
    if let Err(error) = state
        .store
        .withdraw_replica(&state.replica_id, &admin)
        .await
    {
        tracing::warn!(%error, "the replica's announcement was not withdrawn; it ages out");
    }
}

/// The time from a check to the next: `interval` after a successful one,
/// [`CHECK_RETRY`] after a failed one, so that a store answering again
/// renews the view before it goes stale.
fn next_check_after(passed: bool, interval: Duration) -> Duration {
    if passed { interval } else { CHECK_RETRY }
}

/// Sleeps until `until`, or forever when there is none.
async fn sleep_until_some(until: Option<tokio::time::Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

/// The view of the lease went stale: gc-worker stops counting this replica
/// as one that may write about now, so request bodies still arriving are
/// cut off (503; the client sends the chunk again) rather than written
/// into a window this replica may not know of.
fn cut_writes_on_a_stale_view(state: &AppState) {
    let writes = state.write_gate.writes_in_flight();
    if writes > 0 {
        tracing::warn!(
            writes,
            "no lease check succeeded for two intervals; cutting off request bodies still arriving"
        );
        state.write_gate.cut_writes_in_flight();
    }
}
