//! The watch stream: events replayed from the history, then live group commits,
//! filtered by key prefix.
//!
//! A watcher that falls behind the live broadcast buffer gets one
//! [`StorageError::Compacted`] and its stream ends; the stream also ends when the
//! store closes.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};

use super::state::{Published, Shared};
use crate::storage::{Event, Revision, StorageError, WatchStream};

/// A watch of keys under `prefix` from revision `after` (exclusive).
pub fn watch(shared: Arc<Shared>, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
    let (replay, receiver) = shared.subscribe(prefix, after)?;
    let last = replay.last().map_or(after, Event::revision);
    let live =
        Live { receiver, prefix: prefix.to_owned(), after, last, pending: VecDeque::new(), shared, ended: false };
    let replayed = futures::stream::iter(replay.into_iter().map(Ok));
    Ok(Box::pin(replayed.chain(futures::stream::unfold(live, Live::next))))
}

struct Live {
    receiver: broadcast::Receiver<Published>,
    prefix: String,
    /// Only events after this are delivered (the watch may start after a revision
    /// that was not yet published when it subscribed).
    after: Revision,
    /// The revision of the last event delivered.
    last: Revision,
    pending: VecDeque<Event>,
    shared: Arc<Shared>,
    ended: bool,
}

impl Live {
    async fn next(mut self) -> Option<(Result<Event, StorageError>, Live)> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.last = event.revision();
                return Some((Ok(event), self));
            }
            match self.receiver.recv().await {
                Ok(events) => {
                    let (after, prefix) = (self.after, &self.prefix);
                    let wanted = events.iter().filter(|e| e.revision() > after && e.kv.key.starts_with(prefix));
                    self.pending.extend(wanted.cloned());
                }
                Err(RecvError::Lagged(_)) => {
                    self.ended = true;
                    let oldest = self.shared.oldest_watchable();
                    return Some((Err(StorageError::Compacted { requested: self.last, oldest }), self));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
