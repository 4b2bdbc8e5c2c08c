//! Per kind, what a `/status` write keeps and what it may change.

use serde_json::{json, Value};

use crate::registry::strategy::{prepare_for_update, Part};
use crate::resources::{self, ResourceInfo};

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    match resources::find(group, "v1", plural) {
        Some(r) => r,
        None => panic!("{group}/{plural} is not served"),
    }
}

/// A stored object of any kind, with every piece of metadata a status write might touch.
fn stored() -> Value {
    json!({
        "metadata": {
            "name": "x", "namespace": "default", "uid": "u-1", "generation": 3,
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "labels": {"app": "a"}, "annotations": {"note": "old"}, "finalizers": ["example.com/f"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "o-1"}],
        },
        "spec": {"replicas": 1},
        "status": {"replicas": 1},
    })
}

/// What a client sends to `/status`: everything changed.
fn request() -> Value {
    json!({
        "metadata": {
            "name": "x", "namespace": "default", "uid": "", "generation": 9,
            "creationTimestamp": "2030-01-01T00:00:00Z", "deletionTimestamp": "2030-01-01T00:00:00Z",
            "labels": {"app": "b"}, "annotations": {"note": "new"}, "finalizers": ["example.com/g"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "o-2"}],
        },
        "spec": {"replicas": 5},
        "extra": true,
        "status": {"replicas": 2},
    })
}

fn status_update(r: &ResourceInfo) -> Value {
    let mut new = request();
    prepare_for_update(r, Part::Status, &mut new, &stored());
    new
}

#[test]
fn every_status_kind_keeps_spec_and_system_metadata_and_takes_the_status() {
    for r in resources::RESOURCES.iter().filter(|r| r.has_subresource("status")) {
        let new = status_update(r);
        let old = stored();
        assert_eq!(new["spec"], old["spec"], "{}", r.plural);
        assert!(new.get("extra").is_none(), "{}: top-level fields are the stored ones", r.plural);
        assert_eq!(new["status"], json!({"replicas": 2}), "{}", r.plural);
        for k in ["uid", "generation", "creationTimestamp"] {
            assert_eq!(new["metadata"][k], old["metadata"][k], "{}: metadata.{k}", r.plural);
        }
        assert!(new["metadata"].get("deletionTimestamp").is_none(), "{}", r.plural);
        assert_eq!(new["metadata"]["annotations"], json!({"note": "new"}), "{}", r.plural);
        assert_eq!(new["metadata"]["finalizers"], json!(["example.com/g"]), "{}", r.plural);
    }
}

#[test]
fn labels_and_owner_references_follow_each_kinds_status_strategy() {
    // (kind, labels kept, ownerReferences kept), as upstream's status strategies.
    let table = [
        ("", "namespaces", false, false),
        ("", "pods", false, true),
        ("", "services", false, false),
        ("", "nodes", false, false),
        ("", "replicationcontrollers", false, false),
        ("apps", "deployments", true, false),
        ("apps", "replicasets", false, false),
        ("networking.k8s.io", "ingresses", false, false),
    ];
    let served: Vec<&str> =
        resources::RESOURCES.iter().filter(|r| r.has_subresource("status")).map(|r| r.plural).collect();
    assert_eq!(served.len(), table.len(), "a kind with /status is missing from this table: {served:?}");
    for (group, plural, labels_kept, owners_kept) in table {
        let new = status_update(res(group, plural));
        let (old, req) = (stored(), request());
        let want = |kept: bool, k: &str| if kept { old["metadata"][k].clone() } else { req["metadata"][k].clone() };
        assert_eq!(new["metadata"]["labels"], want(labels_kept, "labels"), "{plural}");
        assert_eq!(new["metadata"]["ownerReferences"], want(owners_kept, "ownerReferences"), "{plural}");
    }
}

