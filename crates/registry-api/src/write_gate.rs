//! Whether this replica accepts writes (pushes and deletes), and how many
//! are in flight. Pulls never pass through here.
//!
//! The registry is read-only while `--read-only-on-boot` holds, while a
//! maintenance lease has not expired, and whenever this replica's view of
//! the lease is not fresh: at start until the lease is first read, and
//! later when no lease check has succeeded for two check intervals (a
//! store that does not answer, a process that was frozen). gc-worker tells
//! every replica of a lease over gRPC at once; the checks (see
//! `maintenance::follow_lease`) catch what was recorded without a notice.
//! A write first counts itself in flight, then looks at the mode;
//! entering read-only first sets the mode, then waits for the count to
//! drop: whichever comes second sees the other.
//!
//! Lease states are numbered in the store, and the gate only ever moves to
//! a newer one: a read of the store that started before this replica was
//! told of a lease cannot reopen writes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use registry_core::{ErrorCode, RegistryError, RepositoryName};
use registry_storage::{LeaseRecord, now_unix_ms};

use crate::write_journal::{JournalEntry, WriteJournal};

/// Seconds a writer refused by `--read-only-on-boot` is told to wait.
const BOOT_RETRY_AFTER_SECONDS: u64 = 60;
/// How long a write waits for a lease check it asked for, when the view
/// of the lease is stale, before it is refused: long enough for a check
/// still retrying against a store that just came back to give up and the
/// next one to succeed.
const STALE_VIEW_WAIT: Duration = Duration::from_secs(5);
/// Seconds a writer refused while the lease view is stale is told to wait.
const UNKNOWN_RETRY_AFTER_SECONDS: u64 = 1;

/// Opens or closes the registry to writes. The default gate follows no
/// lease (in-process tests without a store to check).
#[derive(Debug, Default)]
pub struct WriteGate {
    read_only_on_boot: AtomicBool,
    /// Whether writes need a fresh view of the lease.
    follows_lease: bool,
    /// Until when the last lease check vouches for the view; `None`
    /// before the first.
    view_fresh_until: Mutex<Option<Instant>>,
    /// When (Unix ms) the newest successful lease check started: a lease
    /// whose end passed after that may have been renewed in the store.
    checked_at_unix_ms: AtomicI64,
    /// Woken when a write finds the view stale, to check at once.
    check_wanted: tokio::sync::Notify,
    lease: RwLock<Option<LeaseRecord>>,
    /// The lease id this replica saw last, and when it first saw it: the
    /// window's age so far, which `Retry-After` is derived from.
    window_seen: Mutex<Option<(String, Instant)>>,
    in_flight: AtomicU64,
    /// Cancelled to cut off the request bodies of the writes in flight
    /// (see [`crate::write_cut`]); replaced by a fresh one each time.
    cut: Mutex<CancellationToken>,
    /// The repositories the admitted writes went to.
    pub journal: WriteJournal,
}

/// A write in progress; dropping it ends the write.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    gate: &'a WriteGate,
    /// Set once the write is admitted.
    _journaled: Option<JournalEntry<'a>>,
}

impl WriteGuard<'_> {
    /// What cuts this write's request body off (see
    /// [`WriteGate::cut_writes_in_flight`]).
    pub fn cut_signal(&self) -> CancellationToken {
        self.gate.cut.lock().expect("never poisoned").clone()
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The replica's mode, as `GET /v2/` and the Maintenance status tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnlyOnBoot,
    /// No fresh view of the lease: not checked yet, checks failing for
    /// two intervals, or the known lease's end passed with no check since.
    LeaseUnknown,
    Maintenance(LeaseRecord),
}

impl WriteGate {
    /// A gate that refuses writes until [`WriteGate::confirm`] is first
    /// called with what the store holds.
    pub fn new(read_only_on_boot: bool) -> Self {
        WriteGate {
            read_only_on_boot: AtomicBool::new(read_only_on_boot),
            follows_lease: true,
            ..WriteGate::default()
        }
    }

