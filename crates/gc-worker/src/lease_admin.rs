//! `gc-worker lease status` and `gc-worker lease release`: the read-only
//! window as the store records it, seen and ended by an operator without
//! gc-worker or any replica running. Replicas check the store's lease
//! every `--lease-check-interval` (10 s by default), so a release recorded
//! here reaches all of them by then.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;
use registry_storage::{LeaseRecord, Store, now_unix_ms};

/// The newest window, for people.
pub async fn status(store: &Store) -> anyhow::Result<String> {
    let Some(record) = store.read_lease().await? else {
        return Ok("no read-only window was ever opened: the registry is writable\n".to_owned());
    };
    Ok(describe(&record))
}

/// Ends the window `lease_id` now.
pub async fn release(store: &Store, lease_id: &str) -> anyhow::Result<String> {
    let now = now_unix_ms();
    let mut released_now = false;
    let recorded = store
        .record_next_lease(|current| match current {
            None => bail!("no read-only window was ever opened: nothing to release"),
            Some(current) if current.lease_id != lease_id => bail!(
                "the newest window is {} (held by {}), not {lease_id}: see `gc-worker lease status`",
                current.lease_id,
                current.holder
            ),
            Some(current) if !current.is_active(now) => {
                released_now = false;
                Ok(None)
            }
            Some(current) => {
                released_now = true;
                Ok(Some(LeaseRecord {
                    released: true,
                    expires_at_unix_ms: now,
                    ..current.clone()
                }))
            }
        })
        .await?;
    let record = recorded.expect("the window exists: checked above");
    if released_now {
        tracing::warn!(lease_id, holder = %record.holder, "read-only window released by hand");
        Ok(format!(
            "released: every replica is writable again at its next lease check \
             (within its --lease-check-interval, 10 s by default)\n{}",
            describe(&record)
        ))
    } else {
        Ok(format!(
            "already over: nothing to release\n{}",
            describe(&record)
        ))
    }
}

fn describe(record: &LeaseRecord) -> String {
    let until = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_millis(u64::try_from(record.expires_at_unix_ms).unwrap_or(0)),
    );
    let now = now_unix_ms();
    let state = if record.is_active(now) {
        let left = (record.expires_at_unix_ms - now) / 1000;
        format!("IN FORCE until {until} ({left} s from now): pushes and deletes are refused")
    } else if record.released {
        format!("released at {until}: writable")
    } else {
        format!("ran out at {until}: writable")
    };
    format!(
        "window:  {}\nholder:  {}\nreason:  {}\nstate:   {state}\nversion: {}\n",
        record.lease_id, record.holder, record.reason, record.version
    )
}
