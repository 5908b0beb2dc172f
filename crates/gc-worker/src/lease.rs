//! The read-only lease on every registry-api replica: taken on all or
//! none, renewed while gc-worker works, released on every way out. If
//! gc-worker dies, it simply runs out.

use std::time::Duration;

use anyhow::{Context, bail};
use registry_proto::maintenance::maintenance_client::MaintenanceClient;
use registry_proto::maintenance::{
    AcquireReadOnlyRequest, ReleaseReadOnlyRequest, RenewReadOnlyRequest,
};
use service_runtime::token::SharedToken;
use tonic::transport::Channel;

/// One replica's admin service.
#[derive(Clone, Debug)]
struct Replica {
    endpoint: url::Url,
    client: MaintenanceClient<Channel>,
}

/// A lease held on every replica.
#[derive(Debug)]
pub struct LeaseSet {
    replicas: Vec<Replica>,
    lease_id: String,
    holder: String,
    ttl: Duration,
    token: Option<SharedToken>,
}

impl LeaseSet {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            token.attach(&mut request);
        }
        request
    }

    /// Connects to every replica's admin port (before the window, so the
    /// window does not include connection set-up), then takes the lease on
    /// every replica. If one refuses or cannot be reached, releases what
    /// was taken and fails: never sweep while any replica may write.
    pub async fn acquire(
        endpoints: &[url::Url],
        ttl: Duration,
        token: Option<SharedToken>,
        window_opens: impl FnOnce(),
    ) -> anyhow::Result<LeaseSet> {
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
        window_opens();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let set = LeaseSet {
            replicas,
            lease_id: uuid::Uuid::new_v4().to_string(),
            holder: format!("gc-worker@{host}:{}", std::process::id()),
            ttl,
            token,
        };
        for (index, replica) in set.replicas.iter().enumerate() {
            let request = set.request(AcquireReadOnlyRequest {
                lease_id: set.lease_id.clone(),
                holder: set.holder.clone(),
                ttl_seconds: ttl.as_secs().max(1),
                reason: "garbage collection".to_owned(),
            });
            if let Err(status) = replica.client.clone().acquire_read_only(request).await {
                tracing::error!(endpoint = %replica.endpoint, code = ?status.code(), message = status.message(), "a replica refused the read-only lease");
                set.release_on(&set.replicas[..=index]).await;
                bail!(
                    "replica {} refused the read-only lease: {}",
                    replica.endpoint,
                    status.message()
                );
            }
        }
        tracing::info!(replicas = set.replicas.len(), holder = %set.holder, "registry read-only");
        Ok(set)
    }

    /// Renews every replica's lease every third of its time to live; returns
    /// only when a renewal fails (the caller then stops the sweep).
    pub async fn keep_renewed(&self) {
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            for replica in &self.replicas {
                let request = self.request(RenewReadOnlyRequest {
                    lease_id: self.lease_id.clone(),
                    holder: self.holder.clone(),
                    ttl_seconds: self.ttl.as_secs().max(1),
                });
                if let Err(status) = replica.client.clone().renew_read_only(request).await {
                    tracing::error!(endpoint = %replica.endpoint, message = status.message(), "renewing the lease failed; stopping the sweep");
                    return;
                }
            }
        }
    }

    /// Releases the lease on every replica (errors are logged: an
    /// unreleased lease runs out by itself).
    pub async fn release(self) {
        self.release_on(&self.replicas).await;
        tracing::info!("registry read-write again");
    }

    async fn release_on(&self, replicas: &[Replica]) {
        for replica in replicas {
            let request = self.request(ReleaseReadOnlyRequest {
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
