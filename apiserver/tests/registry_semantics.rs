//! The registry's API semantics over a real sled store: create/get/list/update/patch/
//! delete, optimistic concurrency, generateName, status subresource, finalizers,
//! Service allocation, selectors, paging and watch.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::error::ApiError;
use knet_apiserver::registry::strategy::Part;
use knet_apiserver::registry::{DeleteOptions, ListOptions, PatchType, Registry, WatchEventType};
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use serde_json::{json, Value};

mod common;
use common::{fixture, r, w};

fn svc(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
           "spec": {"selector": {"app": name}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}})
}

#[tokio::test]
async fn bootstrap_creates_namespaces_and_kubernetes_service() {
    let f = fixture().await;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        f.reg.get(r("", "namespaces"), None, ns).await.expect(ns);
    }
    let k = f.reg.get(r("", "services"), Some("default"), "kubernetes").await.unwrap();
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(k["spec"]["ports"][0]["port"], 443);
    let ep = f.reg.get(r("", "endpoints"), Some("default"), "kubernetes").await.unwrap();
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
}

#[tokio::test]
async fn create_get_conflict_and_update() {
    let f = fixture().await;
    let s = r("", "services");
    let created = f.reg.create(s, Some("default"), svc("web"), &w()).await.unwrap();
    assert_eq!(created.code, 201);
    let ip = created.object["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."), "{ip}");
    let rv = created.object["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    assert!(created.object["metadata"]["uid"].is_string());

    let again = f.reg.create(s, Some("default"), svc("web"), &w()).await.unwrap_err();
    assert!(matches!(again, ApiError::AlreadyExists { .. }));
    assert_eq!(again.to_string(), "services \"web\" already exists");

    // Update with the current RV works; with a stale RV it conflicts.
    let mut upd = created.object.clone();
    upd["metadata"]["labels"]["tier"] = json!("front");
    let u = f.reg.update(s, Some("default"), "web", Part::Main, upd.clone(), &w()).await.unwrap();
    assert_ne!(u.object["metadata"]["resourceVersion"], json!(rv));
    assert_eq!(u.object["spec"]["clusterIP"], json!(ip));
    let stale = f.reg.update(s, Some("default"), "web", Part::Main, upd, &w()).await.unwrap_err();
    assert!(matches!(stale, ApiError::Conflict { .. }), "{stale}");
    assert_eq!(stale.code(), 409);

    // A no-op update does not write.
    let cur = f.reg.get(s, Some("default"), "web").await.unwrap();
    let same = f.reg.update(s, Some("default"), "web", Part::Main, cur.clone(), &w()).await.unwrap();
    assert_eq!(same.object["metadata"]["resourceVersion"], cur["metadata"]["resourceVersion"]);
}

#[tokio::test]
async fn namespace_must_exist() {
    let f = fixture().await;
    let e =
        f.reg.create(r("", "configmaps"), Some("nope"), json!({"metadata": {"name": "c"}}), &w()).await.unwrap_err();
    assert_eq!(e.to_string(), "namespaces \"nope\" not found");
}

#[tokio::test]
async fn generate_name() {
    let f = fixture().await;
    let cm = r("", "configmaps");
    let a = f.reg.create(cm, Some("default"), json!({"metadata": {"generateName": "cfg-"}}), &w()).await.unwrap();
    let name = a.object["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn status_subresource_only_changes_status() {
    let f = fixture().await;
    let s = r("", "services");
    let mut lb = svc("lb");
    lb["spec"]["type"] = json!("LoadBalancer");
    f.reg.create(s, Some("default"), lb, &w()).await.unwrap();
    let mut body = f.reg.get(s, Some("default"), "lb").await.unwrap();
    body["spec"]["type"] = json!("NodePort");
    body["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.240"}]}});
    let out = f.reg.update(s, Some("default"), "lb", Part::Status, body, &w()).await.unwrap();
    assert_ne!(out.object["spec"]["type"], "NodePort");
    assert_eq!(out.object["status"]["loadBalancer"]["ingress"][0]["ip"], "192.168.56.240");
    let stored = f.reg.get(s, Some("default"), "lb").await.unwrap();
    assert_ne!(stored["spec"]["type"], "NodePort");
    // And a main update cannot change status.
    let mut main = stored.clone();
    main["status"] = json!({"loadBalancer": {}});
    let out = f.reg.update(s, Some("default"), "lb", Part::Main, main, &w()).await.unwrap();
    assert_eq!(out.object["status"]["loadBalancer"]["ingress"][0]["ip"], "192.168.56.240");
}

