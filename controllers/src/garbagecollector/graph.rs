//! The garbage collector's dependency graph (upstream graph_builder.go): every watched object by uid, with
//! its owner references and the uids of its dependents. An owner that is referenced but not (yet) seen by any
//! watch is a *virtual* node, which the collector verifies with a live GET.
//!
//! Pure data: each change returns the [`Work`] it implies (which uids to check for deletion, which owners to
//! orphan); the caller queues it. Callers serialize changes (one lock), as upstream's single graph builder
//! goroutine does.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Finalizer the API server adds on a delete with `propagationPolicy: Orphan`.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Finalizer the API server adds on a delete with `propagationPolicy: Foreground`.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// How many verified-absent owners are remembered (upstream's absentOwnerCache size).
const ABSENT_OWNERS: usize = 500;

/// Where an object is: its type, namespace ("" when cluster-scoped or unknown), name and uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// `v1`, `apps/v1`, …
    pub api_version: String,
    /// `Pod`, `ReplicaSet`, …
    pub kind: String,
    /// The namespace; for a virtual owner, the namespace of the dependent that referenced it.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The uid.
    pub uid: String,
}

impl Identity {
    /// The identity of the owner `r` as referenced by an object in `namespace`.
    pub fn of_owner(r: &OwnerReference, namespace: &str) -> Self {
        Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: namespace.to_string(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// What the graph needs of an observed object.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectState {
    /// Where it is.
    pub identity: Identity,
    /// Its `metadata.ownerReferences`.
    pub owners: Vec<OwnerReference>,
    /// Whether it has a `deletionTimestamp`.
    pub deleting: bool,
    /// Its `metadata.finalizers`.
    pub finalizers: Vec<String>,
}

impl ObjectState {
    /// The state of an object of `api_version`/`kind` from its metadata; `None` without a uid or name.
    pub fn from_meta(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<Self> {
        let uid = meta.uid.clone().filter(|u| !u.is_empty())?;
        let name = meta.name.clone().filter(|n| !n.is_empty())?;
        Some(ObjectState {
            identity: Identity {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                name,
                uid,
            },
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        })
    }

    /// Deleted with `propagationPolicy: Orphan` and not orphaned yet.
    pub fn waits_for_orphaning(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FINALIZER_ORPHAN)
    }

    /// Deleted with `propagationPolicy: Foreground` and waiting for its blocking dependents.
    pub fn waits_for_dependents_deletion(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FINALIZER_FOREGROUND)
    }
}

/// One object in the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where it is (for a virtual node: as its first dependent referenced it).
    pub identity: Identity,
    /// Its owner references.
    pub owners: Vec<OwnerReference>,
    /// It has a `deletionTimestamp`.
    pub being_deleted: bool,
    /// It is being deleted in the foreground (waits for its blocking dependents).
    pub deleting_dependents: bool,
    /// It waits for its dependents to be orphaned.
    pub orphaning: bool,
    /// A watch has reported it; `false` for a virtual node.
    pub observed: bool,
}

/// What a change asks the collector to do, by uid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Work {
    /// Objects whose owners may be gone, or owners whose foreground deletion may be complete.
    pub attempt_to_delete: Vec<String>,
    /// Owners whose dependents must be orphaned.
    pub attempt_to_orphan: Vec<String>,
}

/// Owners verified absent by a live GET, so their other dependents need no GET of their own.
#[derive(Debug, Default)]
struct AbsentOwners {
    set: HashSet<Identity>,
    order: VecDeque<Identity>,
}

impl AbsentOwners {
    fn insert(&mut self, id: Identity) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > ABSENT_OWNERS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// The dependency graph.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid → uids of the objects referencing it. Kept apart from the nodes so an owner that leaves
    /// the graph and comes back (a virtual delete raced with its creation, a relist) finds its dependents.
    dependents: HashMap<String, BTreeSet<String>>,
    absent: AbsentOwners,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node with this uid.
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// How many nodes (observed and virtual) the graph holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `id` was verified absent.
    pub fn is_absent(&self, id: &Identity) -> bool {
        self.absent.set.contains(id)
    }

