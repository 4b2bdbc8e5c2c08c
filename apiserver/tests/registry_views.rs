//! The registry's events.k8s.io/v1 view of core/v1 Events (one stored object, two APIs),
//! and the writes controllers rely on: pod binding, delete preconditions, generateName
//! conflicts and Lease optimistic concurrency.

use std::time::Duration;

use futures::StreamExt;
use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::bootstrap::Bootstrap;
use knet_apiserver::error::ApiError;
use knet_apiserver::registry::strategy::Part;
use knet_apiserver::registry::{
    DeleteOptions, ListOptions, PatchType, Registry, WatchEvent, WatchEventType, WriteOptions,
};
use knet_apiserver::resources::{self, ResourceInfo};
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use serde_json::{json, Value};

struct Fixture {
    reg: Registry,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open store");
    let alloc = Allocator::new(AllocConfig::default());
    let reg = Registry::with_watch_cache(store, alloc).await.expect("watch cache");
    Bootstrap {
        advertise_address: "127.0.0.1".parse().expect("ip"),
        secure_port: 6443,
        service_ip: "10.96.0.1".parse().expect("ip"),
    }
    .run(&reg)
    .await
    .expect("bootstrap");
    Fixture { reg, _dir: dir }
}

fn r(group: &str, plural: &str) -> &'static ResourceInfo {
    resources::find(group, "v1", plural).expect("resource")
}

fn w() -> WriteOptions {
    WriteOptions::default()
}

fn core_events() -> &'static ResourceInfo {
    r("", "events")
}

fn v1_events() -> &'static ResourceInfo {
    r("events.k8s.io", "events")
}

/// What kube-rs' `Recorder` posts.
fn recorded(name: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default", "apiVersion": "v1", "uid": "u-1"},
        "eventTime": "2025-01-02T03:04:05.123456Z",
        "reason": "Scheduled", "action": "Binding", "type": "Normal", "note": "assigned default/web to n1",
        "reportingController": "knet-scheduler", "reportingInstance": "knet-scheduler-cp"
    })
}

fn field_selector(s: &str) -> ListOptions {
    ListOptions { field_selector: Some(s.into()), ..Default::default() }
}