#[tokio::test]
async fn a_deployment_status_write_records_the_revision_annotation_but_not_labels() {
    let f = fixture().await;
    let d = r("apps", "deployments");
    let ns = Some("default");
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    f.reg.create(d, ns, body, &w()).await.unwrap();
    // What the deployment controller sends with UpdateStatus.
    let mut st = f.reg.get(d, ns, "web").await.unwrap();
    st["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    st["metadata"]["labels"] = json!({"app": "other"});
    st["spec"]["replicas"] = json!(7);
    st["status"] = json!({"observedGeneration": 1, "replicas": 0});
    let out = f.reg.update(d, ns, "web", Part::Status, st, &w()).await.unwrap();
    let stored = f.reg.get(d, ns, "web").await.unwrap();
    assert_eq!(stored, out.object);
    assert_eq!(stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!(stored["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(stored["spec"]["replicas"], 1);
    assert_eq!(stored["metadata"]["generation"], 1);
    assert_eq!(stored["status"]["observedGeneration"], 1);
}

#[tokio::test]
async fn patches() {
    let f = fixture().await;
    let s = r("", "services");
    f.reg.create(s, Some("default"), svc("p"), &w()).await.unwrap();
    let m = f
        .reg
        .patch(
            s,
            Some("default"),
            "p",
            Part::Main,
            PatchType::Merge,
            &json!({"metadata": {"labels": {"x": "y"}}}),
            &w(),
        )
        .await
        .unwrap();
    assert_eq!(m.object["metadata"]["labels"]["x"], "y");
    assert_eq!(m.object["metadata"]["labels"]["app"], "p");
    let bad =
        f.reg.patch(s, Some("default"), "nope", Part::Main, PatchType::Merge, &json!({}), &w()).await.unwrap_err();
    assert_eq!(bad.code(), 404);
}

#[tokio::test]
async fn allocation_released_on_delete_and_type_change() {
    let f = fixture().await;
    let s = r("", "services");
    let mut np = svc("np");
    np["spec"]["type"] = json!("NodePort");
    np["spec"]["ports"][0]["nodePort"] = json!(30080);
    np["spec"]["clusterIP"] = json!("10.96.0.50");
    f.reg.create(s, Some("default"), np.clone(), &w()).await.unwrap();
    let mut dup = svc("np2");
    dup["spec"]["type"] = json!("NodePort");
    dup["spec"]["ports"][0]["nodePort"] = json!(30080);
    let e = f.reg.create(s, Some("default"), dup.clone(), &w()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    // Type change to ClusterIP frees the node port.
    let patched = f
        .reg
        .patch(
            s,
            Some("default"),
            "np",
            Part::Main,
            PatchType::Merge,
            &json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}),
            &w(),
        )
        .await
        .unwrap();
    assert!(patched.object["spec"]["ports"][0].get("nodePort").is_none_or(|v| v.is_null() || v == 0));
    f.reg.create(s, Some("default"), dup, &w()).await.unwrap();
    // Delete frees the ClusterIP.
    f.reg.delete(s, Some("default"), "np", &DeleteOptions::default()).await.unwrap();
    let mut again = svc("np3");
    again["spec"]["clusterIP"] = json!("10.96.0.50");
    f.reg.create(s, Some("default"), again, &w()).await.unwrap();
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let f = fixture().await;
    let cm = r("", "configmaps");
    f.reg
        .create(cm, Some("default"), json!({"metadata": {"name": "held", "finalizers": ["example.com/x"]}}), &w())
        .await
        .unwrap();
    let (obj, code) = f.reg.delete(cm, Some("default"), "held", &DeleteOptions::default()).await.unwrap();
    assert_eq!(code, 200, "kube-apiserver answers 202 only to orphanDependents=false");
    assert!(obj["metadata"]["deletionTimestamp"].is_string());
    f.reg.get(cm, Some("default"), "held").await.unwrap();
    f.reg
        .patch(
            cm,
            Some("default"),
            "held",
            Part::Main,
            PatchType::Merge,
            &json!({"metadata": {"finalizers": null}}),
            &w(),
        )
        .await
        .unwrap();
    assert_eq!(f.reg.get(cm, Some("default"), "held").await.unwrap_err().code(), 404);
}

#[tokio::test]
async fn a_pod_in_graceful_deletion_outlives_its_last_finalizer_until_the_kubelets_delete() {
    let f = fixture().await;
    let pods = r("", "pods");
    let ns = Some("default");
    let pod = json!({"metadata": {"name": "p", "finalizers": ["example.com/hold"]},
                     "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "agnhost"}]}});
    f.reg.create(pods, ns, pod, &w()).await.unwrap();
    let (deleting, _) = f.reg.delete(pods, ns, "p", &DeleteOptions::default()).await.unwrap();
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 30);
    let release = json!({"metadata": {"finalizers": null}});
    f.reg.patch(pods, ns, "p", Part::Main, PatchType::Merge, &release, &w()).await.unwrap();
    let left = f.reg.get(pods, ns, "p").await.expect("the pod waits for its grace period");
    assert!(left["metadata"].get("finalizers").is_none());
    // The kubelet's grace-0 delete then removes it.
    let now = DeleteOptions { grace_period_seconds: Some(0), ..Default::default() };
    f.reg.delete(pods, ns, "p", &now).await.unwrap();
    assert_eq!(f.reg.get(pods, ns, "p").await.unwrap_err().code(), 404);

    // The other order: the kubelet stops the containers first, the finalizer goes last.
    let pod = json!({"metadata": {"name": "q", "finalizers": ["example.com/hold"]},
                     "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "agnhost"}]}});
    f.reg.create(pods, ns, pod, &w()).await.unwrap();
    f.reg.delete(pods, ns, "q", &DeleteOptions::default()).await.unwrap();
    let (stopped, _) = f.reg.delete(pods, ns, "q", &now).await.unwrap();
    assert_eq!(stopped["metadata"]["deletionGracePeriodSeconds"], 0);
    f.reg.get(pods, ns, "q").await.expect("the finalizer holds the pod");
    let out = f.reg.patch(pods, ns, "q", Part::Main, PatchType::Merge, &release, &w()).await.unwrap();
    assert!(out.object["metadata"].get("finalizers").is_none());
    assert_eq!(f.reg.get(pods, ns, "q").await.unwrap_err().code(), 404);
}

#[tokio::test]
async fn list_paging_and_field_selectors() {
    let f = fixture().await;
    let cm = r("", "configmaps");
    for i in 0..25 {
        f.reg.create(cm, Some("default"), json!({"metadata": {"name": format!("c{i:02}")}}), &w()).await.unwrap();
    }
    let mut names = Vec::new();
    let mut opts = ListOptions { limit: Some(10), ..Default::default() };
    let mut pages = 0;
    loop {
        let l = f.reg.list(cm, Some("default"), &opts).await.unwrap();
        pages += 1;
        names.extend(l.items.iter().map(|o| o.value["metadata"]["name"].as_str().unwrap().to_string()));
        match l.continue_token {
            Some(c) => opts.continue_token = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    let one = f
        .reg
        .list(cm, None, &ListOptions { field_selector: Some("metadata.name=c07".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let e = f
        .reg
        .list(cm, None, &ListOptions { field_selector: Some("spec.nodeName=x".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "field label not supported: spec.nodeName");
}

#[tokio::test]
async fn watch_from_revision_sees_changes_in_order() {
    let f = fixture().await;
    let cm = r("", "configmaps");
    let start = f.reg.list(cm, Some("default"), &ListOptions::default()).await.unwrap().resource_version;
    let opts = ListOptions { resource_version: Some(start.to_string()), watch: true, ..Default::default() };
    let mut stream = Box::pin(f.reg.watch(cm, Some("default"), &opts).await.unwrap());
    f.reg.create(cm, Some("default"), json!({"metadata": {"name": "a"}}), &w()).await.unwrap();
    f.reg
        .patch(cm, Some("default"), "a", Part::Main, PatchType::Merge, &json!({"data": {"k": "v"}}), &w())
        .await
        .unwrap();
    f.reg.delete(cm, Some("default"), "a", &DeleteOptions::default()).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
        kinds.push(ev.kind);
    }
    assert_eq!(kinds, vec![WatchEventType::Added, WatchEventType::Modified, WatchEventType::Deleted]);
}

#[tokio::test]
async fn watch_too_old_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions { history_len: 4, ..SledOptions::default() }).unwrap();
    let reg = Arc::new(Registry::new(store, Allocator::new(AllocConfig::default())));
    let ns = r("", "namespaces");
    for i in 0..10 {
        reg.create(ns, None, json!({"metadata": {"name": format!("n{i}")}}), &w()).await.unwrap();
    }
    let opts = ListOptions { resource_version: Some("1".into()), watch: true, ..Default::default() };
    let mut stream = Box::pin(reg.watch(ns, None, &opts).await.unwrap());
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert_eq!(ev.kind, WatchEventType::Error);
    assert_eq!(ev.object.value["code"], 410);
    assert_eq!(ev.object.value["reason"], "Expired");
}

#[tokio::test]
async fn lists_from_the_watch_cache_are_consistent_reads() {
    let f = fixture().await;
    assert!(f.reg.cache.is_some());
    let cm = r("", "configmaps");
    for i in 0..50 {
        // Every list right after a write sees it (the cache waits for the store's revision).
        f.reg
            .create(
                cm,
                Some("default"),
                json!({"metadata": {"name": format!("x{i}"), "labels": {"n": i.to_string()}}}),
                &w(),
            )
            .await
            .unwrap();
        let l = f.reg.list(cm, Some("default"), &ListOptions::default()).await.unwrap();
        assert_eq!(l.items.len(), i + 1);
        assert_eq!(l.resource_version, f.reg.store.revision());
    }
    f.reg.delete(cm, Some("default"), "x7", &DeleteOptions::default()).await.unwrap();
    let l = f
        .reg
        .list(cm, None, &ListOptions { label_selector: Some("n in (6,7,8)".into()), ..Default::default() })
        .await
        .unwrap();
    let names: Vec<&str> = l.items.iter().map(|o| o.value["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["x6", "x8"]);
    // Objects carry their current resourceVersion and encode to the same JSON.
    let got = f.reg.get(cm, Some("default"), "x6").await.unwrap();
    assert_eq!(l.items[0].value, got);
    let parsed: serde_json::Value = serde_json::from_slice(l.items[0].json()).unwrap();
    assert_eq!(parsed, got);
}

#[tokio::test]
async fn bookmarks_carry_the_revision_seen() {
    let mut f = fixture().await;
    f.reg.bookmark_interval = Duration::from_millis(200);
    let cm = r("", "configmaps");
    let rv = f.reg.store.revision();
    let opts = ListOptions {
        resource_version: Some(rv.to_string()),
        watch: true,
        allow_watch_bookmarks: true,
        ..Default::default()
    };
    let mut stream = Box::pin(f.reg.watch(cm, Some("default"), &opts).await.unwrap());
    let created = f.reg.create(cm, Some("default"), json!({"metadata": {"name": "b"}}), &w()).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert_eq!(ev.kind, WatchEventType::Added);
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert_eq!(ev.kind, WatchEventType::Bookmark);
    assert_eq!(ev.object.value["kind"], "ConfigMap");
    assert_eq!(ev.object.value["metadata"]["resourceVersion"], created.object["metadata"]["resourceVersion"]);
}

#[tokio::test]
async fn delete_collection_by_label() {
    let f = fixture().await;
    let cm = r("", "configmaps");
    for (n, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        f.reg
            .create(cm, Some("default"), json!({"metadata": {"name": n, "labels": {"tier": tier}}}), &w())
            .await
            .unwrap();
    }
    let out = f
        .reg
        .delete_collection(
            cm,
            Some("default"),
            &ListOptions { label_selector: Some("tier=web".into()), ..Default::default() },
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out["items"].as_array().unwrap().len(), 2);
    let left = f.reg.list(cm, Some("default"), &ListOptions::default()).await.unwrap();
    let names: Vec<&str> = left.items.iter().map(|o| o.value["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["c"]);
}
