//! Event TTL: kube-apiserver's `--event-ttl` (default 1h). Events are written all the time
//! by controllers and agents; a periodic sweep deletes the core/v1 Events (and so their
//! events.k8s.io/v1 views) last observed more than the TTL ago, so they do not grow the
//! store for ever.
//!
//! The sweep reads the stored Events a page at a time, lets [`decide`] pick the expired
//! ones and deletes them in one transaction per page, each delete guarded by the revision
//! the Event was judged at: an Event updated meanwhile (a recorder bumping its count) fails
//! its compare, is left alone and is judged again on the next sweep.

pub mod decide;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use self::decide::{decide, Expire, StoredEvent};
use crate::metrics::Metrics;
use crate::storage::{Compare, Op, StorageError, Store, Txn};

/// Where core/v1 Events are stored (`registry::prefix` of core/v1 events).
const EVENTS_PREFIX: &str = "/core/events/";
/// Events read, and deleted in one transaction, at a time.
const PAGE: usize = 500;

/// What can go wrong in a sweep (it is retried on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum EventTtlError {
    #[error("reading Events for the event TTL sweep: {0}")]
    Read(#[source] StorageError),
    #[error("deleting expired Events: {0}")]
    Delete(#[source] StorageError),
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub expired: usize,
    /// Expired Events updated between the read and the delete, kept for the next sweep.
    pub skipped: usize,
    /// Events without a readable time (kept).
    pub undated: usize,
}

/// How often the sweep runs for a TTL: a tenth of it, between 100 ms and one minute.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// The event TTL sweep.
pub struct EventTtl {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    ttl: Duration,
}

impl EventTtl {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, ttl: Duration) -> Self {
        EventTtl { store, metrics, ttl }
    }

    /// Sweeps every [`sweep_interval`], until the task is dropped.
    pub async fn run(self) {
        let interval = sweep_interval(self.ttl);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.sweep_at(Timestamp::now()).await {
                tracing::warn!(error = %e, "event TTL sweep failed; retrying at the next interval");
            }
        }
    }

    /// One sweep, as if the time were `now`.
    pub async fn sweep_at(&self, now: Timestamp) -> Result<Report, EventTtlError> {
        let result = self.sweep_inner(now).await;
        if result.is_err() {
            self.metrics.event_ttl_failure();
        }
        result
    }

    async fn sweep_inner(&self, now: Timestamp) -> Result<Report, EventTtlError> {
        let mut report = Report::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.range(EVENTS_PREFIX, after.as_deref(), PAGE).await.map_err(EventTtlError::Read)?;
            let objects: Vec<Option<Value>> =
                page.kvs.iter().map(|kv| serde_json::from_slice(&kv.value).ok()).collect();
            let events: Vec<StoredEvent<'_>> = page
                .kvs
                .iter()
                .zip(&objects)
                .map(|(kv, o)| StoredEvent { key: &kv.key, mod_revision: kv.mod_revision, object: o.as_ref() })
                .collect();
            let d = decide(&events, now, self.ttl);
            for key in &d.undated {
                tracing::warn!(%key, "a stored Event has no readable time: the event TTL cannot expire it");
            }
            report.undated += d.undated.len();
            let (deleted, skipped) = self.delete(d.expire).await?;
            report.expired += deleted;
            report.skipped += skipped;
            after = page.kvs.last().map(|kv| kv.key.clone());
            if !page.more || after.is_none() {
                break;
            }
        }
        if report.expired > 0 {
            self.metrics.events_expired(report.expired);
            tracing::debug!(expired = report.expired, "event TTL sweep deleted expired Events");
        }
        Ok(report)
    }

    /// Deletes the Events still at the revision they were judged at, in one transaction;
    /// those updated meanwhile are dropped from it. Returns (deleted, skipped).
    async fn delete(&self, mut expire: Vec<Expire>) -> Result<(usize, usize), EventTtlError> {
        let total = expire.len();
        while !expire.is_empty() {
            let txn = Txn {
                compares: expire.iter().map(|e| Compare::ModRevision(e.key.clone(), e.mod_revision)).collect(),
                ops: expire.iter().map(|e| Op::Delete { key: e.key.clone() }).collect(),
            };
            let done = self.store.txn(txn).await.map_err(EventTtlError::Delete)?;
            if done.succeeded {
                return Ok((expire.len(), total - expire.len()));
            }
            if done.failed.is_empty() {
                break;
            }
            let mut i = 0;
            expire.retain(|_| {
                i += 1;
                !done.failed.contains(&(i - 1))
            });
        }
        Ok((0, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn events_are_where_the_registry_keeps_them() {
        let res = resources::find("", "v1", "events").expect("events are served");
        assert_eq!(crate::registry::prefix(res, None), EVENTS_PREFIX);
    }

    #[test]
    fn the_sweep_runs_at_a_tenth_of_the_ttl_within_bounds() {
        assert_eq!(sweep_interval(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(sweep_interval(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(sweep_interval(Duration::ZERO), Duration::from_millis(100));
    }
}
