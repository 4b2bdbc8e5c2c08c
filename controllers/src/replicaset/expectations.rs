//! Expectations (upstream `ControllerExpectations` + `UIDTrackingControllerExpectations`): after a controller
//! creates or deletes pods it expects to see those changes in its pod cache before it acts again, so that a
//! burst of watch events, or a reconcile racing the cache, never creates or deletes twice.
//!
//! Creations are counted (the new pods' names are not known in advance); deletions are tracked by pod key so
//! that an unrelated pod's deletion does not satisfy them. Expectations older than five minutes are ignored
//! (a lost watch event must not stall a controller for ever).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long expectations hold before the controller acts anyway (`ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expectation {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Pending creations and deletions per controller key. Shared between a controller's workers and the task
/// that feeds pod changes to it.
#[derive(Debug)]
pub struct Expectations<K> {
    inner: Mutex<HashMap<K, Expectation>>,
    timeout: Duration,
}

impl<K: Clone + Eq + Hash> Default for Expectations<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> Expectations<K> {
    /// No expectations, with the upstream timeout.
    pub fn new() -> Self {
        Self::with_timeout(EXPECTATIONS_TIMEOUT)
    }

    /// No expectations, expiring after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Expectations { inner: Mutex::new(HashMap::new()), timeout }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Expectation>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller `key` may act: it expects nothing more, or its expectations expired.
    pub fn satisfied(&self, key: &K) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || e.set_at.elapsed() > self.timeout,
        }
    }

    /// The controller is about to create `count` pods.
    pub fn expect_creations(&self, key: &K, count: usize) {
        let adds = i64::try_from(count).unwrap_or(i64::MAX);
        self.lock().insert(key.clone(), Expectation { adds, deletes: HashSet::new(), set_at: Instant::now() });
    }

    /// The controller is about to delete the pods with these keys (`namespace/name`).
    pub fn expect_deletions(&self, key: &K, pod_keys: impl IntoIterator<Item = String>) {
        let deletes = pod_keys.into_iter().collect();
        self.lock().insert(key.clone(), Expectation { adds: 0, deletes, set_at: Instant::now() });
    }

    /// A pod of controller `key` appeared (or a creation will never happen).
    pub fn creation_observed(&self, key: &K) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// Pod `pod_key` of controller `key` is being deleted or is gone (or its deletion failed).
    pub fn deletion_observed(&self, key: &K, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletes.remove(pod_key);
        }
    }

    /// Forgets controller `key` (it was deleted).
    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_are_counted() {
        let e = Expectations::new();
        assert!(e.satisfied(&"rs"));
        e.expect_creations(&"rs", 2);
        assert!(!e.satisfied(&"rs"));
        e.creation_observed(&"rs");
        assert!(!e.satisfied(&"rs"));
        e.creation_observed(&"other");
        assert!(!e.satisfied(&"rs"), "another controller's pod does not count");
        e.creation_observed(&"rs");
        assert!(e.satisfied(&"rs"));
    }

    #[test]
    fn deletions_are_tracked_by_pod() {
        let e = Expectations::new();
        e.expect_deletions(&"rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed(&"rs", "ns/c");
        e.deletion_observed(&"rs", "ns/a");
        e.deletion_observed(&"rs", "ns/a");
        assert!(!e.satisfied(&"rs"), "b is still expected");
        e.deletion_observed(&"rs", "ns/b");
        assert!(e.satisfied(&"rs"));
    }

    #[test]
    fn expectations_expire_and_can_be_forgotten() {
        let e = Expectations::with_timeout(Duration::ZERO);
        e.expect_creations(&"rs", 1);
        std::thread::sleep(Duration::from_millis(2));
        assert!(e.satisfied(&"rs"));
        let e = Expectations::new();
        e.expect_creations(&"rs", 1);
        e.forget(&"rs");
        assert!(e.satisfied(&"rs"));
    }
}
