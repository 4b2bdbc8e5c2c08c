//! The selectors and patches used the way the API server uses them: on k8s-openapi objects
//! turned into JSON and back, with the patches kubectl sends.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use knet_apimachinery::fields::FieldSelector;
use knet_apimachinery::labels;
use knet_apimachinery::patch::{json_patch, merge_patch, patch_schema, strategic_merge_patch};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const DEPLOYMENT: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "my-nginx", "namespace": "default", "labels": {"run": "my-nginx", "tier": "web"}},
  "spec": {
    "replicas": 2,
    "selector": {"matchLabels": {"run": "my-nginx"}},
    "template": {
      "metadata": {"labels": {"run": "my-nginx"}},
      "spec": {"containers": [{
        "name": "nginx", "image": "nginx",
        "ports": [{"containerPort": 80}],
        "env": [{"name": "A", "value": "1"}]
      }]}
    }
  }
}"#;

fn apply<T: serde::de::DeserializeOwned + serde::Serialize>(obj: &T, patch: Value, kind: (&str, &str)) -> Result<T> {
    let schema = patch_schema(kind.0, kind.1).ok_or_else(|| format!("no schema for {kind:?}"))?;
    let patched = strategic_merge_patch(&serde_json::to_value(obj)?, &patch, schema)?;
    Ok(serde_json::from_value(patched)?)
}

#[test]
fn kubectl_apply_on_a_typed_deployment() -> Result<()> {
    let d: Deployment = serde_json::from_str(DEPLOYMENT)?;
    // `kubectl apply` after adding env B, a port and a sidecar, and dropping the tier label.
    let patch = json!({
        "metadata": {"labels": {"tier": null}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                    "env": [{"name": "B", "value": "2"}],
                    "name": "nginx",
                    "ports": [{"containerPort": 443}]
                },
                {"name": "sidecar", "image": "busybox"}
            ]
        }}}
    });
    let d = apply(&d, patch, ("apps/v1", "Deployment"))?;
    let labels = d.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels, BTreeMap::from([("run".to_string(), "my-nginx".to_string())]));
    let containers = &d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod spec").containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["nginx", "sidecar"]);
    let env: Vec<(&str, Option<&str>)> =
        containers[0].env.iter().flatten().map(|e| (e.name.as_str(), e.value.as_deref())).collect();
    assert_eq!(env, [("A", Some("1")), ("B", Some("2"))]);
    let ports: Vec<i32> = containers[0].ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [80, 443]);

    // `kubectl scale` patches the scale subresource; a merge patch of the spec does the same.
    let scaled: Deployment =
        serde_json::from_value(merge_patch(&serde_json::to_value(&d)?, &json!({"spec": {"replicas": 5}})))?;
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(5));
    Ok(())
}

#[test]
fn kubectl_patch_on_a_typed_service() -> Result<()> {
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090}
        ]}
    }))?;
    // `kubectl patch svc web -p '{"spec":{"ports":[{"port":80,"targetPort":9376}]}}'`
    let svc = apply(&svc, json!({"spec": {"ports": [{"port": 80, "targetPort": 9376}]}}), ("v1", "Service"))?;
    let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    assert_eq!(ports.len(), 2);
    assert_eq!(serde_json::to_value(&ports[0].target_port)?, json!(9376));
    assert_eq!(ports[1].name.as_deref(), Some("metrics"));

    // The same change as a JSON patch.
    let doc = serde_json::to_value(&svc)?;
    let out = json_patch(&doc, &json!([{"op": "replace", "path": "/spec/ports/1/port", "value": 9091}]))?;
    let svc: Service = serde_json::from_value(out)?;
    assert_eq!(svc.spec.and_then(|s| s.ports).unwrap_or_default()[1].port, 9091);

    // The Service's selector selects pods by their labels.
    let sel = labels::Selector::from_set(&BTreeMap::from([("app".to_string(), "web".to_string())]));
    assert!(sel.matches(&BTreeMap::from([("app".to_string(), "web".to_string())])));
    Ok(())
}

#[test]
fn network_policy_selectors() -> Result<()> {
    let np: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                {"key": "role", "operator": "In", "values": ["frontend", "api"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]}}]}]
        }
    }))?;
    let spec = np.spec.expect("spec");
    let target = labels::from_label_selector(&spec.pod_selector.unwrap_or_default())?;
    assert_eq!(target.to_string(), "app=db");
    let peer = spec.ingress.unwrap_or_default()[0].from.clone().unwrap_or_default()[0].pod_selector.clone();
    let peer = labels::from_label_selector(peer.as_ref().expect("peer selector"))?;
    let pod = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert!(peer.matches(&pod(&[("role", "api")])));
    assert!(!peer.matches(&pod(&[("role", "api"), ("canary", "true")])));
    assert!(!peer.matches(&pod(&[("role", "db")])));
    // What kubectl sends for the same selector has the same canonical form.
    assert_eq!(labels::parse("role in (frontend,api),!canary")?.to_string(), peer.to_string());
    assert_eq!(peer.to_string(), "!canary,role in (api,frontend)");
    Ok(())
}

#[test]
fn field_selectors_on_typed_pods() -> Result<()> {
    let pods: Vec<Pod> = serde_json::from_value(json!([
        {"metadata": {"name": "a", "namespace": "default"}, "spec": {"nodeName": "worker-1", "containers": []}, "status": {"phase": "Running"}},
        {"metadata": {"name": "b", "namespace": "default"}, "spec": {"containers": []}, "status": {"phase": "Pending"}},
        {"metadata": {"name": "c", "namespace": "kube-system"}, "spec": {"nodeName": "worker-1", "containers": []}}
    ]))?;
    let field = |p: &Pod, f: &str| -> Option<String> {
        match f {
            "metadata.name" => p.metadata.name.clone(),
            "metadata.namespace" => p.metadata.namespace.clone(),
            "spec.nodeName" => p.spec.as_ref().and_then(|s| s.node_name.clone()),
            "status.phase" => p.status.as_ref().and_then(|s| s.phase.clone()),
            _ => None,
        }
    };
    let select = |s: &str| -> Result<Vec<String>> {
        let sel = FieldSelector::parse(s)?;
        Ok(pods.iter().filter(|p| sel.matches(|f| field(p, f))).filter_map(|p| p.metadata.name.clone()).collect())
    };
    assert_eq!(select("spec.nodeName=worker-1")?, ["a", "c"]);
    // kubectl's "unscheduled pods": a missing nodeName compares as "".
    assert_eq!(select("spec.nodeName=")?, ["b"]);
    assert_eq!(select("status.phase!=Running,metadata.namespace=default")?, ["b"]);
    assert_eq!(select("metadata.name=c")?, ["c"]);
    Ok(())
}