    /// Remembers that `id` was verified absent.
    pub fn mark_absent(&mut self, id: Identity) {
        self.absent.insert(id);
    }

    /// A watch reported `obj` (added or changed).
    pub fn upsert(&mut self, obj: ObjectState) -> Work {
        let mut work = Work::default();
        let uid = obj.identity.uid.clone();
        let namespace = obj.identity.namespace.clone();
        let (was_deleting_dependents, was_orphaning, added, removed_or_changed) = match self.nodes.get_mut(&uid) {
            None => {
                let node = Node {
                    identity: obj.identity.clone(),
                    owners: obj.owners.clone(),
                    being_deleted: obj.deleting,
                    deleting_dependents: false,
                    orphaning: false,
                    observed: true,
                };
                self.nodes.insert(uid.clone(), node);
                (false, false, obj.owners.clone(), Vec::new())
            }
            Some(node) => {
                node.observed = true;
                node.identity = obj.identity.clone();
                node.being_deleted = obj.deleting;
                let (added, removed_or_changed) = owner_diff(&node.owners, &obj.owners);
                node.owners = obj.owners.clone();
                (node.deleting_dependents, node.orphaning, added, removed_or_changed)
            }
        };
        // Owners that lost a (blocking) dependent may have finished their foreground deletion.
        for r in &removed_or_changed {
            if !obj.owners.iter().any(|o| o.uid == r.uid) {
                self.unlink(&r.uid, &uid);
            }
            if self.nodes.get(&r.uid).is_some_and(|o| o.deleting_dependents) {
                work.attempt_to_delete.push(r.uid.clone());
            }
        }
        for r in &added {
            self.dependents.entry(r.uid.clone()).or_default().insert(uid.clone());
            if !self.nodes.contains_key(&r.uid) {
                let node = Node {
                    identity: Identity::of_owner(r, &namespace),
                    owners: Vec::new(),
                    being_deleted: false,
                    deleting_dependents: false,
                    orphaning: false,
                    observed: false,
                };
                self.nodes.insert(r.uid.clone(), node);
                work.attempt_to_delete.push(r.uid.clone());
            }
        }
        // Transitions into a deletion that waits for the collector.
        let orphaning = obj.waits_for_orphaning();
        let deleting_dependents = obj.waits_for_dependents_deletion();
        if let Some(node) = self.nodes.get_mut(&uid) {
            node.orphaning = orphaning;
            node.deleting_dependents = deleting_dependents;
        }
        if orphaning && !was_orphaning {
            work.attempt_to_orphan.push(uid.clone());
        }
        if deleting_dependents && !was_deleting_dependents {
            work.attempt_to_delete.extend(self.dependents(&uid));
            work.attempt_to_delete.push(uid.clone());
        }
        work
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(deps) = self.dependents.get_mut(owner) {
            deps.remove(dependent);
            if deps.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// The uids of the objects that reference `uid` as an owner, sorted.
    pub fn dependents(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|d| d.iter().cloned().collect()).unwrap_or_default()
    }

    /// A watch reported that the object with `uid` is gone.
    pub fn remove(&mut self, uid: &str) -> Work {
        let mut work = Work::default();
        let Some(node) = self.nodes.remove(uid) else { return work };
        for r in &node.owners {
            self.unlink(&r.uid, uid);
            if self.nodes.get(&r.uid).is_some_and(|o| o.deleting_dependents) {
                work.attempt_to_delete.push(r.uid.clone());
            }
        }
        let dependents = self.dependents(uid);
        if !dependents.is_empty() {
            self.absent.insert(node.identity.clone());
        }
        work.attempt_to_delete.extend(dependents);
        work
    }

    /// A live GET found no object `id` (or one with another uid): drop the node if it is virtual or has
    /// these coordinates, and check its dependents.
    pub fn virtual_delete(&mut self, id: &Identity) -> Work {
        let Some(node) = self.nodes.get(&id.uid) else { return Work::default() };
        if !node.observed || node.identity == *id {
            return self.remove(&id.uid);
        }
        // A watch saw the object at other coordinates: dependents that reference `id` are dangling.
        self.absent.insert(id.clone());
        Work { attempt_to_delete: self.dependents(&id.uid), attempt_to_orphan: Vec::new() }
    }

    /// The dependents of `uid` that reference it with `blockOwnerDeletion: true`.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter(|d| {
                self.nodes
                    .get(*d)
                    .is_some_and(|dep| dep.owners.iter().any(|r| r.uid == uid && r.block_owner_deletion == Some(true)))
            })
            .cloned()
            .collect()
    }

    /// Whether the watches show every owner of `uid` alive under the referenced name and kind (true when it
    /// has no owners): then there is nothing to collect and no GET is needed. A later deletion of an owner
    /// queues `uid` again.
    pub fn owners_alive(&self, uid: &str) -> bool {
        let Some(node) = self.nodes.get(uid) else { return false };
        node.observed
            && !node.deleting_dependents
            && node.owners.iter().all(|r| {
                self.nodes.get(&r.uid).is_some_and(|o| {
                    o.observed
                        && !o.being_deleted
                        && o.identity.name == r.name
                        && o.identity.kind == r.kind
                        && o.identity.api_version == r.api_version
                })
            })
    }

    /// Whether any dependent of `uid` is itself being deleted in the foreground.
    pub fn has_dependent_deleting_dependents(&self, uid: &str) -> bool {
        self.dependents
            .get(uid)
            .is_some_and(|deps| deps.iter().any(|d| self.nodes.get(d).is_some_and(|d| d.deleting_dependents)))
    }

    /// Everything still pending, for a periodic resync: virtual nodes to verify, foreground deletions to
    /// advance, orphaning to finish.
    pub fn pending(&self) -> Work {
        let mut work = Work::default();
        for (uid, n) in &self.nodes {
            if !n.observed || n.deleting_dependents {
                work.attempt_to_delete.push(uid.clone());
            }
            if n.orphaning {
                work.attempt_to_orphan.push(uid.clone());
            }
        }
        work
    }
}

