//! Knowing when a controller's initial full reconcile is over: every key enqueued at start has been
//! reconciled successfully once. Logged and exported as `knet_controllers_initial_sync_seconds` (the
//! controllers benchmark reads it to time a full resync after a restart).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use crate::runtime::{Metrics, ObjectKey};

struct Pending {
    keys: HashSet<ObjectKey>,
    total: usize,
    started: Instant,
    logged: bool,
}

/// The keys of the initial pass not reconciled yet.
pub struct InitialSync {
    controller: &'static str,
    metrics: Metrics,
    pending: Mutex<Option<Pending>>,
}

impl InitialSync {
    /// Nothing pending yet. The duration of the pass goes to `metrics` (`knet_controllers_initial_sync_seconds`).
    pub fn new(controller: &'static str, metrics: Metrics) -> Self {
        InitialSync { controller, metrics, pending: Mutex::new(None) }
    }

    /// Starts waiting for `keys`, timed from `started`.
    pub fn expect(&self, keys: impl IntoIterator<Item = ObjectKey>, started: Instant) {
        let keys: HashSet<ObjectKey> = keys.into_iter().collect();
        let total = keys.len();
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending { keys, total, started, logged: false });
        self.check();
    }

    /// Records that `key` was reconciled successfully.
    pub fn done(&self, key: &ObjectKey) {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.as_mut() {
            if p.keys.remove(key) && p.keys.is_empty() {
                drop(guard);
                self.check();
            }
        }
    }

    /// Whether the initial pass is over.
    pub fn is_done(&self) -> bool {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|p| p.keys.is_empty())
    }

    fn check(&self) {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = guard.as_mut() else { return };
        if p.keys.is_empty() && !p.logged {
            p.logged = true;
            self.metrics.set_initial_sync(self.controller, p.started.elapsed());
            tracing::info!(
                controller = self.controller,
                keys = p.total,
                elapsed_ms = u64::try_from(p.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "initial sync done"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_once_every_key_is() {
        let s = InitialSync::new("test", Metrics::new());
        assert!(!s.is_done());
        s.expect([ObjectKey::new("a", "1"), ObjectKey::new("a", "2")], Instant::now());
        s.done(&ObjectKey::new("a", "1"));
        s.done(&ObjectKey::new("b", "9"));
        assert!(!s.is_done());
        s.done(&ObjectKey::new("a", "2"));
        assert!(s.is_done());
        let empty = InitialSync::new("test", Metrics::new());
        empty.expect([], Instant::now());
        assert!(empty.is_done());
    }
}
