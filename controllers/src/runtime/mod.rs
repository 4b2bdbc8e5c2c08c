//! The controller runtime shared by every controller: informers and their caches, the work queue, the
//! reconcile loop, leader election and metrics (event recording is component-base's `events`, re-exported).
//! Nothing in here knows any controller.

pub mod allocator;
pub mod client;
pub mod conditions;
pub mod enqueue;
pub mod informer;
pub mod leader;
pub mod metrics;
pub mod queue;
pub mod store;
pub mod worker;

pub use enqueue::{enqueue_all, enqueue_changes, every, resync};
pub use informer::{Change, Informer};
pub use knet_component_base::events::EventRecorder;
pub use metrics::Metrics;
pub use queue::WorkQueue;
pub use store::{ObjectKey, Store};
pub use worker::{run_workers, Action, Reconciler};
