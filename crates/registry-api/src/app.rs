//! The application state every handler shares.

use std::sync::Arc;

use registry_storage::Store;

use crate::WriteGate;

/// What the handlers work with: the store and the write gate.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub write_gate: WriteGate,
}

/// Cheap-to-clone handle on [`App`], the axum state.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(store: Store, write_gate: WriteGate) -> Self {
        AppState(Arc::new(App { store, write_gate }))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