#[test]
fn a_deployments_revision_annotation_goes_through_status_without_a_new_generation() {
    let r = res("apps", "deployments");
    let old = stored();
    let mut new = old.clone();
    new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
    new["status"]["observedGeneration"] = json!(3);
    prepare_for_update(r, Part::Status, &mut new, &old);
    assert_eq!(new["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    assert_eq!(new["metadata"]["generation"], 3);
    // The same change on the main resource is a new generation (annotations reach the ReplicaSets).
    let mut main = old.clone();
    main["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
    prepare_for_update(r, Part::Main, &mut main, &old);
    assert_eq!(main["metadata"]["generation"], 4);
}

#[test]
fn a_deleting_objects_status_write_keeps_its_deletion() {
    let r = res("", "pods");
    let mut old = stored();
    old["metadata"]["deletionTimestamp"] = json!("2024-05-01T12:00:30Z");
    old["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let mut new = request();
    new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    prepare_for_update(r, Part::Status, &mut new, &old);
    assert_eq!(new["metadata"]["deletionTimestamp"], "2024-05-01T12:00:30Z");
    assert_eq!(new["metadata"]["deletionGracePeriodSeconds"], 30);
}

#[test]
fn pod_status_keeps_qos_class_and_observed_generations_it_leaves_out() {
    let r = res("", "pods");
    let mut old = stored();
    old["status"] = json!({
        "qosClass": "BestEffort", "observedGeneration": 3,
        "conditions": [
            {"type": "Ready", "status": "False", "observedGeneration": 2},
            {"type": "Ready", "status": "False", "observedGeneration": 3},
            {"type": "PodScheduled", "status": "True", "observedGeneration": 1},
        ],
    });
    let mut new = old.clone();
    new["status"] = json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "Ready", "status": "True", "observedGeneration": 7},
            {"type": "Initialized", "status": "True"},
        ],
    });
    prepare_for_update(r, Part::Status, &mut new, &old);
    assert_eq!(new["status"]["qosClass"], "BestEffort");
    assert_eq!(new["status"]["observedGeneration"], 3);
    let gens: Vec<Value> = (0..4).map(|i| new["status"]["conditions"][i]["observedGeneration"].clone()).collect();
    assert_eq!(gens, [json!(1), json!(2), json!(7), Value::Null]);
    // A client that does send them wins.
    let mut set = old.clone();
    set["status"] = json!({"qosClass": "Burstable", "observedGeneration": 4});
    prepare_for_update(r, Part::Status, &mut set, &old);
    assert_eq!(set["status"]["qosClass"], "Burstable");
    assert_eq!(set["status"]["observedGeneration"], 4);
}

#[test]
fn node_status_config_is_only_kept_where_in_use() {
    let r = res("", "nodes");
    let old = json!({"metadata": {"name": "n"}, "spec": {}, "status": {}});
    let mut new = json!({"metadata": {"name": "n"}, "status": {"config": {"active": {}}, "phase": "Running"}});
    prepare_for_update(r, Part::Status, &mut new, &old);
    assert_eq!(new["status"], json!({"phase": "Running"}));
    let used = json!({"metadata": {"name": "n"}, "status": {"config": {"active": {}}}});
    let mut again = json!({"metadata": {"name": "n"}, "status": {"config": {"assigned": {}}}});
    prepare_for_update(r, Part::Status, &mut again, &used);
    assert_eq!(again["status"]["config"], json!({"assigned": {}}));
}

#[test]
fn namespace_finalize_changes_spec_and_metadata_but_not_status() {
    let r = res("", "namespaces");
    let old = json!({
        "metadata": {"name": "dev", "uid": "u", "generation": 1, "deletionTimestamp": "2024-05-01T12:00:00Z", "labels": {"a": "1"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating"},
    });
    let mut new = json!({"metadata": {"name": "dev", "labels": {"a": "2"}}, "spec": {}, "status": {"phase": "Active"}});
    prepare_for_update(r, Part::Finalize, &mut new, &old);
    assert_eq!(new["spec"], json!({}));
    assert_eq!(new["status"], old["status"]);
    assert_eq!(new["metadata"]["labels"], json!({"a": "2"}));
    assert_eq!(new["metadata"]["deletionTimestamp"], old["metadata"]["deletionTimestamp"]);
    assert_eq!(new["metadata"]["generation"], 1, "only main updates move the generation");
}