#[tokio::test]
async fn an_event_created_through_events_v1_is_a_core_event_and_back() {
    let f = fixture().await;
    let created = f.reg.create(v1_events(), Some("default"), recorded("web.1"), &w()).await.expect("create");
    assert_eq!(created.object["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created.object["note"], "assigned default/web to n1");
    let core = f.reg.get(core_events(), Some("default"), "web.1").await.expect("core get");
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["message"], "assigned default/web to n1");
    assert_eq!(core["reportingComponent"], "knet-scheduler");
    assert!(core.get("note").is_none() && core.get("regarding").is_none(), "{core}");
    assert_eq!(core["metadata"]["resourceVersion"], created.object["metadata"]["resourceVersion"]);

    // The series merge patch the Recorder sends the second time.
    let mut again = recorded("web.1");
    again["series"] = json!({"count": 2, "lastObservedTime": "2025-01-02T03:05:05.000000Z"});
    let patched = f
        .reg
        .patch(v1_events(), Some("default"), "web.1", Part::Main, PatchType::Merge, &again, &w())
        .await
        .expect("series patch");
    assert_eq!(patched.object["series"]["count"], 2);
    let core = f.reg.get(core_events(), Some("default"), "web.1").await.expect("core get");
    assert_eq!(core["series"]["count"], 2);

    // A core/v1 event reads through events.k8s.io/v1 too.
    let legacy = json!({"metadata": {"name": "old.1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Killing", "message": "Stopping container", "type": "Normal", "count": 3,
        "source": {"component": "kubelet", "host": "n1"}});
    f.reg.create(core_events(), Some("default"), legacy, &w()).await.expect("core create");
    let v1 = f.reg.get(v1_events(), Some("default"), "old.1").await.expect("v1 get");
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "web");
    assert_eq!(v1["note"], "Stopping container");
    assert_eq!(v1["deprecatedCount"], 3);
    assert_eq!(v1["deprecatedSource"]["component"], "kubelet");

    // Lists of either API, with each API's field labels.
    let by_core = f.reg.list(core_events(), Some("default"), &field_selector("involvedObject.name=web")).await.unwrap();
    assert_eq!(by_core.items.len(), 2);
    assert!(by_core.items.iter().all(|o| o.value["apiVersion"] == "v1"));
    let by_v1 = f
        .reg
        .list(v1_events(), None, &field_selector("regarding.name=web,reportingController=knet-scheduler"))
        .await
        .unwrap();
    let names: Vec<&str> = by_v1.items.iter().filter_map(|o| o.value.pointer("/metadata/name")?.as_str()).collect();
    assert_eq!(names, ["web.1"]);
    assert!(by_v1.items.iter().all(|o| o.value["apiVersion"] == "events.k8s.io/v1"));
    let by_source = f.reg.list(core_events(), None, &field_selector("source=knet-scheduler")).await.unwrap();
    assert_eq!(by_source.items.len(), 1, "source falls back to the reporting component");
    let bad = f.reg.list(v1_events(), None, &field_selector("involvedObject.name=web")).await.unwrap_err();
    assert_eq!(bad.to_string(), "field label not supported: involvedObject.name");

    // A delete through one API is gone from the other.
    let (gone, _) = f.reg.delete(v1_events(), Some("default"), "old.1", &DeleteOptions::default()).await.unwrap();
    assert_eq!(gone["apiVersion"], "events.k8s.io/v1");
    let e = f.reg.get(core_events(), Some("default"), "old.1").await.unwrap_err();
    assert_eq!(e.to_string(), "events \"old.1\" not found");
    let e = f.reg.get(v1_events(), Some("default"), "old.1").await.unwrap_err();
    assert_eq!(e.to_string(), "events.events.k8s.io \"old.1\" not found");
}

#[tokio::test]
async fn events_v1_writes_are_validated_strictly_with_core_field_names() {
    let f = fixture().await;
    let mut bad = recorded("bad.1");
    let m = bad.as_object_mut().expect("object");
    m.remove("eventTime");
    m.insert("deprecatedCount".into(), json!(2));
    let e = f.reg.create(v1_events(), Some("default"), bad, &w()).await.unwrap_err();
    assert!(matches!(e, ApiError::Invalid { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Event \"bad.1\" is invalid: [eventTime: Required value, count: Invalid value: \"\": needs to be unset]"
    );
    // The same object is fine through core/v1.
    let mut core = json!({"metadata": {"name": "ok.1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Started", "count": 2});
    f.reg.create(core_events(), Some("default"), core.clone(), &w()).await.expect("core create");
    // Updates through events.k8s.io may not change the note.
    f.reg.create(v1_events(), Some("default"), recorded("web.2"), &w()).await.expect("create");
    let e = f
        .reg
        .patch(v1_events(), Some("default"), "web.2", Part::Main, PatchType::Merge, &json!({"note": "other"}), &w())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Event \"web.2\" is invalid: message: Invalid value: \"other\": field is immutable");
    core["message"] = json!("changed");
    core["metadata"]["namespace"] = json!("default");
    f.reg.update(core_events(), Some("default"), "ok.1", Part::Main, core, &w()).await.expect("core update may");
}

#[tokio::test]
async fn a_watch_on_either_api_sees_writes_through_the_other() {
    let f = fixture().await;
    let rv = f.reg.store.revision().to_string();
    let from = ListOptions { resource_version: Some(rv), ..Default::default() };
    let mut core_watch = Box::pin(f.reg.watch(core_events(), Some("default"), &from).await.expect("watch"));
    let mut v1_watch = Box::pin(f.reg.watch(v1_events(), None, &from).await.expect("watch"));
    async fn next<S: futures::Stream<Item = WatchEvent> + Unpin>(s: &mut S) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(5), s.next()).await.ok().flatten().expect("an event")
    }
    f.reg.create(v1_events(), Some("default"), recorded("web.1"), &w()).await.expect("create v1");
    let legacy = json!({"metadata": {"name": "old.1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Killing", "message": "Stopping"});
    f.reg.create(core_events(), Some("default"), legacy, &w()).await.expect("create core");
    for (name, note_field) in [("web.1", "message"), ("old.1", "message")] {
        let ev = next(&mut core_watch).await;
        assert_eq!(ev.kind, WatchEventType::Added);
        assert_eq!(ev.object.value["metadata"]["name"], name);
        assert_eq!(ev.object.value["apiVersion"], "v1");
        assert!(ev.object.value.get(note_field).is_some());
    }
    for name in ["web.1", "old.1"] {
        let ev = next(&mut v1_watch).await;
        assert_eq!(ev.kind, WatchEventType::Added);
        assert_eq!(ev.object.value["metadata"]["name"], name);
        assert_eq!(ev.object.value["apiVersion"], "events.k8s.io/v1");
        assert!(ev.object.value.get("note").is_some() && ev.object.value.get("message").is_none());
    }
}

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[tokio::test]
async fn binding_assigns_a_pod_once_in_one_write() {
    let f = fixture().await;
    let pods = r("", "pods");
    let created = f.reg.create(pods, Some("default"), pod("web"), &w()).await.expect("pod");
    let uid = created.object["metadata"]["uid"].as_str().expect("uid").to_string();
    let rev_before = f.reg.store.revision();
    let b = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web", "uid": uid, "annotations": {"a": "b"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    let status = f.reg.bind(pods, Some("default"), "web", &b, &w()).await.expect("bind");
    assert_eq!(status["status"], "Success");
    assert_eq!(f.reg.store.revision(), rev_before + 1, "one write");
    let bound = f.reg.get(pods, Some("default"), "web").await.expect("get");
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["metadata"]["annotations"]["a"], "b");
    let conds = bound["status"]["conditions"].as_array().expect("conditions");
    assert!(conds.iter().any(|c| c["type"] == "PodScheduled" && c["status"] == "True"), "{conds:?}");

    let mut again = b.clone();
    again["target"]["name"] = json!("n2");
    let e = f.reg.bind(pods, Some("default"), "web", &again, &w()).await.unwrap_err();
    assert_eq!(e.code(), 409);
    assert_eq!(
        e.to_string(),
        "Operation cannot be fulfilled on pods/binding \"web\": pod web is already assigned to node \"n1\""
    );

    let other = f.reg.create(pods, Some("default"), pod("other"), &w()).await.expect("pod");
    let other_uid = other.object["metadata"]["uid"].as_str().expect("uid");
    let wrong_uid = json!({"metadata": {"name": "other", "uid": "nope"}, "target": {"name": "n1"}});
    let e = f.reg.bind(pods, Some("default"), "other", &wrong_uid, &w()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Operation cannot be fulfilled on pods/binding \"other\": Precondition failed: UID in precondition: nope, UID in object meta: {other_uid}"
        )
    );
    let wrong_name = json!({"metadata": {"name": "x"}, "target": {"name": "n1"}});
    let e = f.reg.bind(pods, Some("default"), "other", &wrong_name, &w()).await.unwrap_err();
    assert_eq!(e.to_string(), "name in URL does not match name in Binding object");
    let no_target = json!({"metadata": {"name": "other"}, "target": {"kind": "Pod"}});
    let e = f.reg.bind(pods, Some("default"), "other", &no_target, &w()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Binding \"other\" is invalid: [target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\", target.name: Required value]"
    );
}