/// Owner references added, and removed or changed, between `old` and `new` (matched by uid).
fn owner_diff(old: &[OwnerReference], new: &[OwnerReference]) -> (Vec<OwnerReference>, Vec<OwnerReference>) {
    let added = new.iter().filter(|n| !old.iter().any(|o| o.uid == n.uid)).cloned().collect();
    let removed_or_changed = old.iter().filter(|o| !new.iter().any(|n| n == *o)).cloned().collect();
    (added, removed_or_changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn obj(name: &str, uid: &str, owners: Vec<OwnerReference>) -> ObjectState {
        ObjectState {
            identity: Identity {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: "ns".into(),
                name: name.into(),
                uid: uid.into(),
            },
            owners,
            deleting: false,
            finalizers: Vec::new(),
        }
    }

    #[test]
    fn unseen_owner_becomes_a_virtual_node_to_verify() {
        let mut g = Graph::new();
        let w = g.upsert(obj("dep", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        assert_eq!(w.attempt_to_delete, ["o1"]);
        let owner = g.node("o1").unwrap();
        assert!(!owner.observed);
        assert_eq!(owner.identity.namespace, "ns");
        assert_eq!(g.dependents("o1"), ["d1"]);
        // The owner shows up: it becomes observed, nothing to do.
        let w = g.upsert(obj("own", "o1", vec![]));
        assert_eq!(w, Work::default());
        assert!(g.node("o1").unwrap().observed);
        assert_eq!(g.dependents("o1"), ["d1"]);
    }

    #[test]
    fn an_owner_that_leaves_and_returns_still_has_its_dependents() {
        let mut g = Graph::new();
        g.upsert(obj("own", "o1", vec![]));
        g.upsert(obj("dep", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        let id = g.node("o1").unwrap().identity.clone();
        assert_eq!(g.virtual_delete(&id).attempt_to_delete, ["d1"]);
        g.upsert(obj("own", "o1", vec![]));
        assert_eq!(g.remove("o1").attempt_to_delete, ["d1"], "the returned owner's deletion must reach d1");
    }

    #[test]
    fn owners_alive_needs_every_owner_observed_and_not_deleting() {
        let mut g = Graph::new();
        g.upsert(obj("lonely", "l1", vec![]));
        assert!(g.owners_alive("l1"));
        g.upsert(obj("dep", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        assert!(!g.owners_alive("d1"), "virtual owner");
        g.upsert(obj("own", "o1", vec![]));
        assert!(g.owners_alive("d1"));
        g.upsert(obj("dep2", "d2", vec![owner_ref("ConfigMap", "other-name", "o1", false)]));
        assert!(!g.owners_alive("d2"), "the uid is alive under another name");
        let mut own = obj("own", "o1", vec![]);
        own.deleting = true;
        g.upsert(own);
        assert!(!g.owners_alive("d1"));
        assert!(!g.owners_alive("missing"));
    }

    #[test]
    fn deleting_an_owner_checks_its_dependents_and_remembers_it_absent() {
        let mut g = Graph::new();
        g.upsert(obj("own", "o1", vec![]));
        g.upsert(obj("a", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        g.upsert(obj("b", "d2", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        let w = g.remove("o1");
        assert_eq!(w.attempt_to_delete, ["d1", "d2"]);
        assert!(g.node("o1").is_none());
        assert!(g.is_absent(&obj("own", "o1", vec![]).identity));
    }

    #[test]
    fn orphan_and_foreground_transitions_fire_once() {
        let mut g = Graph::new();
        g.upsert(obj("own", "o1", vec![]));
        g.upsert(obj("a", "d1", vec![owner_ref("ConfigMap", "own", "o1", true)]));
        let mut own = obj("own", "o1", vec![]);
        own.deleting = true;
        own.finalizers = vec![FINALIZER_FOREGROUND.into()];
        let w = g.upsert(own.clone());
        assert_eq!(w.attempt_to_delete, ["d1", "o1"]);
        assert_eq!(g.upsert(own), Work::default(), "no transition, no work");
        assert_eq!(g.blocking_dependents("o1"), ["d1"]);
        // The dependent goes: the owner is checked again.
        let w = g.remove("d1");
        assert_eq!(w.attempt_to_delete, ["o1"]);
        assert!(g.blocking_dependents("o1").is_empty());

        let mut own2 = obj("own2", "o2", vec![]);
        own2.deleting = true;
        own2.finalizers = vec![FINALIZER_ORPHAN.into()];
        assert_eq!(g.upsert(own2.clone()).attempt_to_orphan, ["o2"]);
        assert_eq!(g.upsert(own2).attempt_to_orphan, Vec::<String>::new());
        assert_eq!(g.pending().attempt_to_orphan, ["o2"]);
    }

    #[test]
    fn dropping_a_blocking_reference_unblocks_a_foreground_owner() {
        let mut g = Graph::new();
        let mut own = obj("own", "o1", vec![]);
        own.deleting = true;
        own.finalizers = vec![FINALIZER_FOREGROUND.into()];
        g.upsert(own);
        g.upsert(obj("a", "d1", vec![owner_ref("ConfigMap", "own", "o1", true)]));
        let w = g.upsert(obj("a", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        assert_eq!(w.attempt_to_delete, ["o1"]);
        assert!(g.blocking_dependents("o1").is_empty());
        assert_eq!(g.dependents("o1"), ["d1"], "still a dependent, just not blocking");
        let w = g.upsert(obj("a", "d1", vec![]));
        assert_eq!(w.attempt_to_delete, ["o1"]);
        assert!(g.dependents("o1").is_empty());
    }

    #[test]
    fn virtual_delete_removes_virtual_nodes_but_not_observed_ones_seen_elsewhere() {
        let mut g = Graph::new();
        g.upsert(obj("dep", "d1", vec![owner_ref("ConfigMap", "own", "o1", false)]));
        let id = g.node("o1").unwrap().identity.clone();
        let w = g.virtual_delete(&id);
        assert_eq!(w.attempt_to_delete, ["d1"]);
        assert!(g.node("o1").is_none());

        g.upsert(obj("own", "o2", vec![]));
        g.upsert(obj("dep2", "d2", vec![owner_ref("ConfigMap", "own", "o2", false)]));
        let mut elsewhere = g.node("o2").unwrap().identity.clone();
        elsewhere.namespace = "other".into();
        let w = g.virtual_delete(&elsewhere);
        assert_eq!(w.attempt_to_delete, ["d2"]);
        assert!(g.node("o2").is_some());
        assert!(g.is_absent(&elsewhere));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Upsert { uid: u8, owners: Vec<(u8, bool)>, deleting: bool, fin: u8 },
            Remove(u8),
            VirtualDelete(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..6, proptest::collection::vec((0u8..6, any::<bool>()), 0..3), any::<bool>(), 0u8..3)
                    .prop_map(|(uid, owners, deleting, fin)| Op::Upsert { uid, owners, deleting, fin }),
                (0u8..6).prop_map(Op::Remove),
                (0u8..6).prop_map(Op::VirtualDelete),
            ]
        }

        fn check(g: &Graph) -> Result<(), TestCaseError> {
            for (owner, deps) in &g.dependents {
                prop_assert!(!deps.is_empty(), "empty dependents set kept for {owner}");
                for d in deps {
                    let n = g.nodes.get(d);
                    prop_assert!(
                        n.is_some_and(|n| n.owners.iter().any(|r| &r.uid == owner)),
                        "{d} listed under {owner}"
                    );
                }
            }
            for (uid, n) in &g.nodes {
                for r in &n.owners {
                    prop_assert!(g.dependents(&r.uid).contains(uid), "{uid} missing under its owner {}", r.uid);
                }
                prop_assert!(n.observed || n.owners.is_empty(), "virtual nodes have no owners");
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn the_graph_stays_consistent_and_loses_no_dependent(ops in proptest::collection::vec(op(), 1..40)) {
                let mut g = Graph::new();
                for op in ops {
                    match op {
                        Op::Upsert { uid, owners, deleting, fin } => {
                            let mut o = obj(&format!("n{uid}"), &format!("u{uid}"), owners
                                .iter()
                                .filter(|(x, _)| *x != uid)
                                .map(|(x, b)| owner_ref("ConfigMap", &format!("n{x}"), &format!("u{x}"), *b))
                                .collect());
                            o.owners.dedup_by(|a, b| a.uid == b.uid);
                            o.deleting = deleting;
                            o.finalizers = match fin { 1 => vec![FINALIZER_ORPHAN.into()], 2 => vec![FINALIZER_FOREGROUND.into()], _ => vec![] };
                            g.upsert(o);
                        }
                        Op::Remove(uid) => {
                            let uid = format!("u{uid}");
                            let before = g.dependents(&uid);
                            let existed = g.node(&uid).is_some();
                            let w = g.remove(&uid);
                            if existed {
                                for d in before {
                                    prop_assert!(w.attempt_to_delete.contains(&d), "dependent {d} of removed {uid} not queued");
                                }
                            }
                        }
                        Op::VirtualDelete(uid) => {
                            let uid = format!("u{uid}");
                            if let Some(id) = g.node(&uid).map(|n| n.identity.clone()) {
                                let before = g.dependents(&uid);
                                let w = g.virtual_delete(&id);
                                for d in before {
                                    prop_assert!(w.attempt_to_delete.contains(&d), "dependent {d} of {uid} not queued");
                                }
                            }
                        }
                    }
                    check(&g)?;
                }
            }
        }
    }
}
