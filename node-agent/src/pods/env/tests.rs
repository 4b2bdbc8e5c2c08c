use super::*;
use k8s_openapi::ByteString;
use serde_json::json;

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web", "tier": "fe"}},
        "spec": {"nodeName": "worker-1", "serviceAccountName": "default", "containers": [{"name": "c"}]}
    }))
    .unwrap()
}

fn container(v: serde_json::Value) -> Container {
    serde_json::from_value(v).unwrap()
}

fn ctx<'a>(pod: &'a Pod, ips: &'a [IpAddr]) -> PodContext<'a> {
    PodContext { pod, pod_ips: ips, host_ips: &ips[1..], allocatable: (2.0, 4.0 * 1073741824.0, 1e10) }
}

fn sources() -> Sources {
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"MODE": "fast", "bad=key": "x"}})).unwrap();
    let secret =
        Secret { data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()), ..Default::default() };
    let mut s = Sources::default();
    s.config_maps.insert("cfg".into(), Some(cm));
    s.config_maps.insert("gone".into(), None);
    s.secrets.insert("db".into(), Some(secret));
    s
}

#[test]
fn builds_env_in_kubelet_order_with_expansion_and_sources() {
    let p = pod();
    let ips: Vec<IpAddr> = vec!["10.244.1.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let c = container(json!({
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "GREETING", "value": "hello $(CFG_MODE) $(MY_SVC_SERVICE_HOST) $(NOPE) $$(CFG_MODE)"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "MY_SVC_SERVICE_PORT", "value": "override"}
        ]
    }));
    let svc = vec![
        ("MY_SVC_SERVICE_HOST".to_string(), "10.96.0.7".to_string()),
        ("MY_SVC_SERVICE_PORT".to_string(), "80".to_string()),
    ];
    let env = container_env(&ctx(&p, &ips), &c, &sources(), &svc).unwrap();
    let want: Vec<(String, String)> = [
        ("CFG_MODE", "fast"),
        ("GREETING", "hello fast 10.96.0.7 $(NOPE) $(CFG_MODE)"),
        ("POD_NAME", "web"),
        ("POD_IP", "10.244.1.5"),
        ("HOST_IP", "192.168.56.11"),
        ("APP", "web"),
        ("PASS", "s3cret"),
        ("CPU", "2"),
        ("MEM_MI", "4096"),
        ("MY_SVC_SERVICE_PORT", "override"),
        ("MY_SVC_SERVICE_HOST", "10.96.0.7"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env.vars, want);
    assert_eq!(env.skipped, ["CFG_bad=key"]);
    assert_eq!(expand_all(&["echo".into(), "$(POD_NAME)".into(), "$(X)".into()], &env.vars), ["echo", "web", "$(X)"]);
}

#[test]
fn missing_sources_fail_with_kubelet_messages_unless_optional() {
    let p = pod();
    let ips: Vec<IpAddr> = vec!["10.244.1.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let cases = [
        (json!({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]}), "configmap \"gone\" not found"),
        (
            json!({"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}]}),
            "couldn't find key nope in ConfigMap prod/cfg",
        ),
        (
            json!({"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}]}),
            "secret \"missing\" not found",
        ),
        (
            json!({"name": "c", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}}]}),
            "unsupported fieldPath: spec.nope",
        ),
    ];
    for (c, want) in cases {
        let err = container_env(&ctx(&p, &ips), &container(c), &sources(), &[]).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    let optional = container(json!({"name": "c",
        "envFrom": [{"configMapRef": {"name": "gone", "optional": true}}],
        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": true}}}]}));
    assert!(container_env(&ctx(&p, &ips), &optional, &sources(), &[]).unwrap().vars.is_empty());
}

#[test]
fn references_lists_what_to_fetch() {
    let c = container(json!({"name": "c",
        "envFrom": [{"configMapRef": {"name": "b"}}, {"secretRef": {"name": "s"}}],
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"}}}]}));
    assert_eq!(references(&c), (vec!["a".to_string(), "b".to_string()], vec!["s".to_string()]));
}

#[test]
fn downward_maps_are_sorted_and_quoted() {
    let p = pod();
    let ips: Vec<IpAddr> = vec!["10.244.1.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let f = ObjectFieldSelector { field_path: "metadata.labels".into(), api_version: None };
    assert_eq!(field_value(&ctx(&p, &ips), &f).unwrap(), "app=\"web\"\ntier=\"fe\"");
}