#[tokio::test]
async fn delete_with_a_stale_uid_precondition_is_a_conflict() {
    let f = fixture().await;
    let pods = r("", "pods");
    let created = f.reg.create(pods, Some("default"), pod("web"), &w()).await.expect("pod");
    let uid = created.object["metadata"]["uid"].as_str().expect("uid").to_string();
    let stale = DeleteOptions { precondition_uid: Some("stale".into()), ..Default::default() };
    let e = f.reg.delete(pods, Some("default"), "web", &stale).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Operation cannot be fulfilled on pods \"web\": Precondition failed: UID in precondition: stale, UID in object meta: {uid}"
        )
    );
    let right = DeleteOptions {
        precondition_uid: Some(uid),
        propagation_policy: Some("Background".into()),
        ..Default::default()
    };
    f.reg.delete(pods, Some("default"), "web", &right).await.expect("delete");
}

#[tokio::test]
async fn generate_name_conflicts_name_the_last_try() {
    let e = ApiError::generate_name_conflict(r("", "pods"), "web-abcde");
    assert_eq!(e.code(), 409);
    assert_eq!(e.reason(), "AlreadyExists");
    assert_eq!(
        e.to_string(),
        "pods \"web-abcde\" already exists, the server was not able to generate a unique name for the object"
    );
    assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 1);
    let f = fixture().await;
    let rs =
        json!({"metadata": {"generateName": "web-7d4b9c-"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let made = f.reg.create(r("", "pods"), Some("default"), rs, &w()).await.expect("create");
    let name = made.object["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("web-7d4b9c-") && name.len() == "web-7d4b9c-".len() + 5, "{name}");
}

#[tokio::test]
async fn lease_updates_at_a_stale_resource_version_conflict() {
    let f = fixture().await;
    let leases = r("coordination.k8s.io", "leases");
    let lease = json!({"metadata": {"name": "knet-controllers", "namespace": "kube-system"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2025-01-02T03:04:05.000000Z"}});
    let created = f.reg.create(leases, Some("kube-system"), lease, &w()).await.expect("create");
    let mut mine = created.object.clone();
    mine["spec"]["holderIdentity"] = json!("b");
    f.reg.update(leases, Some("kube-system"), "knet-controllers", Part::Main, mine.clone(), &w()).await.expect("take");
    mine["spec"]["holderIdentity"] = json!("c");
    let e = f.reg.update(leases, Some("kube-system"), "knet-controllers", Part::Main, mine, &w()).await.unwrap_err();
    assert_eq!(e.code(), 409);
    assert_eq!(
        e.to_string(),
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"knet-controllers\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let node_lease = json!({"metadata": {"name": "worker-1", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "worker-1"}});
    f.reg.create(leases, Some("kube-node-lease"), node_lease, &w()).await.expect("node lease");
}

#[tokio::test]
async fn status_writes_keep_the_spec_of_every_kind_controllers_update() {
    let f = fixture().await;
    let template =
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let cases = [
        (
            r("", "pods"),
            pod("p"),
            json!({"nodeName": "elsewhere"}),
            json!({"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}),
        ),
        (
            r("", "services"),
            json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            json!({"type": "ClusterIP"}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.240", "ipMode": "VIP"}]}}),
        ),
        (
            r("", "nodes"),
            json!({"metadata": {"name": "n1"}}),
            json!({"unschedulable": true}),
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        ),
        (
            r("", "replicationcontrollers"),
            json!({"metadata": {"name": "rc"}, "spec": {"replicas": 1, "selector": {"app": "web"}, "template": template}}),
            json!({"replicas": 5}),
            json!({"replicas": 1, "readyReplicas": 1}),
        ),
        (
            r("apps", "replicasets"),
            json!({"metadata": {"name": "rs"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            json!({"replicas": 5}),
            json!({"replicas": 1, "readyReplicas": 1}),
        ),
        (
            r("apps", "deployments"),
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            json!({"replicas": 5}),
            json!({"replicas": 1, "updatedReplicas": 1, "observedGeneration": 1}),
        ),
    ];
    for (res, obj, spec_change, status) in cases {
        let ns = res.namespaced.then_some("default");
        let created = f.reg.create(res, ns, obj, &w()).await.unwrap_or_else(|e| panic!("{}: {e}", res.plural));
        let name = created.object["metadata"]["name"].as_str().expect("name").to_string();
        let mut body = created.object.clone();
        for (k, v) in spec_change.as_object().expect("object") {
            body["spec"][k] = v.clone();
        }
        if !body["status"].is_object() {
            body["status"] = json!({});
        }
        for (k, v) in status.as_object().expect("object") {
            body["status"][k] = v.clone();
        }
        let written = f
            .reg
            .update(res, ns, &name, Part::Status, body, &w())
            .await
            .unwrap_or_else(|e| panic!("{} status: {e}", res.plural));
        assert_eq!(written.object["spec"], created.object["spec"], "{}: /status changed the spec", res.plural);
        assert_eq!(written.object["metadata"]["generation"], created.object["metadata"]["generation"]);
        for (k, v) in status.as_object().expect("object") {
            assert_eq!(&written.object["status"][k], v, "{}: status.{k} not written", res.plural);
        }
    }
}
