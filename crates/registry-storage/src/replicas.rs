//! The registry-api replicas serving a store: each announces itself under
//! `berth/replicas/<id>.json` when it starts and again at every lease
//! check, and withdraws when it stops (the announcement stays, live for no
//! time, until gc-worker forgets it an hour later). gc-worker reads the
//! announcements once its read-only lease is recorded, to refuse a window
//! that a live replica was not told of, and to know every replica that may
//! have written since it listed the store. Ages are read off the store's own clock
//! (`last_modified`), so clock skew between machines does not matter.

use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};

use crate::{StorageError, Store};

/// What a replica writes about itself.
#[derive(serde::Serialize, serde::Deserialize)]
struct Announcement {
    /// Its admin gRPC address as it listens, for the operator to find it.
    admin: String,
    /// How long after the announcement it may still accept writes without
    /// reading the lease again.
    live_for_ms: u64,
}

/// A replica as announced in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncedReplica {
    pub id: String,
    pub admin: String,
    /// When the store took the announcement, on the store's clock.
    pub announced: SystemTime,
    pub live_for: Duration,
}

impl AnnouncedReplica {
    /// Whether the replica may still be accepting writes at `store_now`
    /// without having read the lease since; `slack` covers the store's
    /// rounding of modification times.
    pub fn may_write_at(&self, store_now: SystemTime, slack: Duration) -> bool {
        self.announced
            .checked_add(self.live_for.saturating_add(slack))
            .is_none_or(|until| until > store_now)
    }
}

impl Store {
    /// Announces (or announces again) replica `id`.
    pub async fn announce_replica(
        &self,
        id: &str,
        admin: &str,
        live_for: Duration,
    ) -> Result<(), StorageError> {
        let announcement = Announcement {
            admin: admin.to_owned(),
            live_for_ms: u64::try_from(live_for.as_millis()).unwrap_or(u64::MAX),
        };
        let body = serde_json::to_vec(&announcement).expect("an announcement serializes");
        self.objects
            .put(&self.layout.replica(id), PutPayload::from(body))
            .await?;
        Ok(())
    }

    /// Withdraws replica `id` as it stops: announces it once more, live
    /// for no time. The announcement stays as a record of when it stopped
    /// (a collection must know of every replica that may have written
    /// since it listed the store) until gc-worker forgets it.
    pub async fn withdraw_replica(&self, id: &str, admin: &str) -> Result<(), StorageError> {
        self.announce_replica(id, admin, Duration::ZERO).await
    }

    /// Removes replica `id`'s announcement, long after it stopped.
    pub async fn forget_replica(&self, id: &str) -> Result<(), StorageError> {
        self.delete_object(&self.layout.replica(id)).await
    }

    /// Every announcement in the store, however old.
    pub async fn announced_replicas(&self) -> Result<Vec<AnnouncedReplica>, StorageError> {
        let listed: Vec<_> = self
            .objects
            .list(Some(&self.layout.replicas()))
            .try_collect()
            .await?;
        let mut replicas = Vec::new();
        for meta in listed {
            let Some(id) = meta
                .location
                .filename()
                .and_then(|name| name.strip_suffix(".json"))
            else {
                continue;
            };
            let bytes = match self.objects.get(&meta.location).await {
                Ok(found) => found.bytes().await?,
                // Withdrawn since the listing.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(other) => return Err(other.into()),
            };
            // Not one of ours (a stray file): named in the log, not a
            // replica, and no reason to stop a collection.
            let announcement: Announcement = match serde_json::from_slice(&bytes) {
                Ok(announcement) => announcement,
                Err(error) => {
                    tracing::warn!(path = %meta.location, %error, "skipping an unreadable replica announcement");
                    continue;
                }
            };
            replicas.push(AnnouncedReplica {
                id: id.to_owned(),
                admin: announcement.admin,
                announced: meta.last_modified.into(),
                live_for: Duration::from_millis(announcement.live_for_ms),
            });
        }
        Ok(replicas)
    }
}
