//! The bounded in-memory history of watch events that a watch from a past revision
//! is replayed from.
//!
//! The history holds every event with a revision greater than [`History::oldest`];
//! when it is full the oldest events are dropped and `oldest` moves forward. It is
//! empty after a restart, with `oldest` the revision at open.

use std::collections::VecDeque;

use crate::storage::{Event, Revision};

#[derive(Debug)]
pub struct History {
    events: VecDeque<Event>,
    capacity: usize,
    oldest: Revision,
}

impl History {
    /// An empty history that can replay events after `revision`.
    pub fn new(capacity: usize, revision: Revision) -> History {
        History { events: VecDeque::with_capacity(capacity.min(4096)), capacity, oldest: revision }
    }

    /// The oldest revision a watch may start after.
    pub fn oldest(&self) -> Revision {
        self.oldest
    }

    /// Appends events (in revision order, after every event already held).
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.events.push_back(event);
            if self.events.len() > self.capacity {
                if let Some(dropped) = self.events.pop_front() {
                    self.oldest = self.oldest.max(dropped.revision());
                }
            }
        }
    }

    /// The events with revision `> after` under `prefix`; `None` when events after
    /// `after` have already been dropped.
    pub fn since(&self, prefix: &str, after: Revision) -> Option<Vec<Event>> {
        if after < self.oldest {
            return None;
        }
        let start = self.events.partition_point(|e| e.revision() <= after);
        Some(self.events.range(start..).filter(|e| e.kv.key.starts_with(prefix)).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{EventKind, KeyValue};
    use bytes::Bytes;

    fn event(key: &str, rev: Revision) -> Event {
        Event {
            kind: EventKind::Put,
            kv: KeyValue { key: key.to_owned(), value: Bytes::new(), create_revision: rev, mod_revision: rev },
            prev: None,
        }
    }

    fn revisions(events: &[Event]) -> Vec<Revision> {
        events.iter().map(Event::revision).collect()
    }

    #[test]
    fn replays_after_a_revision_under_a_prefix() {
        let mut history = History::new(10, 5);
        history.extend([event("/a/1", 6), event("/b/1", 7), event("/a/2", 8)]);
        assert_eq!(history.since("/a/", 5).as_deref().map(revisions), Some(vec![6, 8]));
        assert_eq!(history.since("/", 6).as_deref().map(revisions), Some(vec![7, 8]));
        assert_eq!(history.since("/", 8).as_deref().map(revisions), Some(vec![]));
        assert_eq!(history.since("/", 100).as_deref().map(revisions), Some(vec![]));
        assert!(history.since("/", 4).is_none(), "revision 5 is before the history");
    }

    #[test]
    fn dropping_events_moves_oldest_forward() {
        let mut history = History::new(3, 0);
        history.extend((1..=5).map(|rev| event("/k", rev)));
        assert_eq!(history.oldest(), 2);
        assert!(history.since("/", 1).is_none());
        assert_eq!(history.since("/", 2).as_deref().map(revisions), Some(vec![3, 4, 5]));
    }

    #[test]
    fn a_partly_dropped_revision_is_not_replayed() {
        let mut history = History::new(2, 0);
        history.extend([event("/a", 1), event("/b", 1), event("/c", 2)]);
        assert_eq!(history.oldest(), 1);
        assert!(history.since("/", 0).is_none(), "one event of revision 1 is gone");
        assert_eq!(history.since("/", 1).as_deref().map(revisions), Some(vec![2]));
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut history = History::new(0, 3);
        history.extend([event("/a", 4), event("/a", 5)]);
        assert_eq!(history.oldest(), 5);
        assert_eq!(history.since("/", 5).as_deref().map(revisions), Some(vec![]));
        assert!(history.since("/", 4).is_none());
    }
}
