//! A stand-in for one replica's admin port whose `AcquireReadOnly` waits
//! until the test lets it answer. Listed first in `--admin-endpoints`, it
//! holds a collection between its reading of the store and its window, so
//! a test can write to the real replicas at exactly that moment. It can
//! also stop answering renewals, as a frozen replica does, and answer as a
//! restarted replica (another id). It writes nothing: its journal of
//! written repositories is always empty.

use std::sync::Arc;

use registry_proto::maintenance::maintenance_server::{Maintenance, MaintenanceServer};
use registry_proto::maintenance::{
    AcquireReadOnlyRequest, Lease, ReleaseReadOnlyRequest, ReleaseReadOnlyResponse,
    RenewReadOnlyRequest, RepositoriesWritten, RepositoriesWrittenRequest, StatusRequest,
    StatusResponse,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The stand-in replica; stops when dropped.
#[derive(Debug)]
pub struct HeldReplica {
    /// `http://127.0.0.1:<port>`, for `--admin-endpoints`.
    pub endpoint: String,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
}

#[derive(Debug, Default)]
struct Gate {
    arrived: Notify,
    go: Notify,
    renewals_hang: std::sync::atomic::AtomicBool,
    restarted: std::sync::atomic::AtomicBool,
}

impl Gate {
    /// Announces nothing in the store: never missed by the checks.
    fn replica_id(&self) -> String {
        if self.restarted.load(std::sync::atomic::Ordering::SeqCst) {
            "held-replica-restarted".to_owned()
        } else {
            "held-replica".to_owned()
        }
    }
}

impl HeldReplica {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the stand-in admin port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound address"));
        let gate = Arc::new(Gate::default());
        let shutdown = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(MaintenanceServer::new(Held(gate.clone())))
            .serve_with_incoming_shutdown(
                service_runtime::grpc::incoming(listener),
                shutdown.clone().cancelled_owned(),
            );
        tokio::spawn(async move { server.await.expect("the stand-in admin port") });
        HeldReplica {
            endpoint,
            gate,
            shutdown,
        }
    }

    /// Waits until a collection asks this replica for the lease.
    pub async fn acquire_arrived(&self) {
        self.gate.arrived.notified().await;
    }

    /// Lets the waiting acquire answer (or the next one, at once).
    pub fn let_go(&self) {
        self.gate.go.notify_one();
    }

    /// From now on, answers under another id, as a replica restarted on
    /// the same address would.
    pub fn restart(&self) {
        self.gate
            .restarted
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on, renewals never answer.
    pub fn hang_renewals(&self) {
        self.gate
            .renewals_hang
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for HeldReplica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Held(Arc<Gate>);

impl Held {
    fn lease(&self, lease_id: String, holder: String) -> Lease {
        Lease {
            lease_id,
            holder,
            reason: String::new(),
            expires_at_unix_ms: i64::MAX,
            replica_id: self.0.replica_id(),
        }
    }
}

#[tonic::async_trait]
impl Maintenance for Held {
    async fn acquire_read_only(
        &self,
        request: Request<AcquireReadOnlyRequest>,
    ) -> Result<Response<Lease>, Status> {
        self.0.arrived.notify_one();
        self.0.go.notified().await;
        let request = request.into_inner();
        Ok(Response::new(self.lease(request.lease_id, request.holder)))
    }

    async fn renew_read_only(
        &self,
        request: Request<RenewReadOnlyRequest>,
    ) -> Result<Response<Lease>, Status> {
        if self
            .0
            .renewals_hang
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            std::future::pending::<()>().await;
        }
        let request = request.into_inner();
        Ok(Response::new(self.lease(request.lease_id, request.holder)))
    }

    async fn release_read_only(
        &self,
        _request: Request<ReleaseReadOnlyRequest>,
    ) -> Result<Response<ReleaseReadOnlyResponse>, Status> {
        Ok(Response::new(ReleaseReadOnlyResponse {}))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse::default()))
    }

    async fn repositories_written(
        &self,
        _request: Request<RepositoriesWrittenRequest>,
    ) -> Result<Response<RepositoriesWritten>, Status> {
        Ok(Response::new(RepositoriesWritten {
            replica_id: self.0.replica_id(),
            position: 0,
            repositories: Vec::new(),
            complete: true,
        }))
    }
}
