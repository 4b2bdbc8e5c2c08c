//! The allocation repair over a real sled store and registry: a leaked key is released on the
//! third run (and its value handed out again), a lost key is restored (and its value refused
//! to others), a duplicate is reported with an event, and the metrics count it all.

use std::sync::Arc;

use bytes::Bytes;
use knet_apiserver::alloc::{ip_key, port_key, AllocConfig, Allocator};
use knet_apiserver::metrics::Metrics;
use knet_apiserver::registry::{ListOptions, Registry, WriteOptions};
use knet_apiserver::repair::Repair;
use knet_apiserver::resources::{self, ResourceInfo};
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Op, Txn};
use serde_json::{json, Value};

/// A registry on the store in `dir` (and the store, to close it before reopening).
async fn registry(dir: &std::path::Path) -> (Arc<Registry>, Arc<SledStore>) {
    let store = SledStore::open(dir, SledOptions::default()).expect("open store");
    let alloc = Allocator::new(AllocConfig::default());
    alloc.load(store.as_ref()).await.expect("load allocations");
    let reg = Arc::new(Registry::with_watch_cache(store.clone(), alloc).await.expect("watch cache"));
    let ns = json!({"metadata": {"name": "default"}});
    let _ = reg.create(r("", "namespaces"), None, ns, &WriteOptions::default()).await;
    (reg, store)
}

fn r(group: &str, plural: &str) -> &'static ResourceInfo {
    resources::find(group, "v1", plural).expect("resource")
}

fn svc(name: &str, ip: &str, node_port: Option<u16>) -> Value {
    let mut s = json!({"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    if let Some(p) = node_port {
        s["spec"]["type"] = json!("NodePort");
        s["spec"]["ports"][0]["nodePort"] = json!(p);
    }
    s
}

async fn put(reg: &Registry, key: String) {
    let txn = Txn { compares: vec![], ops: vec![Op::Put { key, value: Bytes::from_static(b"{}") }] };
    assert!(reg.store.txn(txn).await.expect("txn").succeeded);
}

async fn delete(reg: &Registry, key: String) {
    let txn = Txn { compares: vec![], ops: vec![Op::Delete { key }] };
    assert!(reg.store.txn(txn).await.expect("txn").succeeded);
}

async fn create(reg: &Registry, s: Value) -> Result<Value, String> {
    reg.create(r("", "services"), Some("default"), s, &WriteOptions::default())
        .await
        .map(|w| w.object)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn leaks_are_released_on_the_third_run_and_lost_keys_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A leaked ClusterIP and NodePort, written before the allocator loads them (as after a crash).
    {
        let (reg, store) = registry(dir.path()).await;
        put(&reg, ip_key(&"10.96.0.50".parse().expect("ip"))).await;
        put(&reg, port_key(30050)).await;
        create(&reg, svc("web", "10.96.0.60", Some(30060))).await.expect("web");
        // web's keys are lost.
        delete(&reg, ip_key(&"10.96.0.60".parse().expect("ip"))).await;
        delete(&reg, port_key(30060)).await;
        drop(reg);
        store.close().await;
    }
    let (reg, _store) = registry(dir.path()).await;
    let metrics = Arc::new(Metrics::new());
    let mut repair = Repair::new(reg.clone(), metrics.clone());

    let first = repair.run_once().await.expect("first run");
    assert_eq!((first.restored, first.released, first.suspected), (2, 0, 2), "{first:?}");
    let taken = create(&reg, svc("other", "10.96.0.60", None)).await.unwrap_err();
    assert!(taken.ends_with("failed to allocate IP 10.96.0.60: provided IP is already allocated"), "{taken}");
    let leaked = create(&reg, svc("early", "10.96.0.50", None)).await.unwrap_err();
    assert!(leaked.contains("provided IP is already allocated"), "{leaked}");

    let second = repair.run_once().await.expect("second run");
    assert_eq!((second.restored, second.released, second.suspected), (0, 0, 2), "{second:?}");
    let third = repair.run_once().await.expect("third run");
    assert_eq!((third.restored, third.released, third.suspected), (0, 2, 0), "{third:?}");
    create(&reg, svc("late", "10.96.0.50", Some(30050))).await.expect("the released values are free again");
    let fourth = repair.run_once().await.expect("fourth run");
    assert_eq!(fourth, Default::default(), "nothing left to repair");

    let text = metrics.encode();
    for line in [
        "knet_apiserver_repair_leaks_released_total{resource=\"clusterips\"} 1",
        "knet_apiserver_repair_leaks_released_total{resource=\"nodeports\"} 1",
        "knet_apiserver_repair_allocations_restored_total{resource=\"clusterips\"} 1",
        "knet_apiserver_repair_allocations_restored_total{resource=\"nodeports\"} 1",
        "knet_apiserver_repair_runs_total 4",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // The restore is reported on the Service, as upstream does.
    let events = reg
        .list(
            r("", "events"),
            Some("default"),
            &ListOptions { field_selector: Some("involvedObject.name=web".into()), ..Default::default() },
        )
        .await
        .expect("events");
    let reasons: Vec<&str> = events.items.iter().filter_map(|e| e.value["reason"].as_str()).collect();
    assert!(reasons.contains(&"ClusterIPNotAllocated") && reasons.contains(&"PortNotAllocated"), "{reasons:?}");
}

#[tokio::test]
async fn duplicates_are_reported_once_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reg, _store) = registry(dir.path()).await;
    create(&reg, svc("a", "10.96.0.70", None)).await.expect("a");
    // A second Service with the same IP, written behind the registry's back.
    let b = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "b", "namespace": "default", "uid": "uid-b"},
        "spec": {"clusterIP": "10.96.0.70", "clusterIPs": ["10.96.0.70"], "ports": [{"port": 80}]}});
    let txn = Txn {
        compares: vec![],
        ops: vec![Op::Put { key: "/core/services/default/b".into(), value: Bytes::from(b.to_string()) }],
    };
    assert!(reg.store.txn(txn).await.expect("txn").succeeded);
    let metrics = Arc::new(Metrics::new());
    let mut repair = Repair::new(reg.clone(), metrics.clone());
    for _ in 0..2 {
        let rep = repair.run_once().await.expect("run");
        assert_eq!((rep.problems, rep.restored, rep.released), (1, 0, 0), "{rep:?}");
    }
    assert!(metrics
        .encode()
        .contains("knet_apiserver_repair_problems_total{resource=\"clusterips\",problem=\"duplicate\"} 2"));
    let events = reg
        .list(
            r("", "events"),
            Some("default"),
            &ListOptions { field_selector: Some("involvedObject.name=b".into()), ..Default::default() },
        )
        .await
        .expect("events");
    assert_eq!(events.items.len(), 1, "one event however many runs see it");
    assert_eq!(events.items[0].value["reason"], "ClusterIPAlreadyAllocated");
    assert_eq!(events.items[0].value["type"], "Warning");
    assert_eq!(
        events.items[0].value["message"],
        "Cluster IP [IPv4]:10.96.0.70 was assigned to multiple services; please recreate service"
    );
}
