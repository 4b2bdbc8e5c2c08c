//! Tests of the EndpointSlice plan: golden slices, minimal writes, packing, placeholders, and a property
//! test that applying a plan converges (the next plan is empty) with every endpoint in exactly one slice.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::{plan, Input, Plan};
use crate::endpointslice::util::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};

const MGR: &str = "endpointslice-controller.k8s.io";

fn svc(extra: serde_json::Value) -> Service {
    let mut v = json!({"metadata": {"name": "web", "namespace": "d", "uid": "svc-uid", "labels": {"app": "web"}},
        "spec": {"clusterIP": "10.96.0.5", "ipFamilies": ["IPv4"], "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(v).expect("service")
}

fn pod(i: u32, ready: bool) -> Arc<Pod> {
    pod_on(i, ready, "node-a", 8080)
}

fn pod_on(i: u32, ready: bool, node: &str, port: i32) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("p{i:03}"), "namespace": "d", "uid": format!("uid-{i}"), "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": format!("10.1.{}.{}", i / 200, i % 200 + 1)}],
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .expect("pod"),
    )
}

fn nodes(name: &str) -> Option<Arc<Node>> {
    (name == "node-a" || name == "node-b").then(|| {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "z1"}}}),
            )
            .expect("node"),
        )
    })
}

fn run(s: &Service, pods: &[Arc<Pod>], existing: &[Arc<EndpointSlice>], max: usize) -> Plan {
    plan(&Input { service: s, pods, existing, max_endpoints: max, managed_by: MGR, node: &nodes, trigger_time: None })
}

/// What the API server would hold after the plan's writes.
fn apply(existing: &[Arc<EndpointSlice>], p: &Plan, counter: &mut u32) -> Vec<Arc<EndpointSlice>> {
    p.writes.applied_to(existing, counter)
}

fn writes(p: &Plan) -> (usize, usize, usize) {
    p.writes.counts()
}

fn slice_of<'a>(slices: &'a [Arc<EndpointSlice>], pod: &str) -> Option<&'a Arc<EndpointSlice>> {
    slices
        .iter()
        .find(|s| s.endpoints.iter().any(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)))
}

#[test]
fn golden_first_slice() {
    let s = svc(json!({}));
    let p = run(&s, &[pod(1, true), pod(2, false)], &[], 100);
    assert_eq!(writes(&p), (1, 0, 0));
    assert_eq!(
        serde_json::to_value(&p.writes.create[0]).expect("json"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.1.0.2"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "nodeName": "node-a", "targetRef": {"kind": "Pod", "name": "p001", "namespace": "d", "uid": "uid-1"}, "zone": "z1"},
                {"addresses": ["10.1.0.3"], "conditions": {"ready": false, "serving": false, "terminating": false},
                 "nodeName": "node-a", "targetRef": {"kind": "Pod", "name": "p002", "namespace": "d", "uid": "uid-2"}, "zone": "z1"}
            ],
            "metadata": {"generateName": "web-", "namespace": "d",
                "labels": {"app": "web", LABEL_MANAGED_BY: MGR, LABEL_SERVICE_NAME: "web"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
                    "controller": true, "blockOwnerDeletion": true}]},
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        })
    );
}

#[test]
fn nothing_changed_means_no_writes() {
    let s = svc(json!({}));
    let pods: Vec<_> = (0..150).map(|i| pod(i, true)).collect();
    let mut n = 0;
    let p = run(&s, &pods, &[], 100);
    assert_eq!(writes(&p), (2, 0, 0), "150 endpoints: two slices");
    let stored = apply(&[], &p, &mut n);
    let sizes: Vec<usize> = stored.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 50]);
    assert!(run(&s, &pods, &stored, 100).writes.is_empty());
}

