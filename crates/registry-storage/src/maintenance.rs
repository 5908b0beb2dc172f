//! What Berth keeps beside the registry tree, under `berth/` (a prefix
//! Distribution ignores): the read-only lease record every replica honours,
//! and the garbage collection reports.

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{StorageError, Store};

/// A read-only window, as recorded in the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    pub lease_id: String,
    pub holder: String,
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_unix_ms: i64,
}

impl LeaseRecord {
    pub fn is_active(&self, now_unix_ms: i64) -> bool {
        now_unix_ms < self.expires_at_unix_ms
    }

    /// Whether `lease_id` and `holder` name this lease.
    pub fn is_held_by(&self, lease_id: &str, holder: &str) -> bool {
        self.lease_id == lease_id && self.holder == holder
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// The lease record, if there is one (active or not).
    pub async fn read_lease(&self) -> Result<Option<LeaseRecord>, StorageError> {
        let key = self.layout.lease();
        let bytes = match self.objects.get(&key).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StorageError::Corrupt {
                path: key.to_string(),
                reason: error.to_string(),
            })
    }

    /// Records a new lease where none is recorded; `false` when another
    /// replica recorded one first (read it again and decide).
    pub async fn create_lease(&self, record: &LeaseRecord) -> Result<bool, StorageError> {
        let options = PutOptions::from(PutMode::Create);
        match self
            .objects
            .put_opts(&self.layout.lease(), encode(record), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Overwrites the lease record (renewals, and replacing an expired one).
    pub async fn replace_lease(&self, record: &LeaseRecord) -> Result<(), StorageError> {
        self.objects
            .put(&self.layout.lease(), encode(record))
            .await?;
        Ok(())
    }

    pub async fn delete_lease(&self) -> Result<(), StorageError> {
        self.delete_object(&self.layout.lease()).await
    }

    /// Stores a garbage collection report as the latest and under its name.
    pub async fn write_gc_report(&self, name: &str, report: Bytes) -> Result<(), StorageError> {
        self.objects
            .put(
                &self.layout.gc_report(name),
                PutPayload::from(report.clone()),
            )
            .await?;
        self.objects
            .put(&self.layout.gc_report("latest"), PutPayload::from(report))
            .await?;
        Ok(())
    }

    /// The latest garbage collection report, if any.
    pub async fn latest_gc_report(&self) -> Result<Option<Bytes>, StorageError> {
        match self.objects.get(&self.layout.gc_report("latest")).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

fn encode(record: &LeaseRecord) -> PutPayload {
    PutPayload::from(serde_json::to_vec(record).expect("a lease record always serializes"))
}
