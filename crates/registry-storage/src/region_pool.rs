//! Anonymous memory regions kept for reuse once returned, up to a number:
//! on the benchmark VM, memory taken fresh costs a host fault per page and
//! zeroing, which reused memory does not. Upload blocks and pull pieces
//! each keep their own pool of regions of one size.

use std::sync::{Arc, Mutex, PoisonError};

use memmap2::MmapMut;

/// Regions kept for reuse, shared by clones.
#[derive(Clone)]
pub(crate) struct RegionPool {
    kept: Arc<Mutex<Vec<MmapMut>>>,
    keep: usize,
}

impl std::fmt::Debug for RegionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionPool")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl RegionPool {
    /// A pool that keeps at most `keep` returned regions.
    pub(crate) fn new(keep: usize) -> Self {
        RegionPool {
            kept: Arc::default(),
            keep,
        }
    }

    /// A kept region, or one `make` maps afresh.
    pub(crate) fn take(
        &self,
        make: impl FnOnce() -> std::io::Result<MmapMut>,
    ) -> std::io::Result<MmapMut> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        kept.map_or_else(make, Ok)
    }

    /// Keeps `region` for the next [`RegionPool::take`], or unmaps it if
    /// enough are kept.
    pub(crate) fn give_back(&self, region: MmapMut) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.keep {
            kept.push(region);
        }
    }
}
