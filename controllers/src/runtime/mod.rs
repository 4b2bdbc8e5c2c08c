//! The controller runtime shared by every controller: informers and their caches, the work queue, the
//! reconcile loop, leader election, event recording and metrics. Nothing in here knows any controller.

pub mod client;
pub mod events;
pub mod informer;
pub mod leader;
pub mod metrics;
pub mod queue;
pub mod store;
pub mod worker;

pub use events::EventRecorder;
pub use informer::{Change, Informer};
pub use metrics::Metrics;
pub use queue::WorkQueue;
pub use store::{ObjectKey, Store};
pub use worker::{run_workers, Action, Reconciler};

use tokio::sync::mpsc;

/// Feeds a work queue from an informer subscription: `map` turns each change into the keys to reconcile.
/// Runs until the informer goes away.
pub async fn enqueue_changes<K, Q, F>(mut changes: mpsc::UnboundedReceiver<Change<K>>, queue: WorkQueue<Q>, mut map: F)
where
    Q: Clone + Eq + std::hash::Hash + Send + 'static,
    F: FnMut(&Change<K>) -> Vec<Q>,
{
    while let Some(change) = changes.recv().await {
        for key in map(&change) {
            queue.add(key);
        }
    }
}
