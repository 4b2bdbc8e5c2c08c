//! The initial full reconcile of the endpoints, EndpointSlice and mirroring controllers and their resync:
//! [`InitialSync`] queues the keys of the initial pass and knows when it is over (every one of them
//! reconciled successfully once), logged and exported as `knet_controllers_initial_sync_seconds` (the
//! controllers benchmark reads it to time a full resync after a restart); [`resync_every`] queues every
//! cached object again each resync period.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Resource;
use tokio::task::JoinHandle;

use crate::runtime::{enqueue_all, every, Metrics, ObjectKey, Store, WorkQueue};

struct Pending {
    keys: HashSet<ObjectKey>,
    total: usize,
    started: Instant,
    logged: bool,
}

/// The keys of the initial pass not reconciled yet.
pub struct InitialSync {
    controller: &'static str,
    metrics: Metrics,
    pending: Mutex<Option<Pending>>,
}

impl InitialSync {
    /// Nothing pending yet. The duration of the pass goes to `metrics` (`knet_controllers_initial_sync_seconds`).
    pub fn new(controller: &'static str, metrics: Metrics) -> Self {
        InitialSync { controller, metrics, pending: Mutex::new(None) }
    }

    /// Starts waiting for `keys`, timed from `started`.
    pub fn expect(&self, keys: impl IntoIterator<Item = ObjectKey>, started: Instant) {
        let keys: HashSet<ObjectKey> = keys.into_iter().collect();
        let total = keys.len();
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending { keys, total, started, logged: false });
        self.check();
    }

    /// The initial pass: waits for `keys` (timed from `started`) and queues them.
    pub fn enqueue(&self, keys: impl IntoIterator<Item = ObjectKey>, queue: &WorkQueue<ObjectKey>, started: Instant) {
        let keys: Vec<ObjectKey> = keys.into_iter().collect();
        self.expect(keys.iter().cloned(), started);
        for key in keys {
            queue.add(key);
        }
    }

    /// Passes on the `result` of reconciling `key`, counting a success for the initial pass.
    pub fn track<T, E>(&self, key: &ObjectKey, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok() {
            self.done(key);
        }
        result
    }

    /// Records that `key` was reconciled successfully.
    pub fn done(&self, key: &ObjectKey) {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.as_mut() {
            if p.keys.remove(key) && p.keys.is_empty() {
                drop(guard);
                self.check();
            }
        }
    }

    /// Whether the initial pass is over.
    pub fn is_done(&self) -> bool {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|p| p.keys.is_empty())
    }

    fn check(&self) {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = guard.as_mut() else { return };
        if p.keys.is_empty() && !p.logged {
            p.logged = true;
            self.metrics.set_initial_sync(self.controller, p.started.elapsed());
            tracing::info!(
                controller = self.controller,
                keys = p.total,
                elapsed_ms = u64::try_from(p.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "initial sync done"
            );
        }
    }
}

/// Queues every object of `store` every `period` from now on (client-go's resync, to repair drift a lost
/// event or a failed write left behind; the initial pass is [`InitialSync::enqueue`]'s).
pub fn resync_every<K>(store: Store<K>, queue: WorkQueue<ObjectKey>, period: Duration) -> JoinHandle<()>
where
    K: Resource + Send + Sync + 'static,
{
    every(period, move || enqueue_all(&store, &queue, |obj: &K| Some(ObjectKey::of(obj))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_once_every_key_is() {
        let s = InitialSync::new("test", Metrics::new());
        assert!(!s.is_done());
        s.expect([ObjectKey::new("a", "1"), ObjectKey::new("a", "2")], Instant::now());
        s.done(&ObjectKey::new("a", "1"));
        s.done(&ObjectKey::new("b", "9"));
        assert!(!s.is_done());
        s.done(&ObjectKey::new("a", "2"));
        assert!(s.is_done());
        let empty = InitialSync::new("test", Metrics::new());
        empty.expect([], Instant::now());
        assert!(empty.is_done());
    }

    #[tokio::test]
    async fn the_initial_pass_is_queued_and_only_successes_count() {
        let s = InitialSync::new("test", Metrics::new());
        let queue = WorkQueue::new();
        let (a, b) = (ObjectKey::new("d", "a"), ObjectKey::new("d", "b"));
        s.enqueue([a.clone(), b.clone()], &queue, Instant::now());
        assert_eq!(queue.len(), 2, "both keys queued");
        assert!(s.track(&a, Ok::<(), ()>(())).is_ok());
        assert!(s.track(&b, Err::<(), &str>("conflict")).is_err());
        assert!(!s.is_done(), "a failed reconcile does not end the initial pass");
        let _ = s.track(&b, Ok::<(), ()>(()));
        assert!(s.is_done());
    }

    #[tokio::test]
    async fn resync_queues_every_cached_object_each_period_not_at_once() {
        let store: Store<k8s_openapi::api::core::v1::Service> = Store::new();
        let mut svc = k8s_openapi::api::core::v1::Service::default();
        svc.metadata.namespace = Some("d".into());
        svc.metadata.name = Some("web".into());
        store.apply(std::sync::Arc::new(svc));
        let queue = WorkQueue::new();
        let task = resync_every(store, queue.clone(), Duration::from_millis(150));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(queue.is_empty(), "the initial pass is not resync_every's");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(queue.get().await, Some(ObjectKey::new("d", "web")));
        task.abort();
    }
}
