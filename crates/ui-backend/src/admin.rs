//! The read-only state and the garbage collection reports, from one
//! registry-api replica's admin gRPC `Maintenance.Status`, with the admin
//! token. Read at most every [`FRESH_FOR`](crate::cache::FRESH_FOR).

use std::sync::Arc;
use std::time::Duration;

use registry_proto::maintenance::StatusRequest;
use registry_proto::maintenance::maintenance_client::MaintenanceClient;
use serde::Serialize;
use service_runtime::token::SharedToken;
use tonic::transport::Channel;

use crate::cache::{Fresh, Weigh};
use crate::inspect::rfc3339;

/// What `GET /api/v1/status` answers.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    read_only: bool,
    window: Option<Window>,
    read_only_on_boot: bool,
    latest_gc: Option<serde_json::Value>,
    gc_history: Vec<serde_json::Value>,
}

/// An open read-only window.
#[derive(Clone, Debug, Serialize)]
struct Window {
    holder: String,
    reason: String,
    until: String,
}

impl Weigh for Arc<Status> {
    fn weigh(&self) -> u64 {
        // A few reports of a few hundred bytes each.
        16 << 10
    }
}

/// Why the status cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the registry's admin port at {endpoint} did not answer: {reason}")]
pub struct AdminError {
    endpoint: String,
    reason: String,
}

/// The admin port of one replica.
#[derive(Debug)]
pub struct Admin {
    client: MaintenanceClient<Channel>,
    endpoint: String,
    token: Option<SharedToken>,
    latest: Fresh<(), Arc<Status>>,
}

impl Admin {
    /// Connects lazily: ui-backend starts even while the replica does not.
    pub fn new(
        endpoint: &url::Url,
        token: Option<SharedToken>,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Admin {
            client: MaintenanceClient::new(channel),
            endpoint: endpoint.to_string(),
            token,
            latest: Fresh::new(64 << 10),
        })
    }

    pub async fn status(&self) -> Result<Arc<Status>, AdminError> {
        self.latest.get_or_fetch((), self.read()).await
    }

    async fn read(&self) -> Result<Arc<Status>, AdminError> {
        let mut request = tonic::Request::new(StatusRequest {});
        if let Some(token) = &self.token {
            token.attach(&mut request);
        }
        let answer = self
            .client
            .clone()
            .status(request)
            .await
            .map_err(|status| AdminError {
                endpoint: self.endpoint.clone(),
                reason: status.message().to_owned(),
            })?
            .into_inner();
        let parse = |json: &str| serde_json::from_str::<serde_json::Value>(json).ok();
        let window = answer.lease.map(|lease| Window {
            holder: lease.holder,
            reason: lease.reason,
            until: rfc3339(
                std::time::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(lease.expires_at_unix_ms).unwrap_or(0)),
            ),
        });
        Ok(Arc::new(Status {
            read_only: answer.read_only,
            window,
            read_only_on_boot: answer.read_only_on_boot,
            latest_gc: parse(&answer.last_gc_report),
            gc_history: answer
                .recent_gc_reports
                .iter()
                .filter_map(|json| parse(json))
                .collect(),
        }))
    }
}
