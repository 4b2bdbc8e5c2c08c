//! The event TTL sweep over a real sled store and registry: Events (core/v1 and events.k8s.io/v1) last
//! observed more than the TTL ago are deleted and counted, recurring ones live on, an Event updated
//! between the sweep's read and its delete is kept, and every page of a large store is swept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use knet_apiserver::event_ttl::EventTtl;
use knet_apiserver::metrics::Metrics;
use knet_apiserver::registry::{ListOptions, Registry, WriteOptions};
use knet_apiserver::resources::ResourceInfo;
use knet_apiserver::storage::{KeyValue, Op, RangeResult, Revision, StorageError, Store, Txn, TxnResult, WatchStream};
use serde_json::{json, Value};

mod common;
use common::{fixture, r};

const HOUR: Duration = Duration::from_secs(3600);

fn core_event(name: &str, last: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "m", "type": "Normal",
        "firstTimestamp": last, "lastTimestamp": last, "count": 1,
    })
}

async fn create(reg: &Registry, res: &ResourceInfo, event: Value) -> Value {
    reg.create(res, Some("default"), event, &WriteOptions::default()).await.expect("create event").object
}

async fn names(reg: &Registry) -> Vec<String> {
    let list = reg.list(r("", "events"), Some("default"), &ListOptions::default()).await.expect("list");
    list.items.iter().filter_map(|e| e.value["metadata"]["name"].as_str().map(String::from)).collect()
}

/// The time the registry stamped on an object, plus `later`.
fn created_plus(object: &Value, later: Duration) -> Timestamp {
    let created: Timestamp = object["metadata"]["creationTimestamp"].as_str().expect("stamped").parse().expect("time");
    created + later
}

#[tokio::test]
async fn events_past_the_ttl_are_deleted_and_recurring_ones_kept() {
    let f = fixture().await;
    let reg = &f.reg;
    let metrics = Arc::new(Metrics::new());
    let sweep = EventTtl::new(reg.store.clone(), metrics.clone(), HOUR);

    let old = create(reg, r("", "events"), core_event("old", "2025-01-01T00:00:00Z")).await;
    // Recurring: its series was observed half an hour after it was created.
    let series_at = created_plus(&old, Duration::from_secs(1800));
    let view = json!({
        "metadata": {"name": "recurring"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "series": {"count": 3, "lastObservedTime": series_at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()},
        "reason": "Pulled", "note": "n", "type": "Normal", "action": "Pull",
        "reportingController": "c", "reportingInstance": "i",
    });
    create(reg, r("events.k8s.io", "events"), view).await;

    // Within the hour of their creation nothing expires, whatever lastTimestamp says.
    let rep = sweep.sweep_at(created_plus(&old, Duration::from_secs(600))).await.expect("sweep");
    assert_eq!((rep.expired, rep.skipped, rep.undated), (0, 0, 0), "{rep:?}");
    assert_eq!(names(reg).await, ["old", "recurring"]);

    let rep = sweep.sweep_at(created_plus(&old, Duration::from_secs(3601 + 60))).await.expect("sweep");
    assert_eq!(rep.expired, 1, "{rep:?}");
    assert_eq!(names(reg).await, ["recurring"]);
    let rep = sweep.sweep_at(created_plus(&old, Duration::from_secs(1800 + 3601))).await.expect("sweep");
    assert_eq!(rep.expired, 1, "{rep:?}");
    assert!(names(reg).await.is_empty());
    let views = reg.list(r("events.k8s.io", "events"), None, &ListOptions::default()).await.expect("list");
    assert!(views.items.is_empty(), "the view goes with its stored Event");
    assert!(metrics.encode().contains("knet_apiserver_events_expired_total 2"), "{}", metrics.encode());
}

/// A store that, on the first transaction, first rewrites one key (as a recorder bumping a count would).
struct RacingStore {
    inner: Arc<dyn Store>,
    key: String,
    raced: AtomicBool,
}

#[async_trait::async_trait]
impl Store for RacingStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<RangeResult, StorageError> {
        self.inner.range(prefix, start_after, limit).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult, StorageError> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let cur = self.inner.get(&self.key).await?.expect("the racing key exists");
            let put = Txn { compares: vec![], ops: vec![Op::Put { key: self.key.clone(), value: cur.value }] };
            assert!(self.inner.txn(put).await?.succeeded);
        }
        self.inner.txn(txn).await
    }
    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        self.inner.watch(prefix, after)
    }
    fn revision(&self) -> Revision {
        self.inner.revision()
    }
    fn oldest_watchable(&self) -> Revision {
        self.inner.oldest_watchable()
    }
}

#[tokio::test]
async fn an_event_updated_during_the_sweep_is_kept_and_the_others_deleted() {
    let f = fixture().await;
    let reg = &f.reg;
    let mut last = Value::Null;
    for name in ["a", "b", "c"] {
        last = create(reg, r("", "events"), core_event(name, "2025-01-01T00:00:00Z")).await;
    }
    let racing = Arc::new(RacingStore {
        inner: reg.store.clone(),
        key: "/core/events/default/b".into(),
        raced: AtomicBool::new(false),
    });
    let metrics = Arc::new(Metrics::new());
    let sweep = EventTtl::new(racing, metrics.clone(), HOUR);
    let later = created_plus(&last, HOUR * 2);
    let rep = sweep.sweep_at(later).await.expect("sweep");
    assert_eq!((rep.expired, rep.skipped), (2, 1), "{rep:?}");
    assert_eq!(names(reg).await, ["b"], "the Event written after the read survives this sweep");
    let rep = sweep.sweep_at(later).await.expect("sweep");
    assert_eq!((rep.expired, rep.skipped), (1, 0), "{rep:?}");
    assert!(names(reg).await.is_empty());
    assert!(metrics.encode().contains("knet_apiserver_events_expired_total 3"));
}

#[tokio::test]
async fn every_page_is_swept_and_undated_events_are_kept() {
    let f = fixture().await;
    let reg = &f.reg;
    // 1,201 Events in other namespaces' keys, written straight to the store in one transaction.
    let mut ops: Vec<Op> = (0..1200)
        .map(|i| Op::Put {
            key: format!("/core/events/ns-{}/e-{i:04}", i % 3),
            value: Bytes::from(json!({"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z"}}).to_string()),
        })
        .collect();
    ops.push(Op::Put { key: "/core/events/ns-0/undated".into(), value: Bytes::from_static(b"{\"metadata\":{}}") });
    assert!(reg.store.txn(Txn { compares: vec![], ops }).await.expect("txn").succeeded);
    let sweep = EventTtl::new(reg.store.clone(), Arc::new(Metrics::new()), HOUR);
    let rep = sweep.sweep_at("2025-01-01T01:00:01Z".parse().expect("time")).await.expect("sweep");
    assert_eq!((rep.expired, rep.skipped, rep.undated), (1200, 0, 1), "{rep:?}");
    let left = reg.store.range("/core/events/", None, 0).await.expect("range");
    let keys: Vec<&str> = left.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/core/events/ns-0/undated"]);
}