#[test]
fn a_pod_change_rewrites_only_its_slice() {
    let s = svc(json!({}));
    let pods: Vec<_> = (0..150).map(|i| pod(i, true)).collect();
    let mut n = 0;
    let stored = apply(&[], &run(&s, &pods, &[], 100), &mut n);
    for victim in [3usize, 120] {
        let mut pods = pods.clone();
        pods[victim] = pod(u32::try_from(victim).expect("small"), false);
        let p = run(&s, &pods, &stored, 100);
        assert_eq!(writes(&p), (0, 1, 0), "readiness of pod {victim}");
        let name = format!("p{victim:03}");
        assert_eq!(p.writes.update[0].metadata.name, slice_of(&stored, &name).and_then(|s| s.metadata.name.clone()));
        let ep = p.writes.update[0]
            .endpoints
            .iter()
            .find(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(&name));
        assert_eq!(ep.and_then(|e| e.conditions.as_ref()).and_then(|c| c.ready), Some(false));
        assert_eq!(
            p.writes.update[0].metadata.resource_version,
            slice_of(&stored, &name).and_then(|s| s.metadata.resource_version.clone())
        );
    }
    // A pod that goes: only its slice; a new pod fills the slice being rewritten.
    let mut fewer = pods.clone();
    fewer.remove(3);
    fewer.push(pod(500, true));
    let p = run(&s, &fewer, &stored, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    assert_eq!(p.writes.update[0].endpoints.len(), 100);
    // A new pod alone goes into the unchanged slice that has room.
    let mut more = pods.clone();
    more.push(pod(501, true));
    let p = run(&s, &more, &stored, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    assert_eq!(p.writes.update[0].endpoints.len(), 51);
}

#[test]
fn no_pods_leave_one_placeholder() {
    let s = svc(json!({}));
    let mut n = 0;
    let p = run(&s, &[], &[], 100);
    assert_eq!(writes(&p), (1, 0, 0));
    assert!(p.writes.create[0].endpoints.is_empty());
    assert_eq!(p.writes.create[0].ports.as_deref().map(<[_]>::len), Some(0));
    let stored = apply(&[], &p, &mut n);
    assert!(run(&s, &[], &stored, 100).writes.is_empty(), "the placeholder is kept as is");
    // Pods come: the placeholder is replaced (recycled: an update, not a delete and a create).
    let pods: Vec<_> = (0..3).map(|i| pod(i, true)).collect();
    let p = run(&s, &pods, &stored, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    let stored = apply(&stored, &p, &mut n);
    assert_eq!(stored.len(), 1);
    // They all go: one slice emptied into the placeholder, the other deleted.
    let big: Vec<_> = (0..150).map(|i| pod(i, true)).collect();
    let stored = apply(&stored, &run(&s, &big, &stored, 100), &mut n);
    assert_eq!(stored.len(), 2);
    let p = run(&s, &[], &stored, 100);
    assert_eq!(writes(&p), (0, 1, 1));
    let stored = apply(&stored, &p, &mut n);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].endpoints.is_empty());
}

#[test]
fn named_ports_that_differ_make_separate_slices() {
    let s = svc(json!({}));
    let pods = vec![pod_on(1, true, "node-a", 8080), pod_on(2, true, "node-b", 9090)];
    let p = run(&s, &pods, &[], 100);
    assert_eq!(writes(&p), (2, 0, 0));
    let ports: BTreeSet<i32> =
        p.writes.create.iter().flat_map(|c| c.ports.iter().flatten().filter_map(|p| p.port)).collect();
    assert_eq!(ports, [8080, 9090].into());
}

#[test]
fn pods_on_unknown_nodes_wait_unless_published() {
    let s = svc(json!({}));
    let pods = vec![pod(1, true), pod_on(2, true, "node-x", 8080)];
    let p = run(&s, &pods, &[], 100);
    assert_eq!(p.pods_without_node, ["p002"]);
    assert_eq!(p.writes.create[0].endpoints.len(), 1);
    let s = svc(json!({"publishNotReadyAddresses": true}));
    let p = run(&s, &pods, &[], 100);
    assert!(p.pods_without_node.is_empty());
    assert_eq!(p.writes.create[0].endpoints.len(), 2);
}

#[test]
fn foreign_and_wrong_family_slices_go_labels_follow() {
    let s = svc(json!({}));
    let pods = vec![pod(1, true)];
    let mut n = 0;
    let stored = apply(&[], &run(&s, &pods, &[], 100), &mut n);
    // A slice of an older Service of the same name (other uid) and an IPv6 one.
    let mut foreign = (*stored[0]).clone();
    foreign.metadata.name = Some("web-old".into());
    if let Some(o) = foreign.metadata.owner_references.as_mut() {
        o[0].uid = "old-uid".into();
    }
    let mut v6 = (*stored[0]).clone();
    v6.metadata.name = Some("web-v6".into());
    v6.address_type = "IPv6".into();
    let mut all = stored.clone();
    all.push(Arc::new(foreign));
    all.push(Arc::new(v6));
    let p = run(&s, &pods, &all, 100);
    let deleted: BTreeSet<_> = p.writes.delete.iter().filter_map(|d| d.metadata.name.clone()).collect();
    assert_eq!(deleted, ["web-old".to_string(), "web-v6".to_string()].into());
    assert!(p.writes.create.is_empty() && p.writes.update.is_empty());
    // The Service's labels change: slices follow, reserved labels stay.
    let mut relabelled = s.clone();
    relabelled.metadata.labels = Some([("app".to_string(), "web2".to_string())].into());
    let p = run(&relabelled, &pods, &stored, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    let labels = p.writes.update[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web2"));
    assert_eq!(labels.get(LABEL_SERVICE_NAME).map(String::as_str), Some("web"));
}

#[test]
fn trigger_time_is_annotated_and_cleared() {
    let s = svc(json!({}));
    let t = jiff::Timestamp::UNIX_EPOCH;
    let p = plan(&Input {
        service: &s,
        pods: &[pod(1, true)],
        existing: &[],
        max_endpoints: 100,
        managed_by: MGR,
        node: &nodes,
        trigger_time: Some(t),
    });
    let a = p.writes.create[0].metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        a.get("endpoints.kubernetes.io/last-change-trigger-time").map(String::as_str),
        Some("1970-01-01T00:00:00Z")
    );
    let mut n = 0;
    let stored = apply(&[], &p, &mut n);
    let p = run(&s, &[pod(1, false)], &stored, 100);
    assert_eq!(p.writes.update[0].metadata.annotations, None);
}

proptest::proptest! {
    #[test]
    fn plans_converge_and_pack(
        steps in proptest::collection::vec(proptest::collection::btree_map(0u32..300, proptest::bool::ANY, 0..260), 1..5),
        max in 1usize..120,
    ) {
        let s = svc(json!({}));
        let mut stored: Vec<Arc<EndpointSlice>> = Vec::new();
        let mut n = 0;
        for step in steps {
            let pods: Vec<_> = step.iter().map(|(i, r)| pod(*i, *r)).collect();
            let p = run(&s, &pods, &stored, max);
            stored = apply(&stored, &p, &mut n);
            proptest::prop_assert!(run(&s, &pods, &stored, max).writes.is_empty(), "a second plan writes nothing");
            proptest::prop_assert!(stored.iter().all(|sl| sl.endpoints.len() <= max));
            let mut names: Vec<String> = stored.iter().flat_map(|sl| sl.endpoints.iter()
                .filter_map(|e| e.target_ref.as_ref().and_then(|r| r.name.clone()))).collect();
            let total = names.len();
            names.sort();
            names.dedup();
            proptest::prop_assert_eq!(total, names.len(), "every endpoint in one slice");
            proptest::prop_assert_eq!(total, pods.len());
            proptest::prop_assert!(!stored.is_empty());
            proptest::prop_assert!(stored.len() <= pods.len().max(1), "no empty slice but the placeholder");
        }
    }
}
