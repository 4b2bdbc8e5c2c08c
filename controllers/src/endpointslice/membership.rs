//! Which Services a pod belongs to: an index of Service selectors kept current from the Service informer,
//! so that a pod change finds its Services without matching every Service of the namespace (upstream
//! `GetPodServiceMemberships` / `GetServicesToUpdateOnPodChange`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};

use super::util::{pod_endpoints_changed, service_selector};
use crate::runtime::{enqueue_changes, Change, Informer, ObjectKey, Store, WorkQueue};

#[derive(Default)]
struct Inner {
    /// Every Service with a selector, by key.
    selectors: HashMap<ObjectKey, BTreeMap<String, String>>,
    /// `namespace\0key\0value` of one requirement of each selector (its first) → Service names.
    by_pair: HashMap<String, BTreeSet<String>>,
}

fn pair_key(namespace: &str, k: &str, v: &str) -> String {
    let mut s = String::with_capacity(namespace.len() + k.len() + v.len() + 2);
    s.push_str(namespace);
    s.push('\0');
    s.push_str(k);
    s.push('\0');
    s.push_str(v);
    s
}

/// The selector index. Shared by one controller's event handlers.
#[derive(Default)]
pub struct ServiceMembership {
    inner: Mutex<Inner>,
}

impl ServiceMembership {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new index that feeds `queue` with the Services whose endpoints a change may affect: every changed
    /// Service at once, and the Services of every changed pod after `batch` (zero: at once). Call
    /// [`Self::seed`] once the Service informer synced.
    pub fn watch(
        services: &Informer<Service>,
        pods: &Informer<Pod>,
        queue: &WorkQueue<ObjectKey>,
        batch: Duration,
    ) -> Arc<Self> {
        let membership = Arc::new(Self::new());
        let m = membership.clone();
        tokio::spawn(enqueue_changes(services.subscribe(), queue.clone(), move |c| {
            m.observe(c);
            c.key().into_iter().collect()
        }));
        let (m, q, mut changes) = (membership.clone(), queue.clone(), pods.subscribe());
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                for key in m.services_for_pod_change(&change) {
                    q.add_after(key, batch);
                }
            }
        });
        membership
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a Service change.
    pub fn observe(&self, change: &Change<Service>) {
        let Some(key) = change.key() else { return };
        let mut inner = self.lock();
        if let Some(old) = inner.selectors.remove(&key) {
            if let Some((k, v)) = old.iter().next() {
                let pk = pair_key(&key.namespace, k, v);
                if let Some(names) = inner.by_pair.get_mut(&pk) {
                    names.remove(&key.name);
                    if names.is_empty() {
                        inner.by_pair.remove(&pk);
                    }
                }
            }
        }
        let Some(selector) = change.new.as_deref().and_then(service_selector) else { return };
        if let Some((k, v)) = selector.iter().next() {
            inner.by_pair.entry(pair_key(&key.namespace, k, v)).or_default().insert(key.name.clone());
        }
        inner.selectors.insert(key, selector.clone());
    }

    /// Records every Service of `store` (changes published before this controller subscribed are not in
    /// its stream). Idempotent: later changes from the stream still apply in order.
    pub fn seed(&self, store: &Store<Service>) {
        for svc in store.list() {
            self.observe(&Change { old: None, new: Some(svc) });
        }
    }

    /// The Services of `namespace` whose selector matches `labels`.
    pub fn services_for(&self, namespace: &str, labels: &BTreeMap<String, String>) -> BTreeSet<ObjectKey> {
        let inner = self.lock();
        let mut out = BTreeSet::new();
        for (k, v) in labels {
            let Some(names) = inner.by_pair.get(&pair_key(namespace, k, v)) else { continue };
            for name in names {
                let key = ObjectKey::new(namespace, name.clone());
                let matches =
                    inner.selectors.get(&key).is_some_and(|sel| sel.iter().all(|(sk, sv)| labels.get(sk) == Some(sv)));
                if matches {
                    out.insert(key);
                }
            }
        }
        out
    }

    /// The Services to reconcile after a pod change: its Services for an add or delete; for an update
    /// nothing unless the change matters to endpoints, and when its labels changed, the Services it
    /// left or joined (all of its old and new ones if its endpoint changed too).
    pub fn services_for_pod_change(&self, change: &Change<Pod>) -> BTreeSet<ObjectKey> {
        let labels = |p: &Pod| p.metadata.labels.clone().unwrap_or_default();
        let ns = |p: &Pod| p.metadata.namespace.clone().unwrap_or_default();
        match (change.old.as_deref(), change.new.as_deref()) {
            (None, None) => BTreeSet::new(),
            (Some(p), None) | (None, Some(p)) => self.services_for(&ns(p), &labels(p)),
            (Some(old), Some(new)) => {
                if old.metadata.resource_version.is_some()
                    && old.metadata.resource_version == new.metadata.resource_version
                {
                    return BTreeSet::new();
                }
                let (pod_changed, labels_changed) = pod_endpoints_changed(old, new);
                let now = if pod_changed || labels_changed {
                    self.services_for(&ns(new), &labels(new))
                } else {
                    return BTreeSet::new();
                };
                if !labels_changed {
                    return now;
                }
                let before = self.services_for(&ns(old), &labels(old));
                if pod_changed {
                    now.union(&before).cloned().collect()
                } else {
                    now.symmetric_difference(&before).cloned().collect()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn svc(name: &str, selector: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"selector": selector}}),
            )
            .expect("service"),
        )
    }

    fn pod(labels: serde_json::Value, ready: bool, rv: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "d", "labels": labels, "resourceVersion": rv},
                "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
            .expect("pod"),
        )
    }

    fn names(keys: BTreeSet<ObjectKey>) -> Vec<String> {
        keys.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn pods_find_their_services() {
        let m = ServiceMembership::new();
        m.observe(&Change { old: None, new: Some(svc("web", json!({"app": "web"}))) });
        m.observe(&Change { old: None, new: Some(svc("web-fe", json!({"app": "web", "tier": "fe"}))) });
        m.observe(&Change { old: None, new: Some(svc("db", json!({"app": "db"}))) });
        m.observe(&Change { old: None, new: Some(svc("none", json!({}))) });
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(names(m.services_for("d", &labels)), ["web"]);
        let labels: BTreeMap<String, String> =
            [("app".to_string(), "web".to_string()), ("tier".to_string(), "fe".to_string())].into();
        assert_eq!(names(m.services_for("d", &labels)), ["web", "web-fe"]);
        assert!(m.services_for("other", &labels).is_empty());
        // A selector change moves the Service; a delete removes it.
        m.observe(&Change {
            old: Some(svc("web", json!({"app": "web"}))),
            new: Some(svc("web", json!({"app": "db"}))),
        });
        assert_eq!(names(m.services_for("d", &labels)), ["web-fe"]);
        m.observe(&Change { old: Some(svc("web-fe", json!({}))), new: None });
        assert!(m.services_for("d", &labels).is_empty());
    }

    #[test]
    fn seeding_from_the_cache_finds_services_published_earlier() {
        let store = Store::new();
        store.apply(svc("web", json!({"app": "web"})));
        let m = ServiceMembership::new();
        m.seed(&store);
        m.seed(&store);
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(names(m.services_for("d", &labels)), ["web"]);
    }

    #[test]
    fn pod_updates_map_to_left_and_joined_services() {
        let m = ServiceMembership::new();
        m.observe(&Change { old: None, new: Some(svc("a", json!({"app": "a"}))) });
        m.observe(&Change { old: None, new: Some(svc("b", json!({"app": "b"}))) });
        m.observe(&Change { old: None, new: Some(svc("all", json!({"team": "x"}))) });
        let ch = |old, new| Change { old: Some(old), new: Some(new) };
        // Same resourceVersion: a resync, nothing to do.
        assert!(m
            .services_for_pod_change(&ch(pod(json!({"app": "a"}), true, "1"), pod(json!({"app": "a"}), false, "1")))
            .is_empty());
        // Readiness: the pod's Services.
        let c = ch(pod(json!({"app": "a", "team": "x"}), true, "1"), pod(json!({"app": "a", "team": "x"}), false, "2"));
        assert_eq!(names(m.services_for_pod_change(&c)), ["a", "all"]);
        // Relabel only: the Services it left and joined, not the one it stays in.
        let c = ch(pod(json!({"app": "a", "team": "x"}), true, "1"), pod(json!({"app": "b", "team": "x"}), true, "2"));
        assert_eq!(names(m.services_for_pod_change(&c)), ["a", "b"]);
        // Relabel and readiness: all of them.
        let c = ch(pod(json!({"app": "a", "team": "x"}), true, "1"), pod(json!({"app": "b", "team": "x"}), false, "2"));
        assert_eq!(names(m.services_for_pod_change(&c)), ["a", "all", "b"]);
        // An irrelevant update: nothing.
        let c = ch(pod(json!({"app": "a"}), true, "1"), pod(json!({"app": "a"}), true, "2"));
        assert!(m.services_for_pod_change(&c).is_empty());
        // Add and delete: its Services.
        assert_eq!(
            names(m.services_for_pod_change(&Change { old: None, new: Some(pod(json!({"app": "b"}), true, "1")) })),
            ["b"]
        );
        assert_eq!(
            names(m.services_for_pod_change(&Change { old: Some(pod(json!({"app": "b"}), true, "1")), new: None })),
            ["b"]
        );
    }
}
