//! Evaluating one group commit: the transactions taken from the writer's queue
//! together, in queue order, each seeing the effects of the earlier ones.
//!
//! This is pure logic over the [`Index`]; the writer makes the outcome durable with
//! one sled batch and one flush, then publishes it.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::index::{Entry, Index};
use crate::storage::{Compare, Event, EventKind, KeyValue, Op, Revision, Txn, TxnResult};

/// The outcome of a group of transactions.
#[derive(Debug, Default)]
pub struct Group {
    /// One answer per transaction, in order.
    pub results: Vec<TxnResult>,
    /// The watch events, in revision order.
    pub events: Vec<Event>,
    /// The final state of every key the group changed (`None`: deleted).
    pub writes: BTreeMap<String, Option<Entry>>,
    /// The store revision after the group.
    pub revision: Revision,
}

impl Group {
    /// Evaluates `txns` against `index` at store revision `revision`.
    pub fn evaluate<'a>(index: &Index, revision: Revision, txns: impl IntoIterator<Item = &'a Txn>) -> Group {
        let mut group = Group { revision, ..Group::default() };
        for txn in txns {
            let result = group.apply(index, txn);
            group.results.push(result);
        }
        group
    }

    /// Whether anything must be written.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    fn lookup<'s>(&'s self, index: &'s Index, key: &str) -> Option<&'s Entry> {
        match self.writes.get(key) {
            Some(pending) => pending.as_ref(),
            None => index.get(key),
        }
    }

    fn holds(&self, index: &Index, compare: &Compare) -> bool {
        match compare {
            Compare::Absent(key) => self.lookup(index, key).is_none(),
            Compare::Exists(key) => self.lookup(index, key).is_some(),
            Compare::ModRevision(key, rev) => self.lookup(index, key).is_some_and(|e| e.mod_revision == *rev),
        }
    }

    fn apply(&mut self, index: &Index, txn: &Txn) -> TxnResult {
        let failed: Vec<usize> =
            txn.compares.iter().enumerate().filter(|(_, c)| !self.holds(index, c)).map(|(i, _)| i).collect();
        if !failed.is_empty() {
            return TxnResult { succeeded: false, failed, revision: self.revision };
        }
        let rev = self.revision + 1;
        let events_before = self.events.len();
        for op in &txn.ops {
            match op {
                Op::Put { key, value } => self.put(index, key, value, rev),
                Op::Delete { key } => self.delete(index, key, rev),
            }
        }
        if self.events.len() > events_before {
            self.revision = rev;
        }
        TxnResult { succeeded: true, failed: Vec::new(), revision: self.revision }
    }

    fn put(&mut self, index: &Index, key: &str, value: &Bytes, rev: Revision) {
        let prev = self.lookup(index, key).cloned();
        let entry = Entry {
            value: value.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
        };
        self.events.push(Event {
            kind: EventKind::Put,
            kv: entry.to_key_value(key),
            prev: prev.map(|p| p.to_key_value(key)),
        });
        self.writes.insert(key.to_owned(), Some(entry));
    }

    fn delete(&mut self, index: &Index, key: &str, rev: Revision) {
        let Some(prev) = self.lookup(index, key).cloned() else {
            return;
        };
        self.events.push(Event {
            kind: EventKind::Delete,
            kv: KeyValue { key: key.to_owned(), value: Bytes::new(), create_revision: 0, mod_revision: rev },
            prev: Some(prev.to_key_value(key)),
        });
        self.writes.insert(key.to_owned(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Op {
        Op::Put { key: key.to_owned(), value: Bytes::from(value.to_owned()) }
    }

    fn del(key: &str) -> Op {
        Op::Delete { key: key.to_owned() }
    }

    fn index_with(key: &str, rev: Revision) -> Index {
        let mut index = Index::default();
        index.apply(
            key.to_owned(),
            Some(Entry { value: Bytes::from_static(b"old"), create_revision: rev, mod_revision: rev }),
        );
        index
    }

    #[test]
    fn compares_report_the_indexes_that_failed() {
        let index = index_with("/a", 3);
        let txn = Txn {
            compares: vec![
                Compare::Exists("/a".into()),
                Compare::Absent("/a".into()),
                Compare::ModRevision("/a".into(), 3),
                Compare::ModRevision("/a".into(), 2),
                Compare::Exists("/missing".into()),
                Compare::ModRevision("/missing".into(), 0),
                Compare::Absent("/missing".into()),
            ],
            ops: vec![put("/b", "x")],
        };
        let group = Group::evaluate(&index, 3, [&txn]);
        assert_eq!(group.results, [TxnResult { succeeded: false, failed: vec![1, 3, 4, 5], revision: 3 }]);
        assert!(!group.has_writes());
        assert!(group.events.is_empty());
    }

    #[test]
    fn later_transactions_see_earlier_ones_of_the_group() {
        let index = Index::default();
        let create = Txn { compares: vec![Compare::Absent("/svc".into())], ops: vec![put("/svc", "v1")] };
        let update = Txn { compares: vec![Compare::ModRevision("/svc".into(), 11)], ops: vec![put("/svc", "v2")] };
        let group = Group::evaluate(&index, 10, [&create, &create, &update]);
        let revisions: Vec<_> = group.results.iter().map(|r| (r.succeeded, r.revision)).collect();
        assert_eq!(revisions, [(true, 11), (false, 11), (true, 12)]);
        assert_eq!(group.revision, 12);
        let stored = group.writes.get("/svc").cloned().flatten();
        assert_eq!(
            stored,
            Some(Entry { value: Bytes::from_static(b"v2"), create_revision: 11, mod_revision: 12 }),
            "an update keeps the create revision"
        );
        assert_eq!(group.events.len(), 2);
        assert_eq!(group.events[1].prev.as_ref().map(|p| p.mod_revision), Some(11));
    }

    #[test]
    fn one_transaction_takes_one_revision_for_all_its_ops() {
        let index = Index::default();
        let txn = Txn {
            compares: vec![Compare::Absent("/svc".into()), Compare::Absent("/ip".into())],
            ops: vec![put("/svc", "s"), put("/ip", "i")],
        };
        let group = Group::evaluate(&index, 0, [&txn]);
        assert_eq!(group.revision, 1);
        assert!(group.events.iter().all(|e| e.revision() == 1 && e.kind == EventKind::Put && e.prev.is_none()));
        assert_eq!(group.writes.len(), 2);
    }

    #[test]
    fn deletes_carry_the_previous_value_and_deleting_nothing_keeps_the_revision() {
        let index = index_with("/a", 4);
        let txn = Txn { compares: vec![], ops: vec![del("/a")] };
        let noop = Txn { compares: vec![], ops: vec![del("/a"), del("/never")] };
        let empty = Txn::default();
        let group = Group::evaluate(&index, 4, [&txn, &noop, &empty]);
        let revisions: Vec<_> = group.results.iter().map(|r| (r.succeeded, r.revision)).collect();
        assert_eq!(revisions, [(true, 5), (true, 5), (true, 5)]);
        assert_eq!(group.events.len(), 1);
        let event = &group.events[0];
        assert_eq!(event.kind, EventKind::Delete);
        assert_eq!(event.kv.mod_revision, 5);
        assert!(event.kv.value.is_empty());
        assert_eq!(event.prev.as_ref().map(|p| (p.value.as_ref(), p.mod_revision)), Some((&b"old"[..], 4)));
        assert_eq!(group.writes.get("/a"), Some(&None));
    }

    #[test]
    fn a_put_over_an_existing_key_carries_prev() {
        let index = index_with("/a", 2);
        let txn = Txn { compares: vec![], ops: vec![put("/a", "new")] };
        let group = Group::evaluate(&index, 9, [&txn]);
        let event = &group.events[0];
        assert_eq!((event.kv.create_revision, event.kv.mod_revision), (2, 10));
        assert_eq!(event.prev.as_ref().map(|p| p.value.as_ref()), Some(&b"old"[..]));
    }
}
