//! Feeding a controller's work queue: from informer changes ([`enqueue_changes`]), from the whole cache once
//! ([`enqueue_all`], the initial full reconcile) and again every resync period ([`resync`], client-go's
//! `resyncPeriod`), and from a timer ([`every`], client-go's `wait.Until` loops such as a repair pass).

use std::hash::Hash;
use std::time::Duration;

use kube::Resource;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::informer::Change;
use super::queue::WorkQueue;
use super::store::Store;

/// The shortest period a periodic task runs at: a zero period (`--resync-period 0s`) must not spin a core.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);

/// Feeds a work queue from an informer subscription: `map` turns each change into the keys to reconcile.
/// Runs until the informer goes away.
pub async fn enqueue_changes<K, Q, F>(mut changes: mpsc::UnboundedReceiver<Change<K>>, queue: WorkQueue<Q>, mut map: F)
where
    Q: Clone + Eq + Hash + Send + 'static,
    F: FnMut(&Change<K>) -> Vec<Q>,
{
    while let Some(change) = changes.recv().await {
        for key in map(&change) {
            queue.add(key);
        }
    }
}

/// Queues the keys `map` gives for every object in `store` (e.g. `|o| Some(ObjectKey::of(o))`, or `None`
/// for objects the controller does not care about).
pub fn enqueue_all<K, Q, I>(store: &Store<K>, queue: &WorkQueue<Q>, mut map: impl FnMut(&K) -> I)
where
    K: Resource,
    Q: Clone + Eq + Hash + Send + 'static,
    I: IntoIterator<Item = Q>,
{
    for obj in store.list() {
        for key in map(&obj) {
            queue.add(key);
        }
    }
}

/// The initial full reconcile plus client-go's resync: queues the keys `map` gives for every cached object
/// now and again every `period`, so that drift a lost event or a failed write left behind is repaired.
/// Call it after the informer synced. Runs until the process ends (or the handle is aborted).
pub fn resync<K, Q, I, F>(store: Store<K>, queue: WorkQueue<Q>, period: Duration, mut map: F) -> JoinHandle<()>
where
    K: Resource + Send + Sync + 'static,
    Q: Clone + Eq + Hash + Send + 'static,
    I: IntoIterator<Item = Q>,
    F: FnMut(&K) -> I + Send + 'static,
{
    enqueue_all(&store, &queue, &mut map);
    every(period, move || enqueue_all(&store, &queue, &mut map))
}

/// Calls `tick` every `period` (at least [`MIN_PERIOD`]), the first time one period from now, until the
/// process ends (or the handle is aborted). A tick that comes late (a busy runtime) does not cause a burst.
pub fn every(period: Duration, mut tick: impl FnMut() + Send + 'static) -> JoinHandle<()> {
    let period = period.max(MIN_PERIOD);
    tokio::spawn(async move {
        let mut timer = tokio::time::interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            tick();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn namespace(name: &str, terminating: bool) -> Arc<Namespace> {
        Arc::new(Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: terminating.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// A cache holding these Namespaces (name, terminating).
    fn cache(namespaces: &[(&str, bool)]) -> Store<Namespace> {
        let store = Store::new();
        for (name, terminating) in namespaces {
            store.apply(namespace(name, *terminating));
        }
        store
    }

    /// Takes every queued key (marking each done), sorted.
    async fn drain(queue: &WorkQueue<String>) -> Vec<String> {
        let mut keys = Vec::new();
        while !queue.is_empty() {
            let Some(k) = queue.get().await else { break };
            queue.done(&k);
            keys.push(k);
        }
        keys.sort();
        keys
    }

    fn terminating(ns: &Namespace) -> Option<String> {
        ns.metadata.deletion_timestamp.as_ref().and(ns.metadata.name.clone())
    }

    #[tokio::test]
    async fn resync_queues_the_mapped_keys_now_and_again_every_period() {
        let store = cache(&[("a", true), ("b", false)]);
        let queue = WorkQueue::new();
        let task = resync(store.clone(), queue.clone(), Duration::from_millis(150), terminating);
        assert_eq!(drain(&queue).await, ["a"], "the initial pass queues what the map keeps, right away");
        store.apply(namespace("c", true));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(queue.is_empty(), "nothing more before one period");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(drain(&queue).await, ["a", "c"], "the resync sees the cache as it is now");
        task.abort();
    }

    #[tokio::test]
    async fn enqueue_all_runs_once() {
        let store = cache(&[("x", false), ("y", false)]);
        let queue = WorkQueue::new();
        enqueue_all(&store, &queue, |ns: &Namespace| ns.metadata.name.clone());
        assert_eq!(drain(&queue).await, ["x", "y"]);
    }

    #[tokio::test]
    async fn every_waits_one_period_and_a_zero_period_does_not_spin() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let task = every(Duration::ZERO, move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(MIN_PERIOD / 2).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the first tick is one period away");
        tokio::time::sleep(MIN_PERIOD * 3).await;
        let n = calls.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "a zero period runs at MIN_PERIOD: {n} ticks in 3.5 periods");
        task.abort();
    }
}
