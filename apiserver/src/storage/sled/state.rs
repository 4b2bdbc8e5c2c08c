//! The state shared by the store handle, its writer and its watchers: the index of
//! current keys, the watch history and the live event broadcast, under one lock.
//!
//! The writer publishes a group commit (index, history, broadcast and revision)
//! under the write lock; readers and new watchers take the read lock. A watcher thus
//! subscribes to the broadcast at exactly the revision its history replay ends at,
//! so it sees no gap and no duplicate.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast;

use super::group::Group;
use super::history::History;
use super::index::Index;
use crate::storage::{Event, Revision, StorageError};

/// Events of one group commit, as broadcast to live watchers.
pub type Published = Arc<[Event]>;

#[derive(Debug)]
pub struct State {
    pub index: Index,
    pub history: History,
    /// `None` once the store is closed.
    live: Option<broadcast::Sender<Published>>,
}

#[derive(Debug)]
pub struct Shared {
    state: RwLock<State>,
    /// The revision of the last published group commit (readable without the lock).
    revision: AtomicI64,
    /// Transactions answered, and flushes (group commits that wrote) made for them.
    transactions: AtomicU64,
    flushes: AtomicU64,
}

impl Shared {
    /// The state of a store opened at `revision` holding `index`.
    pub fn new(index: Index, revision: Revision, history_len: usize, live_buffer: usize) -> Shared {
        let (live, _) = broadcast::channel(live_buffer.max(1));
        Shared {
            state: RwLock::new(State { index, history: History::new(history_len, revision), live: Some(live) }),
            revision: AtomicI64::new(revision),
            transactions: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// The state for reading. A poisoned lock is still usable: every update under
    /// the write lock is applied by code that does not panic midway.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    pub fn oldest_watchable(&self) -> Revision {
        self.read().history.oldest()
    }

    /// Counts a group commit of `transactions`, flushed or not.
    pub fn count(&self, transactions: usize, flushed: bool) {
        self.transactions.fetch_add(transactions as u64, Ordering::Relaxed);
        self.flushes.fetch_add(u64::from(flushed), Ordering::Relaxed);
    }

    /// (transactions answered, flushes made).
    pub fn counts(&self) -> (u64, u64) {
        (self.transactions.load(Ordering::Relaxed), self.flushes.load(Ordering::Relaxed))
    }

    /// Makes a durable group commit visible: to reads, to the history, to live
    /// watchers, in one step.
    pub fn publish(&self, group: Group) {
        let mut state = self.write();
        for (key, entry) in group.writes {
            state.index.apply(key, entry);
        }
        if !group.events.is_empty() {
            let events: Published = group.events.into();
            state.history.extend(events.iter().cloned());
            if let Some(live) = &state.live {
                // No receiver is not an error: nobody is watching.
                let _ = live.send(events);
            }
        }
        self.revision.store(group.revision, Ordering::Release);
    }

    /// The history events under `prefix` after `after`, and a receiver of every
    /// later group commit.
    pub fn subscribe(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Published>), StorageError> {
        let state = self.read();
        let live = state.live.as_ref().ok_or(StorageError::Closed)?;
        let replay = state
            .history
            .since(prefix, after)
            .ok_or(StorageError::Compacted { requested: after, oldest: state.history.oldest() })?;
        Ok((replay, live.subscribe()))
    }

    /// Ends every live watch and refuses new ones.
    pub fn close(&self) {
        self.write().live = None;
    }
}
