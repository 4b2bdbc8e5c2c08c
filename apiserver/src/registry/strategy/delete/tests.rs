//! The deletion plan: graceful deletion of pods, finalizers from delete options, objects waiting on
//! finalizers, namespaces, and when an update that removes the last finalizer deletes.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::{deletes_on_update, plan_delete, Deletion};
use crate::registry::DeleteOptions;
use crate::resources::{self, ResourceInfo};

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    match resources::find(group, "v1", plural) {
        Some(r) => r,
        None => panic!("{group}/{plural} is not served"),
    }
}

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn grace(g: i64) -> DeleteOptions {
    DeleteOptions { grace_period_seconds: Some(g), ..Default::default() }
}

fn policy(p: &str) -> DeleteOptions {
    DeleteOptions { propagation_policy: Some(p.into()), ..Default::default() }
}

fn pod(node: &str, phase: &str) -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "generation": 1},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30},
        "status": {"phase": phase},
    })
}

fn marked(d: Deletion) -> Value {
    match d {
        Deletion::Mark(v) => v,
        other => panic!("expected the object to stay, got {other:?}"),
    }
}

fn meta<'a>(v: &'a Value, k: &str) -> &'a Value {
    &v["metadata"][k]
}

#[test]
fn a_running_pod_is_deleted_gracefully_with_its_grace_period() {
    let pods = res("", "pods");
    let p = marked(plan_delete(pods, &pod("n1", "Running"), &DeleteOptions::default(), now()));
    assert_eq!(meta(&p, "deletionTimestamp"), "2024-05-01T12:00:30Z");
    assert_eq!(meta(&p, "deletionGracePeriodSeconds"), 30);
    assert_eq!(meta(&p, "generation"), 2, "the first deletion request moves the generation");
    let asked = marked(plan_delete(pods, &pod("n1", "Running"), &grace(5), now()));
    assert_eq!(meta(&asked, "deletionTimestamp"), "2024-05-01T12:00:05Z");
    assert_eq!(meta(&asked, "deletionGracePeriodSeconds"), 5);
}

#[test]
fn pods_not_on_a_node_or_finished_go_at_once() {
    let pods = res("", "pods");
    assert_eq!(plan_delete(pods, &pod("", "Pending"), &DeleteOptions::default(), now()), Deletion::Remove);
    assert_eq!(plan_delete(pods, &pod("n1", "Succeeded"), &grace(10), now()), Deletion::Remove);
    assert_eq!(plan_delete(pods, &pod("n1", "Failed"), &DeleteOptions::default(), now()), Deletion::Remove);
    assert_eq!(plan_delete(pods, &pod("n1", "Running"), &grace(0), now()), Deletion::Remove);
}

#[test]
fn a_pending_graceful_deletion_may_only_be_shortened() {
    let pods = res("", "pods");
    let deleting = marked(plan_delete(pods, &pod("n1", "Running"), &DeleteOptions::default(), now()));
    // Later, or again without a grace period: nothing changes.
    for opts in [DeleteOptions::default(), grace(30), grace(60), policy("Foreground")] {
        assert_eq!(plan_delete(pods, &deleting, &opts, now()), Deletion::Unchanged, "{opts:?}");
    }
    // Shorter: the deadline moves from the original start.
    let later = "2024-05-01T12:00:20Z".parse().unwrap_or(now());
    let short = marked(plan_delete(pods, &deleting, &grace(10), later));
    assert_eq!(meta(&short, "deletionTimestamp"), "2024-05-01T12:00:10Z");
    assert_eq!(meta(&short, "deletionGracePeriodSeconds"), 10);
    assert_eq!(meta(&short, "generation"), 2, "only the first request moves the generation");
    // The kubelet's grace-0 delete removes a pod without finalizers.
    assert_eq!(plan_delete(pods, &deleting, &grace(0), later), Deletion::Remove);
}

#[test]
fn a_pod_with_finalizers_stays_after_the_kubelets_delete_until_they_are_gone() {
    let pods = res("", "pods");
    let mut p = pod("n1", "Running");
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let deleting = marked(plan_delete(pods, &p, &DeleteOptions::default(), now()));
    assert_eq!(meta(&deleting, "deletionGracePeriodSeconds"), 30);
    // Removing the finalizer during the grace period does not delete the pod.
    let mut released = deleting.clone();
    released["metadata"].as_object_mut().map(|m| m.remove("finalizers"));
    assert!(!deletes_on_update(pods, &released, &deleting));
    // The kubelet's grace-0 delete ends the grace period; the finalizer still holds the pod.
    let stopped = marked(plan_delete(pods, &deleting, &grace(0), now()));
    assert_eq!(meta(&stopped, "deletionGracePeriodSeconds"), 0);
    assert_eq!(meta(&stopped, "deletionTimestamp"), "2024-05-01T12:00:00Z");
    // Now removing the last finalizer deletes it; keeping one does not.
    let mut released = stopped.clone();
    released["metadata"].as_object_mut().map(|m| m.remove("finalizers"));
    assert!(deletes_on_update(pods, &released, &stopped));
    assert!(!deletes_on_update(pods, &stopped, &stopped));
    // Deleting again while the finalizer holds: nothing more to do.
    assert_eq!(plan_delete(pods, &stopped, &DeleteOptions::default(), now()), Deletion::Mark(stopped.clone()));
    // A pod not being deleted is never deleted by an update.
    let p2 = pod("n1", "Running");
    assert!(!deletes_on_update(pods, &p2, &p2));
}

