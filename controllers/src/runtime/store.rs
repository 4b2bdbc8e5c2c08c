//! The watch cache of one resource: every object the informer has seen, by namespace and name, with an index
//! from `(namespace, label key, label value)` to names so label selectors do not scan a whole namespace.
//!
//! Readers get `Arc`s of the cached objects; they must treat them as read-only snapshots (like client-go's
//! informer caches) and clone before changing anything they write back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use knet_apimachinery::labels::{Operator, Selector};
use kube::Resource;

/// Where an object lives: its namespace (empty for cluster-scoped objects) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The namespace, or "" for a cluster-scoped object.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// A key for a namespaced object.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey { namespace: namespace.into(), name: name.into() }
    }

    /// A key for a cluster-scoped object.
    pub fn cluster(name: impl Into<String>) -> Self {
        ObjectKey { namespace: String::new(), name: name.into() }
    }

    /// The key of an object, from its metadata.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        ObjectKey { namespace: meta.namespace.clone().unwrap_or_default(), name: meta.name.clone().unwrap_or_default() }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

type LabelIndexKey = (String, String, String);

struct Inner<K> {
    objects: BTreeMap<ObjectKey, Arc<K>>,
    by_label: HashMap<LabelIndexKey, BTreeSet<String>>,
}

/// A shared, read-mostly cache of one resource's objects. Cloning is cheap (an `Arc`).
pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store { inner: self.inner.clone() }
    }
}

impl<K: Resource> Default for Store<K> {
    fn default() -> Self {
        Store { inner: Arc::new(RwLock::new(Inner { objects: BTreeMap::new(), by_label: HashMap::new() })) }
    }
}

impl<K: Resource> Store<K> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner<K>> {
        // A panic while holding the lock leaves consistent data (every mutation is a single insert/remove
        // pair), so a poisoned lock is still safe to read.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// The cached object `namespace/name` (namespace "" for cluster-scoped).
    pub fn get_named(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.get(&ObjectKey::new(namespace, name))
    }

    /// Every cached object, ordered by namespace and name.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every cached key, ordered by namespace and name.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.read().objects.keys().cloned().collect()
    }

    /// The cached objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        let start = ObjectKey::new(namespace, "");
        inner.objects.range(start..).take_while(|(k, _)| k.namespace == namespace).map(|(_, v)| v.clone()).collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.read().objects.is_empty()
    }

    /// The objects of `namespace` whose labels match `selector`. An equality requirement of the selector
    /// (`k=v`, `k==v`, `k in (v)`) is answered from the label index; the rest are checked per object.
    /// An empty selector matches every object of the namespace; [`Selector::nothing`] matches none.
    pub fn select(&self, namespace: &str, selector: &Selector) -> Vec<Arc<K>> {
        if selector.is_nothing() {
            return Vec::new();
        }
        let inner = self.read();
        let labels_of = |obj: &Arc<K>| obj.meta().labels.clone().unwrap_or_default();
        // Pick the equality requirement with the fewest candidates.
        let mut best: Option<&BTreeSet<String>> = None;
        for r in selector.requirements() {
            let value = match (r.operator(), r.values()) {
                (Operator::Equals | Operator::DoubleEquals, [v]) => v,
                (Operator::In, [v]) => v,
                _ => continue,
            };
            let key = (namespace.to_string(), r.key().to_string(), value.clone());
            match inner.by_label.get(&key) {
                None => return Vec::new(),
                Some(names) => {
                    if best.is_none_or(|b| names.len() < b.len()) {
                        best = Some(names);
                    }
                }
            }
        }
        match best {
            Some(names) => names
                .iter()
                .filter_map(|n| inner.objects.get(&ObjectKey::new(namespace, n.clone())))
                .filter(|o| selector.matches(&labels_of(o)))
                .cloned()
                .collect(),
            None => {
                let start = ObjectKey::new(namespace, "");
                inner
                    .objects
                    .range(start..)
                    .take_while(|(k, _)| k.namespace == namespace)
                    .map(|(_, v)| v)
                    .filter(|o| selector.matches(&labels_of(o)))
                    .cloned()
                    .collect()
            }
        }
    }

    /// Stores `obj`, returning the object it replaces.
    pub(crate) fn apply(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let key = ObjectKey::of(obj.as_ref());
        let mut inner = self.write();
        let old = inner.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            unindex(&mut inner.by_label, &key, old.as_ref());
        }
        index(&mut inner.by_label, &key, obj.as_ref());
        old
    }

    /// Removes the object with this key, returning it.
    pub(crate) fn remove(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut inner = self.write();
        let old = inner.objects.remove(key);
        if let Some(old) = &old {
            unindex(&mut inner.by_label, key, old.as_ref());
        }
        old
    }
}

fn index<K: Resource>(by_label: &mut HashMap<LabelIndexKey, BTreeSet<String>>, key: &ObjectKey, obj: &K) {
    for (k, v) in obj.meta().labels.iter().flatten() {
        by_label.entry((key.namespace.clone(), k.clone(), v.clone())).or_default().insert(key.name.clone());
    }
}

fn unindex<K: Resource>(by_label: &mut HashMap<LabelIndexKey, BTreeSet<String>>, key: &ObjectKey, obj: &K) {
    for (k, v) in obj.meta().labels.iter().flatten() {
        let ik = (key.namespace.clone(), k.clone(), v.clone());
        if let Some(names) = by_label.get_mut(&ik) {
            names.remove(&key.name);
            if names.is_empty() {
                by_label.remove(&ik);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use knet_apimachinery::labels;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        Arc::new(p)
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn select_uses_index_and_checks_the_rest() {
        let s = Store::new();
        s.apply(pod("a", "p1", &[("app", "web"), ("tier", "fe")]));
        s.apply(pod("a", "p2", &[("app", "web")]));
        s.apply(pod("a", "p3", &[("app", "db")]));
        s.apply(pod("b", "p4", &[("app", "web")]));
        let sel = labels::parse("app=web").unwrap();
        assert_eq!(names(s.select("a", &sel)), ["p1", "p2"]);
        let sel = labels::parse("app=web,tier!=fe").unwrap();
        assert_eq!(names(s.select("a", &sel)), ["p2"]);
        let sel = labels::parse("app notin (db)").unwrap();
        assert_eq!(names(s.select("a", &sel)), ["p1", "p2"]);
        assert_eq!(names(s.select("a", &Selector::everything())), ["p1", "p2", "p3"]);
        assert!(s.select("a", &Selector::nothing()).is_empty());
        assert!(s.select("a", &labels::parse("app=none").unwrap()).is_empty());
    }

    #[test]
    fn relabel_and_remove_keep_the_index_right() {
        let s = Store::new();
        s.apply(pod("a", "p1", &[("app", "web")]));
        let old = s.apply(pod("a", "p1", &[("app", "db")]));
        assert!(old.is_some());
        assert!(s.select("a", &labels::parse("app=web").unwrap()).is_empty());
        assert_eq!(names(s.select("a", &labels::parse("app=db").unwrap())), ["p1"]);
        s.remove(&ObjectKey::new("a", "p1"));
        assert!(s.select("a", &labels::parse("app=db").unwrap()).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn list_namespace_stops_at_the_namespace() {
        let s = Store::new();
        s.apply(pod("a", "x", &[]));
        s.apply(pod("ab", "y", &[]));
        s.apply(pod("b", "z", &[]));
        assert_eq!(names(s.list_namespace("a")), ["x"]);
        assert_eq!(names(s.list_namespace("ab")), ["y"]);
    }
}
