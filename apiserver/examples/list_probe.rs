use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::registry::{ListOptions, Registry, WriteOptions};
use knet_apiserver::resources;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use serde_json::json;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    let reg = std::sync::Arc::new(Registry::new(store, Allocator::new(AllocConfig::default())));
    let ns = resources::find("", "v1", "namespaces").unwrap();
    reg.create(ns, None, json!({"metadata": {"name": "default"}}), &WriteOptions::default()).await.unwrap();
    let svc = resources::find("", "v1", "services").unwrap();
    let t = Instant::now();
    let mut handles = vec![];
    for c in 0..16 {
        let reg = reg.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..625 {
                let o = json!({"metadata": {"name": format!("s{c}-{i}"), "labels": {"app": "x"}}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
                reg.create(svc, Some("default"), o, &WriteOptions::default()).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let el = t.elapsed();
    println!("create 10000: {:?} = {:.0}/s", el, 10000.0 / el.as_secs_f64());
    for _ in 0..3 {
        let t = Instant::now();
        let l = reg.list(svc, None, &ListOptions::default()).await.unwrap();
        let t1 = t.elapsed();
        let body = serde_json::to_vec(&json!({"kind": "ServiceList", "items": l.items})).unwrap();
        println!(
            "list {} items: range+decode {:?}, +encode {:?} ({} bytes)",
            l.items.len(),
            t1,
            t.elapsed(),
            body.len()
        );
    }
}
