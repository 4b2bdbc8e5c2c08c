//! The scheduler cache (upstream's scheduler cache): what each node already runs — bound pods as the informer
//! shows them, plus pods the scheduler has *assumed* onto a node while their binding is in flight or not yet
//! seen. Without assumed pods a burst of replicas would all see the same empty nodes and pile onto one.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::filter::Usage;
use super::resources::{pod_requests, Resources};

/// What one node runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// How many pods.
    pub pods: i64,
    /// What they request.
    pub requested: Resources,
    /// What they request with the scoring defaults for unset requests.
    pub non_zero: Resources,
    /// Controller owner uid → how many of its pods.
    pub owners: HashMap<String, i64>,
}

impl NodeUsage {
    /// The part the filters need.
    pub fn usage(&self) -> Usage {
        Usage { pods: self.pods, requested: self.requested }
    }

    fn apply(&mut self, e: &Entry, sign: i64) {
        self.pods += sign;
        let (req, nz) = (e.requested, e.non_zero);
        if sign > 0 {
            self.requested = self.requested.plus(req);
            self.non_zero = self.non_zero.plus(nz);
        } else {
            self.requested = self.requested.minus(req);
            self.non_zero = self.non_zero.minus(nz);
        }
        if let Some(o) = &e.owner {
            let c = self.owners.entry(o.clone()).or_default();
            *c += sign;
            if *c <= 0 {
                self.owners.remove(o);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    node: String,
    requested: Resources,
    non_zero: Resources,
    owner: Option<String>,
    assumed: bool,
}

/// The uid of the pod's controller (its ownerReference with `controller: true`).
pub fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
}

/// Whether a bound pod takes room on its node (terminated pods do not).
fn occupies(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    bound && phase != "Succeeded" && phase != "Failed"
}

fn entry(pod: &Pod, node: &str, assumed: bool) -> Entry {
    let (requested, non_zero) = pod_requests(pod);
    Entry { node: node.to_string(), requested, non_zero, owner: controller_uid(pod), assumed }
}

/// Bound and assumed pods by node.
#[derive(Debug, Default)]
pub struct SchedulerCache {
    pods: HashMap<String, Entry>,
    nodes: HashMap<String, NodeUsage>,
}

impl SchedulerCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, uid: &str, e: Entry) {
        self.nodes.entry(e.node.clone()).or_default().apply(&e, 1);
        self.pods.insert(uid.to_string(), e);
    }

    fn remove(&mut self, uid: &str) {
        if let Some(e) = self.pods.remove(uid) {
            if let Some(n) = self.nodes.get_mut(&e.node) {
                n.apply(&e, -1);
                if n.pods <= 0 {
                    self.nodes.remove(&e.node);
                }
            }
        }
    }

    /// Brings the cache in line with the informer's current pod `current` for one key (`None`: gone), where
    /// `old_uid` is the uid the key had before (so a re-created pod replaces the old one). Level-based: the
    /// same call twice changes nothing.
    pub fn sync(&mut self, old_uid: Option<&str>, current: Option<&Pod>) {
        let uid = current.and_then(|p| p.metadata.uid.as_deref());
        if let Some(old) = old_uid.filter(|o| Some(*o) != uid) {
            self.remove(old);
        }
        let (Some(pod), Some(uid)) = (current, uid) else { return };
        if occupies(pod) {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            self.remove(uid);
            self.add(uid, entry(pod, &node, false));
        } else if !self.is_assumed(uid) {
            // Pending (not assumed) or terminated: takes no room.
            self.remove(uid);
        } else if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty()) {
            // Assumed, and now bound but terminated.
            self.remove(uid);
        }
    }

    /// Counts `pod` on `node` until the informer shows it bound (or it is forgotten).
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let Some(uid) = pod.metadata.uid.as_deref() else { return };
        self.remove(uid);
        self.add(uid, entry(pod, node, true));
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget(&mut self, uid: &str) {
        if self.is_assumed(uid) {
            self.remove(uid);
        }
    }

    /// Whether the pod with `uid` is assumed and not yet seen bound.
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|e| e.assumed)
    }

    /// What `node` runs.
    pub fn node(&self, node: &str) -> NodeUsage {
        self.nodes.get(node).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn pod(uid: &str, node: Option<&str>, owner: &str) -> Pod {
        let mut p = Pod {
            spec: Some(PodSpec { node_name: node.map(String::from), ..Default::default() }),
            ..Default::default()
        };
        p.metadata.uid = Some(uid.into());
        p.metadata.owner_references =
            Some(vec![OwnerReference { uid: owner.into(), controller: Some(true), ..Default::default() }]);
        p
    }

    #[test]
    fn assumed_pods_count_until_seen_bound_and_are_not_counted_twice() {
        let mut c = SchedulerCache::new();
        let p = pod("u1", None, "rs");
        c.sync(None, Some(&p));
        assert_eq!(c.node("a").pods, 0);
        c.assume(&p, "a");
        assert!(c.is_assumed("u1"));
        c.sync(Some("u1"), Some(&p)); // a stale pending update does not drop the assumption
        assert_eq!(c.node("a").pods, 1);
        assert_eq!(c.node("a").owners.get("rs"), Some(&1));
        let bound = pod("u1", Some("a"), "rs");
        c.sync(Some("u1"), Some(&bound));
        c.sync(Some("u1"), Some(&bound));
        assert!(!c.is_assumed("u1"));
        assert_eq!(c.node("a").pods, 1);
        c.sync(Some("u1"), None);
        assert_eq!(c.node("a"), NodeUsage::default());
    }

    #[test]
    fn forget_undoes_an_assumption_and_terminated_pods_take_no_room() {
        let mut c = SchedulerCache::new();
        let p = pod("u1", None, "rs");
        c.assume(&p, "a");
        c.forget("u1");
        assert_eq!(c.node("a").pods, 0);
        let mut done = pod("u2", Some("b"), "rs");
        c.sync(None, Some(&done));
        assert_eq!(c.node("b").pods, 1);
        done.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        c.sync(Some("u2"), Some(&done));
        assert_eq!(c.node("b").pods, 0);
    }

    #[test]
    fn a_recreated_pod_replaces_the_old_one() {
        let mut c = SchedulerCache::new();
        c.sync(None, Some(&pod("old", Some("a"), "rs")));
        c.sync(Some("old"), Some(&pod("new", None, "rs")));
        assert_eq!(c.node("a").pods, 0);
    }
}
