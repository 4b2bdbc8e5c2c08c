use super::*;
use serde_json::json;

fn strings(errs: Vec<FieldError>) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn namespaces_get_their_name_label_and_phase() {
    let mut ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "prod", "team": "a"}}
    }))
    .unwrap_or_default();
    default_namespace(&mut ns);
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(NAMESPACE_NAME_LABEL).map(String::as_str), Some("dev"), "a wrong value is overwritten");
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(ns.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Active"));
    assert!(validate_namespace(&ns, None).is_empty());
    ns.metadata.name = Some("my.ns".into());
    assert_eq!(
        strings(validate_namespace(&ns, None)),
        ["metadata.name: Invalid value: \"my.ns\": must not contain dots"]
    );
    ns.metadata.namespace = Some("default".into());
    ns.metadata.name = Some("ok".into());
    assert_eq!(strings(validate_namespace(&ns, None)), ["metadata.namespace: Forbidden: not allowed on this type"]);
    ns.metadata.namespace = None;
    let mut terminating = ns.clone();
    terminating.status = Some(NamespaceStatus { phase: Some("Terminating".into()), conditions: None });
    assert_eq!(
        strings(validate_namespace_status(&terminating, &ns)),
        ["status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"]
    );
}

#[test]
fn nodes() {
    let mut node: Node = serde_json::from_value(json!({
        "metadata": {"name": "worker-1"},
        "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}
    }))
    .unwrap_or_default();
    default_node(&mut node);
    assert_eq!(node.spec.as_ref().and_then(|s| s.pod_cidrs.clone()), Some(vec!["10.244.1.0/24".to_string()]));
    assert_eq!(
        strings(validate_node(&node, None)),
        ["metadata.taints[1]: Duplicate value: {\"effect\":\"NoSchedule\",\"key\":\"a\"}: taints must be unique by key and effect pair"]
    );
    let old = node.clone();
    if let Some(spec) = node.spec.as_mut() {
        spec.pod_cidr = Some("10.244.2.0/24".into());
        spec.pod_cidrs = Some(vec!["10.244.2.0/24".into()]);
        spec.taints = None;
    }
    assert_eq!(
        strings(validate_node(&node, Some(&old))),
        ["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
    );
}

#[test]
fn secrets() {
    let mut secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "nginxsecret", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "CERT"}
    }))
    .unwrap_or_default();
    default_secret(&mut secret);
    assert_eq!(secret.string_data, None);
    assert_eq!(secret.data.as_ref().and_then(|d| d.get("tls.crt")).map(|b| b.0.clone()), Some(b"CERT".to_vec()));
    assert_eq!(strings(validate_secret(&secret, None)), ["data[tls.key]: Required value"]);
    let mut opaque: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"bad/key": "eA=="}}))
            .unwrap_or_default();
    default_secret(&mut opaque);
    assert_eq!(opaque.type_.as_deref(), Some("Opaque"));
    let errs = strings(validate_secret(&opaque, None));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters"
    ));
    let mut retyped = secret.clone();
    retyped.type_ = Some("Opaque".into());
    assert_eq!(
        strings(validate_secret(&retyped, Some(&secret))),
        ["type: Invalid value: \"Opaque\": field is immutable"]
    );
    let mut big = opaque.clone();
    big.data = Some(BTreeMap::from([("a".to_string(), ByteString(vec![0; MAX_DATA_SIZE + 1]))]));
    assert_eq!(strings(validate_secret(&big, None)), ["data: Too long: may not be more than 1048576 bytes"]);
}

#[test]
fn config_maps() {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"a": "1", "b": "2"}, "binaryData": {"b": "Mg=="}, "immutable": true
    }))
    .unwrap_or_default();
    assert_eq!(
        strings(validate_config_map(&cm, None)),
        ["data[b]: Invalid value: \"b\": duplicate of key present in binaryData"]
    );
    let mut changed = cm.clone();
    changed.binary_data = None;
    changed.data = Some(BTreeMap::from([("a".to_string(), "3".to_string())]));
    assert_eq!(
        strings(validate_config_map(&changed, Some(&cm))),
        [
            "data: Forbidden: field is immutable when `immutable` is set",
            "binaryData: Forbidden: field is immutable when `immutable` is set"
        ]
    );
}

#[test]
fn leases() {
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "worker-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "worker-1", "leaseDurationSeconds": 0}
    }))
    .unwrap_or_default();
    assert_eq!(
        strings(validate_lease(&lease, None)),
        ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    );
}
