//! How many upload bodies a replica copies at once. Each one being copied
//! holds up to four 2 MiB blocks on a local store (one being filled, the
//! rest on their way to the hashing and the disk) and up to about 24 MiB
//! on S3 (multipart parts in flight), so this bounds the memory uploads can
//! take, however many clients push at once or however slowly they send.
//! Past it, uploads wait their turn, and after [`WAIT`] are told to retry.

use std::sync::Arc;
use std::time::Duration;

use registry_core::{ErrorCode, RegistryError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an upload waits for a slot before it is refused.
const WAIT: Duration = Duration::from_secs(30);

/// The slots; cloning shares them.
#[derive(Clone, Debug)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    count: usize,
}

impl UploadSlots {
    pub fn new(count: usize) -> Self {
        let count = count.max(1);
        UploadSlots {
            slots: Arc::new(Semaphore::new(count)),
            count,
        }
    }

    /// A slot, held until dropped; 503 `UNAVAILABLE` when none came free
    /// within [`WAIT`].
    pub async fn take(&self) -> Result<OwnedSemaphorePermit, RegistryError> {
        match tokio::time::timeout(WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => {
                tracing::warn!(slots = self.count, "an upload waited too long for a slot");
                Err(RegistryError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "{} uploads are in progress on this replica (--max-concurrent-uploads); retry shortly",
                        self.count
                    ),
                )
                .with_detail(serde_json::json!({ "retryAfterSeconds": 1 })))
            }
        }
    }
}
