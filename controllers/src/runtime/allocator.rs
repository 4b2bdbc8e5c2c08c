//! What controllers that hand out addresses from a pool share (node IPAM's pod CIDRs, LoadBalancer IPAM's
//! IPs; upstream's allocators with their repair loops): a work item that is one object or a repair pass
//! ([`AllocatorKey`]), and the per-object bookkeeping around the allocations ([`Ledger`]): writes the cache
//! has not shown yet, problems already reported, objects waiting for something to be freed.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;

/// A work item of an allocating controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AllocatorKey<K> {
    /// Reconcile this object.
    Object(K),
    /// Rebuild the allocations from the objects that hold them and recheck the objects.
    Repair,
}

impl<K: fmt::Display> fmt::Display for AllocatorKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocatorKey::Object(k) => k.fmt(f),
            AllocatorKey::Repair => f.write_str("repair"),
        }
    }
}

/// Per-object bookkeeping of an allocating controller, by object key.
#[derive(Debug)]
pub struct Ledger<K> {
    /// The resourceVersion of the cached object our last write was based on: until the cache shows a newer
    /// version, the object is not written again (and its allocation is known to be in flight).
    written: HashMap<K, String>,
    /// The last problem message reported about the object (each is reported once).
    reported: HashMap<K, String>,
    /// Objects waiting for an allocation to be freed.
    waiting: BTreeSet<K>,
}

impl<K> Default for Ledger<K> {
    fn default() -> Self {
        Ledger { written: HashMap::new(), reported: HashMap::new(), waiting: BTreeSet::new() }
    }
}

impl<K: Clone + Eq + Hash + Ord> Ledger<K> {
    /// Records a write to `key` based on its cached version `resource_version`.
    pub fn wrote(&mut self, key: K, resource_version: String) {
        self.written.insert(key, resource_version);
    }

    /// Whether our last write to `key` was based on `resource_version`, i.e. the cache has not shown it yet.
    pub fn in_flight<Q>(&self, key: &Q, resource_version: Option<&str>) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ?Sized,
    {
        resource_version.is_some_and(|rv| self.written.get(key).is_some_and(|w| w == rv))
    }

    /// Forgets the write to `key` (the cache showed it, or it has to be done again).
    pub fn forget_write<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ?Sized,
    {
        self.written.remove(key);
    }

    /// Records `message` as reported about `key`; `false` when it is what was last reported (so it is not
    /// reported again).
    pub fn first_report<Q>(&mut self, key: &Q, message: &str) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ToOwned<Owned = K> + ?Sized,
    {
        if self.reported.get(key).is_some_and(|m| m == message) {
            return false;
        }
        self.reported.insert(key.to_owned(), message.to_string());
        true
    }

    /// Forgets what was reported about `key` (its problem is gone).
    pub fn clear_report<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ?Sized,
    {
        self.reported.remove(key);
    }

    /// The objects with a problem reported.
    pub fn reported(&self) -> impl Iterator<Item = &K> {
        self.reported.keys()
    }

    /// Marks `key` as waiting for an allocation to be freed, or not.
    pub fn set_waiting<Q>(&mut self, key: &Q, waiting: bool)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ToOwned<Owned = K> + ?Sized,
    {
        if waiting {
            if !self.waiting.contains(key) {
                self.waiting.insert(key.to_owned());
            }
        } else {
            self.waiting.remove(key);
        }
    }

    /// The objects waiting for an allocation to be freed.
    pub fn waiting(&self) -> impl Iterator<Item = &K> {
        self.waiting.iter()
    }

    /// Forgets everything about `key` (it is gone).
    pub fn forget<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + Ord + ?Sized,
    {
        self.written.remove(key);
        self.reported.remove(key);
        self.waiting.remove(key);
    }

    /// Keeps only the objects `live` says still exist (a repair pass over the whole cache).
    pub fn retain(&mut self, live: impl Fn(&K) -> bool) {
        self.written.retain(|k, _| live(k));
        self.reported.retain(|k, _| live(k));
        self.waiting.retain(|k| live(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_in_flight_until_the_cache_shows_a_newer_version() {
        let mut l: Ledger<String> = Ledger::default();
        assert!(!l.in_flight("n", Some("5")));
        l.wrote("n".into(), "5".into());
        assert!(l.in_flight("n", Some("5")));
        assert!(!l.in_flight("n", Some("6")), "a newer version shows the write (or something newer)");
        assert!(!l.in_flight("n", None));
        l.forget_write("n");
        assert!(!l.in_flight("n", Some("5")));
    }

    #[test]
    fn each_problem_is_reported_once_until_it_changes_or_clears() {
        let mut l: Ledger<String> = Ledger::default();
        assert!(l.first_report("n", "full"));
        assert!(!l.first_report("n", "full"));
        assert!(l.first_report("n", "conflict"), "another problem is news");
        assert_eq!(l.reported().collect::<Vec<_>>(), ["n"]);
        l.clear_report("n");
        assert!(l.first_report("n", "conflict"), "after it cleared, it is news again");
    }

    #[test]
    fn forget_and_retain_drop_every_note_of_a_gone_object() {
        let mut l: Ledger<String> = Ledger::default();
        for k in ["a", "b", "c"] {
            l.wrote(k.into(), "1".into());
            l.first_report(k, "p");
            l.set_waiting(k, true);
        }
        l.set_waiting("c", false);
        l.forget("a");
        assert!(!l.in_flight("a", Some("1")));
        assert_eq!(l.waiting().collect::<Vec<_>>(), ["b"]);
        l.retain(|k| k != "b");
        assert!(!l.in_flight("b", Some("1")) && l.in_flight("c", Some("1")));
        assert_eq!(l.reported().collect::<Vec<_>>(), ["c"]);
        assert_eq!(l.waiting().count(), 0);
    }

    #[test]
    fn keys_display_as_the_object_or_repair() {
        assert_eq!(AllocatorKey::Object("node-a").to_string(), "node-a");
        assert_eq!(AllocatorKey::<&str>::Repair.to_string(), "repair");
    }
}
