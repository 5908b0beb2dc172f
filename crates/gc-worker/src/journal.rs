//! Which repositories changed between the listing before the window and
//! the window itself, as the replicas' write journals tell it
//! (`RepositoriesWritten`): inside the window only those are listed again,
//! and the rest of the listing before it stands.
//!
//! Positions are taken from every replica before the listing starts, and
//! asked about once the lease is recorded (every write admitted before it
//! has finished by then). The journals are trusted only when they cover
//! every write since the positions were taken: each replica answered both
//! times under the same id, remembered everything since, and every
//! replica announced in the store that may have written since (even one
//! that has stopped since) is one of them. Otherwise the whole store is
//! listed again inside the window.

use std::collections::BTreeSet;
use std::time::SystemTime;

use registry_core::RepositoryName;
use registry_proto::maintenance::RepositoriesWrittenRequest;
use registry_storage::Store;
use service_runtime::token::SharedToken;

use crate::lease::{CLOCK_SLACK, LeaseSet, Replica, authorized};

/// Where each replica's journal stood when the listing began.
#[derive(Debug)]
pub struct Positions {
    /// (replica id, position), in `--admin-endpoints` order.
    replicas: Vec<(String, u64)>,
    /// The store's clock, read before the positions were taken.
    taken_at: SystemTime,
}

/// Asks every replica where its journal stands. `None` (the window lists
/// everything) when one cannot tell: an older replica, a failed call.
pub async fn positions(
    replicas: &[Replica],
    token: Option<&SharedToken>,
    store_now: SystemTime,
) -> Option<Positions> {
    let mut positions = Vec::new();
    for replica in replicas {
        let request = authorized(token, RepositoriesWrittenRequest { since: None });
        match replica.client.clone().repositories_written(request).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                positions.push((answer.replica_id, answer.position));
            }
            Err(status) => {
                tracing::warn!(endpoint = %replica.endpoint, message = status.message(), "a replica keeps no write journal; the window lists the whole store");
                return None;
            }
        }
    }
    Some(Positions {
        replicas: positions,
        taken_at: store_now,
    })
}

/// The repositories written to since `positions`, or `None` when the
/// journals may have missed a write (the reason is logged).
pub async fn written_since(
    lease: &LeaseSet,
    positions: &Positions,
    store: &Store,
) -> anyhow::Result<Option<BTreeSet<RepositoryName>>> {
    let mut written = BTreeSet::new();
    for (replica, (id, position)) in lease.replicas().iter().zip(&positions.replicas) {
        let request = lease.authorized(RepositoriesWrittenRequest {
            since: Some(*position),
        });
        let answer = match replica.client.clone().repositories_written(request).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                tracing::warn!(endpoint = %replica.endpoint, message = status.message(), "a replica's write journal cannot be read; the window lists the whole store");
                return Ok(None);
            }
        };
        if answer.replica_id != *id {
            tracing::info!(endpoint = %replica.endpoint, "a replica restarted since the listing; the window lists the whole store");
            return Ok(None);
        }
        if !answer.complete {
            tracing::info!(endpoint = %replica.endpoint, "a replica wrote to too many repositories to remember since the listing; the window lists the whole store");
            return Ok(None);
        }
        for name in answer.repositories {
            written.insert(name.parse()?);
        }
    }
    for replica in store.announced_replicas().await? {
        let asked = positions.replicas.iter().any(|(id, _)| *id == replica.id);
        if !asked && replica.may_write_at(positions.taken_at, CLOCK_SLACK) {
            tracing::info!(replica = %replica.id, admin = %replica.admin, "a replica that was not asked for its journal may have written since the listing; the window lists the whole store");
            return Ok(None);
        }
    }
    Ok(Some(written))
}