#[test]
fn objects_without_graceful_deletion_wait_on_finalizers_from_now() {
    let cm = res("", "configmaps");
    let plain = json!({"metadata": {"name": "c", "generation": 1}});
    assert_eq!(plan_delete(cm, &plain, &DeleteOptions::default(), now()), Deletion::Remove);
    let mut held = plain.clone();
    held["metadata"]["finalizers"] = json!(["example.com/x"]);
    let m = marked(plan_delete(cm, &held, &DeleteOptions::default(), now()));
    assert_eq!(meta(&m, "deletionTimestamp"), "2024-05-01T12:00:00Z");
    assert_eq!(meta(&m, "deletionGracePeriodSeconds"), 0);
    assert_eq!(meta(&m, "generation"), 2);
    // Again later: the deletion timestamp stays (it is not later than now), nothing changes.
    let later = "2024-05-01T12:01:00Z".parse().unwrap_or(now());
    assert_eq!(plan_delete(cm, &m, &DeleteOptions::default(), later), Deletion::Mark(m.clone()));
    let mut released = m.clone();
    released["metadata"].as_object_mut().map(|x| x.remove("finalizers"));
    assert!(deletes_on_update(cm, &released, &m));
}

#[test]
fn propagation_policies_set_the_garbage_collectors_finalizers() {
    let rs = res("apps", "replicasets");
    let obj = json!({"metadata": {"name": "r", "generation": 1, "finalizers": ["example.com/x"]}});
    let finalizers = |opts: DeleteOptions, obj: &Value| match plan_delete(rs, obj, &opts, now()) {
        Deletion::Mark(v) => v["metadata"]["finalizers"].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(finalizers(policy("Orphan"), &obj), json!(["example.com/x", "orphan"]));
    assert_eq!(finalizers(policy("Foreground"), &obj), json!(["example.com/x", "foregroundDeletion"]));
    assert_eq!(finalizers(policy("Background"), &obj), json!(["example.com/x"]));
    let orphan_false = DeleteOptions { orphan_dependents: Some(false), ..Default::default() };
    assert_eq!(finalizers(orphan_false, &obj), json!(["example.com/x"]));
    // An object not yet deleting can switch policy; without options its own finalizer decides.
    let mut fg = obj.clone();
    fg["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    assert_eq!(finalizers(policy("Orphan"), &fg), json!(["orphan"]));
    assert_eq!(finalizers(DeleteOptions::default(), &fg), json!(["foregroundDeletion"]));
    let mut bare = obj.clone();
    bare["metadata"].as_object_mut().map(|m| m.remove("finalizers"));
    assert_eq!(plan_delete(rs, &bare, &policy("Background"), now()), Deletion::Remove);
    let fore = marked(plan_delete(rs, &bare, &policy("Foreground"), now()));
    assert_eq!(meta(&fore, "deletionGracePeriodSeconds"), 0);
    // Events are never garbage collected.
    let ev = res("", "events");
    assert_eq!(plan_delete(ev, &bare, &policy("Foreground"), now()), Deletion::Remove);
}

#[test]
fn a_namespace_terminates_first_and_goes_once_finalized() {
    let ns = res("", "namespaces");
    let active =
        json!({"metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let t = marked(plan_delete(ns, &active, &DeleteOptions::default(), now()));
    assert_eq!(meta(&t, "deletionTimestamp"), "2024-05-01T12:00:00Z");
    assert!(meta(&t, "deletionGracePeriodSeconds").is_null());
    assert_eq!(t["status"]["phase"], "Terminating");
    assert_eq!(plan_delete(ns, &t, &DeleteOptions::default(), now()), Deletion::Unchanged);
    let mut finalized = t.clone();
    finalized["spec"] = json!({});
    assert!(deletes_on_update(ns, &finalized, &t));
    assert!(!deletes_on_update(ns, &t, &t), "spec.finalizers hold a namespace too");
    assert_eq!(plan_delete(ns, &finalized, &DeleteOptions::default(), now()), Deletion::Remove);
    // Even a namespace without finalizers only starts terminating on its first delete.
    let bare = json!({"metadata": {"name": "x"}, "status": {"phase": "Active"}});
    assert!(matches!(plan_delete(ns, &bare, &DeleteOptions::default(), now()), Deletion::Mark(_)));
}
