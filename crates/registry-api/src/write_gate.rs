//! Whether this replica accepts writes (pushes and deletes). Pulls never
//! pass through here.

use std::sync::atomic::{AtomicBool, Ordering};

use registry_core::{ErrorCode, RegistryError};

/// Seconds a refused writer is told to wait before trying again.
const RETRY_AFTER_SECONDS: u64 = 60;

/// Opens or closes the registry to writes.
#[derive(Debug, Default)]
pub struct WriteGate {
    read_only: AtomicBool,
}

impl WriteGate {
    pub fn new(read_only: bool) -> Self {
        WriteGate {
            read_only: AtomicBool::new(read_only),
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Release);
    }

    /// Refuses a write while the registry is read-only: 503 UNAVAILABLE with
    /// a `Retry-After` the error response carries.
    pub fn check_writable(&self) -> Result<(), RegistryError> {
        if !self.is_read_only() {
            return Ok(());
        }
        Err(RegistryError::new(
            ErrorCode::Unavailable,
            "the registry is read-only; pulls work, pushes and deletes do not",
        )
        .with_detail(serde_json::json!({ "retryAfterSeconds": RETRY_AFTER_SECONDS })))
    }
}
