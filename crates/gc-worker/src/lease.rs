//! The read-only lease on every registry-api replica: taken on all or
//! none, renewed while gc-worker works, released on every way out. If
//! gc-worker dies, it simply runs out.
//!
//! gc-worker keeps its own account of how long the lease is certainly in
//! force: from the moment each round of requests was sent, not answered.
//! When a replica stops answering (frozen, partitioned), renewals fail or
//! hang, and the sweep is stopped before the last confirmed lease can have
//! run out anywhere, whatever the outcome of the calls in flight.
//!
//! Once the lease is recorded, the replicas announced in the store are
//! compared with those that took it: a replica that may be accepting
//! writes and was not told (missing from `--admin-endpoints`) stops the
//! collection before anything is swept.

use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, bail};
use registry_proto::maintenance::maintenance_client::MaintenanceClient;
use registry_proto::maintenance::{
    AcquireReadOnlyRequest, ReleaseReadOnlyRequest, RenewReadOnlyRequest,
};
use registry_storage::{Store, Trash};
use service_runtime::token::SharedToken;
use tonic::transport::Channel;

/// One replica's admin service.
#[derive(Clone, Debug)]
pub struct Replica {
    pub endpoint: url::Url,
    pub client: MaintenanceClient<Channel>,
}

/// Connects to every replica's admin port, before anything is read, so
/// that an unreachable replica stops the run at once and the window does
/// not include connection set-up.
pub async fn connect(endpoints: &[url::Url]) -> anyhow::Result<Vec<Replica>> {
    let mut replicas = Vec::new();
    for endpoint in endpoints {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .with_context(|| format!("cannot reach the admin port of replica {endpoint}"))?;
        replicas.push(Replica {
            endpoint: endpoint.clone(),
            client: MaintenanceClient::new(channel),
        });
    }
    Ok(replicas)
}

/// `message` as a request carrying the admin token, when there is one.
pub fn authorized<T>(token: Option<&SharedToken>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        token.attach(&mut request);
    }
    request
}

/// A lease held on every replica.
#[derive(Debug)]
pub struct LeaseSet {
    replicas: Vec<Replica>,
    lease_id: String,
    holder: String,
    ttl: Duration,
    token: Option<SharedToken>,
    /// When the first acquire request was sent: no replica's lease can end
    /// before this plus the time to live.
    requested_at: Instant,
    /// The ids the replicas answered the acquire with.
    told: Vec<String>,
}

/// Covers the store's rounding of modification times (a second on S3).
pub const CLOCK_SLACK: Duration = Duration::from_secs(2);
/// An announcement this long past its freshness is a replica that died
/// without withdrawing it, and is removed.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(3600);

/// Kept back from the time to live when deciding how long the lease is
/// certainly in force (clock rates, the last operation in flight).
fn margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_secs(1)).min(ttl / 2)
}

impl LeaseSet {
    /// `message` as a request carrying the admin token, when there is one.
    pub fn authorized<T>(&self, message: T) -> tonic::Request<T> {
        authorized(self.token.as_ref(), message)
    }

