//! Which EndpointSlice writes of this controller the informer cache has seen (upstream
//! `EndpointSliceTracker`): the generation each written slice should have and the slices it deleted. A
//! cache older than that must not be reconciled from (the key is retried), and slice events that are
//! only echoes of this controller's own writes need no reconcile.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::util::LABEL_SERVICE_NAME;
use crate::runtime::ObjectKey;

/// The generation recorded for a slice this controller deleted.
const DELETION_EXPECTED: i64 = -1;

#[derive(Default)]
struct Inner {
    /// Service → slice uid → expected generation.
    generations: HashMap<ObjectKey, HashMap<String, i64>>,
    /// Service → the uid it had when its generations were recorded.
    service_uids: HashMap<ObjectKey, String>,
}

/// The tracker. Shared by a controller's workers and event handlers.
#[derive(Default)]
pub struct EndpointSliceTracker {
    inner: Mutex<Inner>,
}

/// The Service a slice belongs to, from its `kubernetes.io/service-name` label.
pub fn service_key(slice: &EndpointSlice) -> Option<ObjectKey> {
    let name = slice.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
    if name.is_empty() {
        return None;
    }
    Some(ObjectKey::new(slice.metadata.namespace.clone().unwrap_or_default(), name.clone()))
}

fn uid(slice: &EndpointSlice) -> String {
    slice.metadata.uid.clone().unwrap_or_default()
}

fn generation(slice: &EndpointSlice) -> i64 {
    slice.metadata.generation.unwrap_or_default()
}

impl EndpointSliceTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a slice event needs a reconcile: the slice is not one this controller wrote, or someone
    /// changed it since.
    pub fn should_sync(&self, slice: &EndpointSlice) -> bool {
        let Some(key) = service_key(slice) else { return true };
        let inner = self.lock();
        match inner.generations.get(&key).and_then(|g| g.get(&uid(slice))) {
            None => true,
            Some(g) => generation(slice) > *g,
        }
    }

    /// Whether the cached `slices` of the Service `service` (with uid `service_uid`) lag behind this
    /// controller's writes: one is older than written, one it deleted is still there, or one it wrote is
    /// missing. Writes recorded for an older Service of the same name are forgotten.
    pub fn stale_slices(
        &self,
        service: &ObjectKey,
        service_uid: &str,
        slices: &[std::sync::Arc<EndpointSlice>],
    ) -> bool {
        let mut inner = self.lock();
        let previous = inner.service_uids.insert(service.clone(), service_uid.to_string());
        if previous.is_some_and(|p| !p.is_empty() && !service_uid.is_empty() && p != service_uid) {
            inner.generations.remove(service);
        }
        let Some(gens) = inner.generations.get(service) else { return false };
        for s in slices {
            if let Some(g) = gens.get(&uid(s)) {
                if *g == DELETION_EXPECTED || *g > generation(s) {
                    return true;
                }
            }
        }
        gens.iter().any(|(u, g)| *g != DELETION_EXPECTED && !slices.iter().any(|s| uid(s) == *u))
    }

    /// Records a slice as written (created or updated) by this controller.
    pub fn update(&self, slice: &EndpointSlice) {
        let Some(key) = service_key(slice) else { return };
        self.lock().generations.entry(key).or_default().insert(uid(slice), generation(slice));
    }

    /// Records a slice as deleted by this controller.
    pub fn expect_deletion(&self, slice: &EndpointSlice) {
        let Some(key) = service_key(slice) else { return };
        self.lock().generations.entry(key).or_default().insert(uid(slice), DELETION_EXPECTED);
    }

    /// Handles a slice deletion seen by the informer; returns whether this controller expected it.
    pub fn handle_deletion(&self, slice: &EndpointSlice) -> bool {
        let Some(key) = service_key(slice) else { return true };
        let mut inner = self.lock();
        let Some(gens) = inner.generations.get_mut(&key) else { return true };
        match gens.remove(&uid(slice)) {
            Some(g) => g == DELETION_EXPECTED,
            None => true,
        }
    }

    /// Forgets a deleted Service.
    pub fn delete_service(&self, service: &ObjectKey) {
        let mut inner = self.lock();
        inner.generations.remove(service);
        inner.service_uids.remove(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn slice(uid: &str, generation: i64) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": uid, "namespace": "d", "uid": uid, "generation": generation,
                "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4", "endpoints": []}),
            )
            .expect("slice"),
        )
    }

    #[test]
    fn own_writes_are_echoes_and_stale_caches_are_detected() {
        let t = EndpointSliceTracker::new();
        let svc = ObjectKey::new("d", "web");
        assert!(t.should_sync(&slice("a", 1)));
        t.update(&slice("a", 2));
        assert!(!t.should_sync(&slice("a", 2)), "our own write");
        assert!(t.should_sync(&slice("a", 3)), "someone else's");
        assert!(t.stale_slices(&svc, "u1", &[slice("a", 1)]), "the cache has the old generation");
        assert!(!t.stale_slices(&svc, "u1", &[slice("a", 2)]));
        assert!(t.stale_slices(&svc, "u1", &[]), "the cache misses a slice we wrote");
        t.expect_deletion(&slice("a", 2));
        assert!(t.stale_slices(&svc, "u1", &[slice("a", 2)]), "a slice we deleted is still cached");
        assert!(!t.stale_slices(&svc, "u1", &[]));
        assert!(t.handle_deletion(&slice("a", 2)));
        t.update(&slice("b", 1));
        assert!(!t.handle_deletion(&slice("b", 1)), "not our deletion");
        // A new Service of the same name starts afresh.
        t.update(&slice("c", 5));
        assert!(t.stale_slices(&svc, "u1", &[]));
        assert!(!t.stale_slices(&svc, "u2", &[]));
    }
}
