//! The in-memory index of current keys that every read is answered from.
//!
//! sled holds the durable copy; the index mirrors it as of the last published group
//! commit, so a read under the index lock sees whole transactions at one revision.
//! Values are [`Bytes`], shared (not copied) with watch events and read answers.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::storage::{KeyValue, Revision};

/// The current value of a key and its revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

impl Entry {
    pub fn to_key_value(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// Current keys in key order.
#[derive(Debug, Default)]
pub struct Index {
    entries: BTreeMap<String, Entry>,
}

impl Index {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sets (`Some`) or removes (`None`) a key.
    pub fn apply(&mut self, key: String, entry: Option<Entry>) {
        match entry {
            Some(entry) => {
                self.entries.insert(key, entry);
            }
            None => {
                self.entries.remove(&key);
            }
        }
    }

    /// Keys starting with `prefix`, strictly after `start_after`, at most `limit`
    /// (`0` = all); the flag says whether more keys under `prefix` follow.
    pub fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> (Vec<KeyValue>, bool) {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut matching = self
            .entries
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, entry)| entry.to_key_value(key));
        if limit == 0 {
            return (matching.collect(), false);
        }
        let kvs: Vec<KeyValue> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        (kvs, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(rev: Revision) -> Entry {
        Entry { value: Bytes::from(rev.to_string()), create_revision: rev, mod_revision: rev }
    }

    fn index_of(keys: &[&str]) -> Index {
        let mut index = Index::default();
        for (i, key) in keys.iter().enumerate() {
            index.apply((*key).to_owned(), Some(entry(i as Revision + 1)));
        }
        index
    }

    fn keys(kvs: &[KeyValue]) -> Vec<&str> {
        kvs.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn range_stays_inside_the_prefix() {
        let index = index_of(&["/a/1", "/a/2", "/a0", "/b/1", "/a/"]);
        let (kvs, more) = index.range("/a/", None, 0);
        assert_eq!(keys(&kvs), ["/a/", "/a/1", "/a/2"]);
        assert!(!more);
    }

    #[test]
    fn range_pages_with_start_after_and_limit() {
        let index = index_of(&["/p/a", "/p/b", "/p/c", "/p/d", "/q/a"]);
        let (first, more) = index.range("/p/", None, 2);
        assert_eq!(keys(&first), ["/p/a", "/p/b"]);
        assert!(more);
        let (second, more) = index.range("/p/", Some("/p/b"), 2);
        assert_eq!(keys(&second), ["/p/c", "/p/d"]);
        assert!(!more, "no key under the prefix follows /p/d");
        let (before, _) = index.range("/p/", Some("/a"), 1);
        assert_eq!(keys(&before), ["/p/a"], "a start_after before the prefix starts at the prefix");
        let (gap, more) = index.range("/p/", Some("/p/bb"), 0);
        assert_eq!(keys(&gap), ["/p/c", "/p/d"]);
        assert!(!more);
    }

    #[test]
    fn apply_none_removes() {
        let mut index = index_of(&["/x"]);
        index.apply("/x".to_owned(), None);
        assert!(index.get("/x").is_none());
        assert_eq!(index.len(), 0);
    }

    proptest! {
        #[test]
        fn paging_through_a_prefix_returns_every_key_once(
            keys in proptest::collection::btree_set("/[ab]/[a-c]{0,3}", 0..40),
            limit in 1usize..7,
        ) {
            let mut index = Index::default();
            for key in &keys {
                index.apply(key.clone(), Some(entry(1)));
            }
            let expected: Vec<&String> = keys.iter().filter(|k| k.starts_with("/a/")).collect();
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (kvs, more) = index.range("/a/", after.as_deref(), limit);
                prop_assert!(kvs.len() <= limit);
                seen.extend(kvs.iter().map(|kv| kv.key.clone()));
                after = kvs.last().map(|kv| kv.key.clone());
                if !more {
                    break;
                }
            }
            prop_assert_eq!(seen.iter().collect::<Vec<_>>(), expected);
        }
    }
}