    /// The replicas holding the lease, in `--admin-endpoints` order.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Takes the lease on every replica. If one refuses or cannot be
    /// reached, releases what was taken and fails: never sweep while any
    /// replica may write.
    pub async fn acquire(
        replicas: Vec<Replica>,
        ttl: Duration,
        token: Option<SharedToken>,
    ) -> anyhow::Result<LeaseSet> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let mut set = LeaseSet {
            replicas,
            lease_id: uuid::Uuid::new_v4().to_string(),
            holder: format!("gc-worker@{host}:{}", std::process::id()),
            ttl,
            token,
            requested_at: Instant::now(),
            told: Vec::new(),
        };
        for (index, replica) in set.replicas.iter().enumerate() {
            let request = set.authorized(AcquireReadOnlyRequest {
                lease_id: set.lease_id.clone(),
                holder: set.holder.clone(),
                ttl_seconds: ttl.as_secs().max(1),
                reason: "garbage collection".to_owned(),
            });
            match replica.client.clone().acquire_read_only(request).await {
                Ok(granted) => set.told.push(granted.into_inner().replica_id),
                Err(status) => {
                    tracing::error!(endpoint = %replica.endpoint, code = ?status.code(), message = status.message(), "a replica refused the read-only lease");
                    set.release_on(&set.replicas[..=index]).await;
                    bail!(
                        "replica {} refused the read-only lease: {}",
                        replica.endpoint,
                        status.message()
                    );
                }
            }
        }
        tracing::info!(replicas = set.replicas.len(), holder = %set.holder, "registry read-only");
        Ok(set)
    }

    /// Fails when a replica announced in the store may be accepting writes
    /// and did not take the lease. Read after the lease was recorded: a
    /// replica announcing itself later reads the lease after announcing.
    /// Removes announcements long dead.
    pub async fn check_every_replica_told(&self, store: &Store) -> anyhow::Result<()> {
        let now = store.clock().await?;
        for replica in store.announced_replicas().await? {
            if self.told.contains(&replica.id) {
                continue;
            }
            if replica.may_write_at(now, CLOCK_SLACK) {
                let age = now.duration_since(replica.announced).unwrap_or_default();
                bail!(
                    "replica {} (admin {}, announced {} s ago) serves this store but is not in \
                     --admin-endpoints, so it was not told of the read-only window and nothing \
                     was collected: add its admin address to --admin-endpoints, or stop it",
                    replica.id,
                    replica.admin,
                    age.as_secs()
                );
            }
            if replica.may_write_at(now, FORGOTTEN_AFTER) {
                continue;
            }
            tracing::info!(replica = %replica.id, admin = %replica.admin, "removing the announcement of a replica gone for an hour");
            if let Err(error) = store.forget_replica(&replica.id).await {
                tracing::warn!(replica = %replica.id, %error, "the old announcement stays; the next run tries again");
            }
        }
        Ok(())
    }

    /// Until when, short of a renewal, the lease is certainly in force on
    /// every replica.
    pub fn secured_until(&self) -> std::time::Instant {
        (self.requested_at + self.ttl - margin(self.ttl)).into_std()
    }

    /// Renews every replica's lease every third of its time to live,
    /// telling `trash` after each renewal how long the lease is now
    /// secured. Returns (the caller then stops the sweep) when a renewal
    /// fails, or when no renewal confirmed the lease recently enough that
    /// it is certainly still in force on every replica.
    pub async fn keep_renewed(&self, trash: &Trash) {
        let margin = margin(self.ttl);
        let mut secured_until = self.requested_at + self.ttl - margin;
        let mut next_round = self.requested_at + self.ttl / 3;
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(secured_until) => {
                    tracing::error!("the read-only lease may be running out on a replica that did not answer; stopping the sweep");
                    trash.secure_until(std::time::Instant::now());
                    return;
                }
                () = tokio::time::sleep_until(next_round) => {}
            }
            let round_started = Instant::now();
            let renewed = tokio::select! {
                biased;
                () = tokio::time::sleep_until(secured_until) => false,
                renewed = self.renew_everywhere() => renewed,
            };
            if !renewed {
                tracing::error!("renewing the read-only lease failed; stopping the sweep");
                trash.secure_until(std::time::Instant::now());
                return;
            }
            secured_until = round_started + self.ttl - margin;
            trash.secure_until(secured_until.into_std());
            next_round = round_started + self.ttl / 3;
        }
    }

    /// One renewal on every replica, each call bounded well inside the
    /// time to live; `false` when any fails.
    async fn renew_everywhere(&self) -> bool {
        for replica in &self.replicas {
            let mut request = self.authorized(RenewReadOnlyRequest {
                lease_id: self.lease_id.clone(),
                holder: self.holder.clone(),
                ttl_seconds: self.ttl.as_secs().max(1),
            });
            request.set_timeout(self.ttl / 4);
            if let Err(status) = replica.client.clone().renew_read_only(request).await {
                tracing::error!(endpoint = %replica.endpoint, message = status.message(), "a replica did not renew the lease");
                return false;
            }
        }
        true
    }

    /// Releases the lease on every replica (errors are logged: an
    /// unreleased lease runs out by itself).
    pub async fn release(self) {
        self.release_on(&self.replicas).await;
        tracing::info!("registry read-write again");
    }

    async fn release_on(&self, replicas: &[Replica]) {
        for replica in replicas {
            let request = self.authorized(ReleaseReadOnlyRequest {
                lease_id: self.lease_id.clone(),
                holder: self.holder.clone(),
            });
            if let Err(status) = replica.client.clone().release_read_only(request).await {
                tracing::warn!(endpoint = %replica.endpoint, message = status.message(), "releasing the lease failed; it runs out by itself");
            }
        }
    }
}

/// Checks the endpoints parse as gRPC addresses before anything starts.
pub fn validate(endpoints: &[url::Url]) -> anyhow::Result<()> {
    for endpoint in endpoints {
        tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .with_context(|| format!("--admin-endpoints {endpoint} is not a gRPC address"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica that stops answering (frozen, cut off) must stop the
    /// sweep before the lease it last confirmed can run out there.
    #[tokio::test]
    async fn a_replica_that_stops_answering_stops_the_sweep_in_time() {
        let held = test_support::HeldReplica::start().await;
        held.let_go();
        held.hang_renewals();
        let ttl = Duration::from_secs(4);
        let endpoint: url::Url = held.endpoint.parse().expect("URL");
        let replicas = connect(&[endpoint]).await.expect("connect");
        let lease = LeaseSet::acquire(replicas, ttl, None)
            .await
            .expect("acquire");
        let root = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(root.path().to_str().expect("UTF-8 path")).expect("store");
        let trash = store.trash(lease.secured_until());
        lease.keep_renewed(&trash).await;
        let stopped_after = lease.requested_at.elapsed();
        assert!(
            stopped_after < ttl - margin(ttl) + Duration::from_millis(200),
            "the sweep would have gone on {stopped_after:?} into a {ttl:?} lease"
        );
        assert!(
            trash.ensure_secured().is_err(),
            "the trash takes nothing out once the lease is no longer secured"
        );
    }
}
