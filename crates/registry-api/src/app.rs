//! The application state every handler shares.

use std::sync::Arc;

use registry_storage::Store;

use crate::WriteGate;
use crate::auth::AuthGate;
use crate::upload_slots::UploadSlots;

/// What the handlers work with: the store, the write gate, and the auth
/// gate when credentials are checked.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub write_gate: WriteGate,
    /// `None`: anonymous access (no `--auth-endpoint`).
    pub auth: Option<Arc<AuthGate>>,
    /// Upload bodies copied at once.
    pub upload_slots: UploadSlots,
    /// This process's id among the replicas announced in the store.
    pub replica_id: String,
}

/// Cheap-to-clone handle on [`App`], the axum state.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(
        store: Store,
        write_gate: WriteGate,
        auth: Option<Arc<AuthGate>>,
        upload_slots: UploadSlots,
    ) -> Self {
        AppState(Arc::new(App {
            store,
            write_gate,
            auth,
            upload_slots,
            replica_id: uuid::Uuid::new_v4().to_string(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