    /// Takes in the lease state a lease check read from the store, and
    /// that the view is fresh until `fresh_until`.
    pub fn confirm(&self, lease: Option<LeaseRecord>, started_unix_ms: i64, fresh_until: Instant) {
        self.observe(lease);
        self.checked_at_unix_ms
            .fetch_max(started_unix_ms, Ordering::SeqCst);
        let mut fresh = self.view_fresh_until.lock().expect("never poisoned");
        if fresh.is_none_or(|known| known < fresh_until) {
            *fresh = Some(fresh_until);
        }
    }

    /// Until when the last lease check vouches for the view, once one
    /// succeeded.
    pub fn view_fresh_until(&self) -> Option<Instant> {
        *self.view_fresh_until.lock().expect("never poisoned")
    }

    /// Done when a write found the view stale and wants a lease check.
    pub async fn check_wanted(&self) {
        self.check_wanted.notified().await;
    }

    /// Whether writes may go ahead as far as the view of the lease goes.
    pub fn view_is_fresh(&self) -> bool {
        !self.follows_lease
            || self
                .view_fresh_until
                .lock()
                .expect("never poisoned")
                .is_some_and(|until| Instant::now() < until)
    }

    /// Switches the `--read-only-on-boot` mode on or off.
    pub fn set_read_only(&self, read_only: bool) {
        self.read_only_on_boot.store(read_only, Ordering::SeqCst);
    }

    /// Takes in a lease state read from the store (`None`: no lease was
    /// ever taken) or just recorded by this replica. Only a newer version
    /// replaces the one known. The view's freshness is not extended: only
    /// a lease check does that.
    pub fn observe(&self, lease: Option<LeaseRecord>) {
        let mut known = self.lease.write().expect("never poisoned");
        if let Some(lease) = lease
            && known
                .as_ref()
                .is_none_or(|known| known.version < lease.version)
        {
            let mut seen = self.window_seen.lock().expect("never poisoned");
            if seen.as_ref().is_none_or(|(id, _)| *id != lease.lease_id) {
                *seen = Some((lease.lease_id.clone(), Instant::now()));
            }
            *known = Some(lease);
        }
        let active = known
            .as_ref()
            .is_some_and(|lease| lease.is_active(now_unix_ms()));
        drop(known);
        if !active {
            // A lease id used again later is another window.
            *self.window_seen.lock().expect("never poisoned") = None;
        }
        metrics::gauge!("registry_read_only").set(
            if active || self.read_only_on_boot.load(Ordering::SeqCst) {
                1.0
            } else {
                0.0
            },
        );
    }

    pub fn mode(&self) -> Mode {
        // A lease that ran out by this replica's copy with no check since
        // may have been renewed through another replica: writes wait for
        // a check rather than reopen.
        let mut ended_unchecked = false;
        if let Some(lease) = self.lease.read().expect("never poisoned").as_ref() {
            if lease.is_active(now_unix_ms()) {
                return Mode::Maintenance(lease.clone());
            }
            ended_unchecked = self.follows_lease
                && !lease.released
                && self.checked_at_unix_ms.load(Ordering::SeqCst) < lease.expires_at_unix_ms;
        }
        if self.read_only_on_boot.load(Ordering::SeqCst) {
            return Mode::ReadOnlyOnBoot;
        }
        if ended_unchecked || !self.view_is_fresh() {
            return Mode::LeaseUnknown;
        }
        Mode::ReadWrite
    }

    pub fn writes_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// [`WriteGate::begin_write`], but when the view of the lease is
    /// stale (checks failed for a while, or the known lease ran out
    /// unchecked), first asks for a check and waits
    /// up to [`STALE_VIEW_WAIT`] for it: after a store outage the first
    /// writes are served once the store answers, not refused.
    pub async fn begin_write_checked(
        &self,
        repository: &RepositoryName,
    ) -> Result<WriteGuard<'_>, RegistryError> {
        let deadline = Instant::now() + STALE_VIEW_WAIT;
        while self.mode() == Mode::LeaseUnknown && Instant::now() < deadline {
            self.check_wanted.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.begin_write(repository)
    }

