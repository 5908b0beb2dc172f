//! What Berth keeps beside the registry tree, under `berth/` (a prefix
//! Distribution ignores): the numbered states of the read-only lease every
//! replica honours, and the garbage collection reports.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{StorageError, Store};

/// How many named garbage collection reports the store keeps.
pub const KEPT_GC_REPORTS: usize = 100;

/// One state of the read-only window, as recorded in the store.
///
/// States are numbered: each acquire, renewal and release records the next
/// version, and only one writer can record a given version. A replica
/// replaces the state it knows only with a newer one, so a slow read that
/// started before a lease was granted can never reopen writes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    pub version: u64,
    pub lease_id: String,
    pub holder: String,
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_unix_ms: i64,
    /// Released by its holder before it ran out.
    #[serde(default)]
    pub released: bool,
}

impl LeaseRecord {
    pub fn is_active(&self, now_unix_ms: i64) -> bool {
        !self.released && now_unix_ms < self.expires_at_unix_ms
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

/// Lease states kept behind the newest, for readers that listed a moment ago.
const LEASE_STATES_KEPT: u64 = 8;

impl Store {
    /// The newest lease state, if a lease was ever taken (active or not).
    pub async fn read_lease(&self) -> Result<Option<LeaseRecord>, StorageError> {
        let mut attempts = 0;
        loop {
            let Some(newest) = self.lease_versions().await?.into_iter().max() else {
                return Ok(None);
            };
            let key = self.layout.lease_state(newest);
            let bytes = match self.objects.get(&key).await {
                Ok(result) => result.bytes().await?,
                // Pruned after a newer state was recorded: read that one.
                Err(object_store::Error::NotFound { .. }) if attempts < 3 => {
                    attempts += 1;
                    continue;
                }
                Err(other) => return Err(StorageError::from_backend(other)),
            };
            return serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                StorageError::Corrupt {
                    path: key.to_string(),
                    reason: error.to_string(),
                }
            });
        }
    }

    /// Records `record` as lease state `record.version`; `false` when
    /// another writer recorded that version first (read again and decide).
    pub async fn record_lease(&self, record: &LeaseRecord) -> Result<bool, StorageError> {
        let options = PutOptions::from(PutMode::Create);
        let key = self.layout.lease_state(record.version);
        match self.objects.put_opts(&key, encode(record), options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
            Err(other) => return Err(other.into()),
        }
        let stale = self
            .lease_versions()
            .await?
            .into_iter()
            .filter(|version| version + LEASE_STATES_KEPT <= record.version);
        for version in stale {
            self.delete_object(&self.layout.lease_state(version))
                .await?;
        }
        Ok(true)
    }

    /// Records the state that follows the newest one, as `next` makes it
    /// from that one (`None`: nothing to record). When another writer
    /// records a state first, `next` decides again on the newer one.
    /// Returns the state now in force.
    pub async fn record_next_lease<E: From<StorageError>>(
        &self,
        mut next: impl FnMut(Option<&LeaseRecord>) -> Result<Option<LeaseRecord>, E>,
    ) -> Result<Option<LeaseRecord>, E> {
        loop {
            let current = self.read_lease().await?;
            let Some(mut record) = next(current.as_ref())? else {
                return Ok(current);
            };
            record.version = current.as_ref().map_or(1, |current| current.version + 1);
            if self.record_lease(&record).await? {
                return Ok(Some(record));
            }
        }
    }

    async fn lease_versions(&self) -> Result<Vec<u64>, StorageError> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self
            .objects
            .list(Some(&self.layout.lease_states()))
            .try_collect()
            .await?;
        Ok(listed
            .iter()
            .filter_map(|meta| {
                meta.location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// The time now on the store's own clock, at the resolution it keeps
    /// modification times (a second on S3), read off an object written for
    /// the purpose: ages compared with it are immune to clock skew between
    /// this machine and the store, and to the store truncating times.
    pub async fn clock(&self) -> Result<std::time::SystemTime, StorageError> {
        let key = self.layout.clock();
        self.objects
            .put(&key, PutPayload::from_static(b"{}"))
            .await?;
        Ok(self.objects.head(&key).await?.last_modified.into())
    }

    /// Stores a garbage collection report as the latest and under its name
    /// (its start time, so names sort by time), and forgets all but the
    /// newest [`KEPT_GC_REPORTS`].
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
        for old in self.gc_report_keys().await?.iter().skip(KEPT_GC_REPORTS) {
            self.delete_object(old).await?;
        }
        Ok(())
    }

    /// The latest garbage collection report, if any.
    pub async fn latest_gc_report(&self) -> Result<Option<Bytes>, StorageError> {
        self.read_optional(&self.layout.gc_report("latest")).await
    }

    /// Up to `limit` garbage collection reports, newest first.
    pub async fn recent_gc_reports(&self, limit: usize) -> Result<Vec<Bytes>, StorageError> {
        let keys = self.gc_report_keys().await?;
        let reads = keys.iter().take(limit).map(|key| self.read_optional(key));
        let reports = futures::future::try_join_all(reads).await?;
        // A report deleted between the listing and the read is skipped.
        Ok(reports.into_iter().flatten().collect())
    }

    /// The keys of the named reports, newest first.
    async fn gc_report_keys(&self) -> Result<Vec<Path>, StorageError> {
        let latest = self.layout.gc_report("latest");
        let mut keys: Vec<Path> = self
            .objects
            .list(Some(&self.layout.gc_reports()))
            .map_ok(|meta| meta.location)
            .try_filter(|key| std::future::ready(*key != latest))
            .try_collect()
            .await?;
        keys.sort_unstable_by(|a, b| b.as_ref().cmp(a.as_ref()));
        Ok(keys)
    }

    async fn read_optional(&self, key: &Path) -> Result<Option<Bytes>, StorageError> {
        match self.objects.get(key).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

fn encode(record: &LeaseRecord) -> PutPayload {
    PutPayload::from(serde_json::to_vec(record).expect("a lease record always serializes"))
}
