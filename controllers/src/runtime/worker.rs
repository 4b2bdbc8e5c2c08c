//! The reconcile loop every controller shares: workers take keys from a [`WorkQueue`], call the controller's
//! [`Reconciler`], retry failures with backoff, honour requeue-after, and record metrics.

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use super::queue::WorkQueue;

/// What to do with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until something changes.
    Done,
    /// Reconcile again after this delay even if nothing changes (e.g. to check a deadline).
    RequeueAfter(Duration),
}

/// One controller's reconcile function: make the world match the desired state for one key.
/// It must be level-triggered: read current state from the caches (or the API), never from the trigger.
pub trait Reconciler: Send + Sync + 'static {
    /// What the queue holds (usually an [`super::ObjectKey`]).
    type Key: Clone + Eq + Hash + Display + Send + Sync + 'static;
    /// What a failed reconcile returns; it is logged and the key retried with backoff.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The controller's name, for logs and metrics (upstream's, e.g. "endpointslice-controller").
    fn name(&self) -> &'static str;

    /// Reconciles one key.
    fn reconcile(&self, key: &Self::Key) -> impl Future<Output = Result<Action, Self::Error>> + Send;
}

/// Runs `workers` workers over `queue` until the queue is shut down.
pub async fn run_workers<R: Reconciler>(
    reconciler: Arc<R>,
    queue: WorkQueue<R::Key>,
    workers: usize,
    metrics: Metrics,
) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let r = reconciler.clone();
        let q = queue.clone();
        let m = metrics.clone();
        set.spawn(async move {
            while let Some(key) = q.get().await {
                process(r.as_ref(), &q, &m, &key).await;
                q.done(&key);
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn process<R: Reconciler>(r: &R, q: &WorkQueue<R::Key>, m: &Metrics, key: &R::Key) {
    let started = Instant::now();
    let result = r.reconcile(key).await;
    let elapsed = started.elapsed();
    match result {
        Ok(action) => {
            m.observe_reconcile(r.name(), "success", elapsed);
            q.forget(key);
            if let Action::RequeueAfter(d) = action {
                q.add_after(key.clone(), d);
            }
        }
        Err(e) => {
            m.observe_reconcile(r.name(), "error", elapsed);
            let failures = q.failures(key);
            // Conflicts are expected under concurrency and fixed by the retry: keep them quiet.
            if failures < 3 {
                tracing::debug!(controller = r.name(), key = %key, error = %e, "reconcile failed; retrying");
            } else {
                tracing::warn!(controller = r.name(), key = %key, failures, error = %e, "reconcile failed; retrying");
            }
            q.add_rate_limited(key.clone());
        }
    }
    m.set_queue_depth(r.name(), q.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Flaky {
        calls: AtomicU32,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("not yet")]
    struct NotYet;

    impl Reconciler for Flaky {
        type Key = String;
        type Error = NotYet;
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn reconcile(&self, _key: &String) -> Result<Action, NotYet> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(NotYet)
            } else {
                Ok(Action::Done)
            }
        }
    }

    #[tokio::test]
    async fn failures_are_retried_until_success() {
        let r = Arc::new(Flaky { calls: AtomicU32::new(0) });
        let q = WorkQueue::new();
        q.add("k".to_string());
        let run = tokio::spawn(run_workers(r.clone(), q.clone(), 2, Metrics::new()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.calls.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(r.calls.load(Ordering::SeqCst), 3);
        assert_eq!(q.failures(&"k".to_string()), 0, "success forgets the backoff");
        q.shut_down();
        let _ = run.await;
    }
}