    /// Starts a write to `repository` (recorded in the journal once
    /// admitted), or refuses it with 503 UNAVAILABLE, a message saying
    /// until when, and `Retry-After`.
    pub fn begin_write(
        &self,
        repository: &RepositoryName,
    ) -> Result<WriteGuard<'_>, RegistryError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut guard = WriteGuard {
            gate: self,
            _journaled: None,
        };
        let (message, retry_after) = match self.mode() {
            Mode::ReadWrite => {
                guard._journaled = Some(self.journal.record(repository));
                return Ok(guard);
            }
            Mode::ReadOnlyOnBoot => (
                "the registry is read-only (started with --read-only-on-boot); pulls work, pushes and deletes do not".to_owned(),
                BOOT_RETRY_AFTER_SECONDS,
            ),
            Mode::LeaseUnknown => {
                self.check_wanted.notify_one();
                (
                    "the registry cannot read its maintenance state from the store right now; retry shortly".to_owned(),
                    UNKNOWN_RETRY_AFTER_SECONDS,
                )
            }
            Mode::Maintenance(lease) => {
                let remaining_ms = (lease.expires_at_unix_ms - now_unix_ms()).max(0);
                let remaining = u64::try_from(remaining_ms / 1000 + 1).unwrap_or(1);
                (
                    format!(
                        "the registry is read-only for maintenance ({}) until {}; pulls work, retry pushes and deletes then",
                        lease.reason,
                        format_time(lease.expires_at_unix_ms)
                    ),
                    self.window_age_seconds(&lease.lease_id).clamp(1, remaining),
                )
            }
        };
        drop(guard);
        metrics::counter!("registry_writes_refused_total").increment(1);
        Err(RegistryError::new(ErrorCode::Unavailable, message)
            .with_detail(serde_json::json!({ "retryAfterSeconds": retry_after })))
    }

    /// How long this replica has known the window of `lease_id`, in whole
    /// seconds. A window's end is not known in advance (the collector
    /// renews the lease while it works and releases it when done), so a
    /// refused client is told to come back after as long as the window has
    /// lasted so far: a short window costs a second, a long one is not
    /// polled every second, and no client is sent away for the whole time
    /// to live of a lease that ends in a moment.
    fn window_age_seconds(&self, lease_id: &str) -> u64 {
        match self.window_seen.lock().expect("never poisoned").as_ref() {
            Some((id, since)) if id == lease_id => since.elapsed().as_secs(),
            _ => 0,
        }
    }

    /// Cuts off the request bodies of every write in flight; writes begun
    /// later are not affected.
    pub fn cut_writes_in_flight(&self) {
        let mut cut = self.cut.lock().expect("never poisoned");
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Waits until no write is in flight, at most `limit`. Returns the
    /// writes still in flight (0 when drained).
    pub async fn drain(&self, limit: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let in_flight = self.writes_in_flight();
            if in_flight == 0 || tokio::time::Instant::now() >= deadline {
                return in_flight;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// RFC 3339 for a Unix time in milliseconds.
pub fn format_time(unix_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The `Berth-Mode` header of `GET /v2/`.
pub fn mode_header(mode: &Mode) -> String {
    match mode {
        Mode::ReadWrite => "read-write".to_owned(),
        Mode::ReadOnlyOnBoot | Mode::LeaseUnknown => "read-only".to_owned(),
        Mode::Maintenance(lease) => format!(
            "read-only; until={}; holder={}",
            format_time(lease.expires_at_unix_ms),
            lease.holder.replace([';', ',', '"'], "_")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository() -> RepositoryName {
        "team/app".parse().expect("a repository name")
    }

    fn lease(version: u64, released: bool) -> LeaseRecord {
        LeaseRecord {
            version,
            lease_id: format!("lease-{version}"),
            holder: "gc".to_owned(),
            reason: "test".to_owned(),
            expires_at_unix_ms: now_unix_ms() + 60_000,
            released,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_wait_for_a_lease_check_and_stop_when_checks_stop() {
        let gate = WriteGate::new(false);
        assert_eq!(gate.mode(), Mode::LeaseUnknown);
        assert_eq!(
            gate.begin_write(&repository()).expect_err("unknown").code,
            ErrorCode::Unavailable
        );
        gate.observe(None);
        assert_eq!(
            gate.mode(),
            Mode::LeaseUnknown,
            "a notice is not a check of the store"
        );
        gate.confirm(
            None,
            now_unix_ms(),
            Instant::now() + Duration::from_secs(20),
        );
        assert!(gate.begin_write(&repository()).is_ok());
        tokio::time::advance(Duration::from_secs(19)).await;
        assert!(gate.begin_write(&repository()).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            gate.begin_write(&repository()).is_err(),
            "no check for its whole freshness: writes stop"
        );
        tokio::time::timeout(Duration::from_millis(1), gate.check_wanted())
            .await
            .expect("the refused write asked for a check");
        gate.confirm(
            None,
            now_unix_ms(),
            Instant::now() + Duration::from_secs(20),
        );
        assert!(gate.begin_write(&repository()).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_that_runs_out_unchecked_holds_writes_until_a_check() {
        let gate = WriteGate::new(false);
        let fresh = || Instant::now() + Duration::from_secs(3600);
        let mut lease = lease(1, false);
        lease.expires_at_unix_ms = now_unix_ms() - 1;
        // Read before its end, which has passed since: it may have been
        // renewed through another replica.
        gate.confirm(
            Some(lease.clone()),
            lease.expires_at_unix_ms - 1000,
            fresh(),
        );
        assert_eq!(gate.mode(), Mode::LeaseUnknown);
        assert!(gate.begin_write(&repository()).is_err());
        gate.confirm(Some(lease), now_unix_ms(), fresh());
        assert_eq!(
            gate.mode(),
            Mode::ReadWrite,
            "a check after its end found it over"
        );
    }

    #[test]
    fn only_a_newer_lease_state_replaces_the_known_one() {
        let gate = WriteGate::default();
        gate.observe(Some(lease(5, false)));
        assert!(matches!(gate.mode(), Mode::Maintenance(_)));
        // A slow read that started before the lease was granted.
        gate.observe(Some(lease(4, true)));
        gate.observe(None);
        assert!(matches!(gate.mode(), Mode::Maintenance(ref known) if known.version == 5));
        assert!(gate.begin_write(&repository()).is_err());
        gate.observe(Some(lease(6, true)));
        assert_eq!(gate.mode(), Mode::ReadWrite);
        gate.observe(Some(lease(5, false)));
        assert_eq!(
            gate.mode(),
            Mode::ReadWrite,
            "an older state never comes back"
        );
    }

    fn retry_after(gate: &WriteGate) -> u64 {
        let refused = gate.begin_write(&repository()).expect_err("read-only");
        refused.detail.expect("detail")["retryAfterSeconds"]
            .as_u64()
            .expect("seconds")
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_grows_with_the_window_not_with_the_time_to_live() {
        let gate = WriteGate::default();
        gate.observe(Some(lease(1, false)));
        assert_eq!(retry_after(&gate), 1, "a new window may end at once");
        tokio::time::advance(Duration::from_secs(20)).await;
        let renewed = LeaseRecord {
            lease_id: "lease-1".to_owned(),
            ..lease(2, false)
        };
        gate.observe(Some(renewed));
        assert_eq!(retry_after(&gate), 20, "a renewal keeps the window's age");
        gate.observe(Some(lease(3, false)));
        assert_eq!(retry_after(&gate), 1, "another lease is another window");
        tokio::time::advance(Duration::from_secs(30)).await;
        gate.observe(Some(LeaseRecord {
            lease_id: "lease-3".to_owned(),
            ..lease(4, true)
        }));
        gate.observe(Some(LeaseRecord {
            lease_id: "lease-3".to_owned(),
            ..lease(5, false)
        }));
        assert_eq!(
            retry_after(&gate),
            1,
            "a lease id used again is a new window"
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        let remaining = retry_after(&gate);
        assert!(remaining <= 61, "never past the lease's end: {remaining}");
    }
}
