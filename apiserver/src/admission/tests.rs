//! The public API end to end: JSON in, kube-apiserver's messages out.

use super::*;
use crate::resources::{find, RESOURCES};
use proptest::prelude::*;
use serde_json::json;

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    match find(group, "v1", plural) {
        Some(r) => r,
        None => panic!("{group}/{plural} is not served"),
    }
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or(Value::Null)
}

/// Defaults, prepares and validates a create the way the registry does.
fn create(r: &ResourceInfo, mut obj: Value) -> (Value, Vec<String>) {
    if let Some(meta) = obj.get_mut("metadata") {
        if r.namespaced && meta.get("namespace").is_none() {
            meta["namespace"] = json!("default");
        }
    }
    assert!(default(r, &mut obj).is_ok());
    assert!(prepare_for_create(r, &mut obj).is_ok());
    let errs = validate(r, &obj, None).iter().map(ToString::to_string).collect();
    (obj, errs)
}

#[test]
fn the_seed_manifests_are_accepted() {
    let manifests = [
        ("", "replicationcontrollers", "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: my-nginx\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: nginx\n    spec:\n      containers:\n      - name: nginx\n        image: nginx\n        ports:\n        - containerPort: 80\n"),
        ("", "services", "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginxsvc\n  labels:\n    app: nginx\nspec:\n  type: NodePort\n  ports:\n  - port: 8080\n    targetPort: 80\n    protocol: TCP\n    name: http\n  - port: 443\n    protocol: TCP\n    name: https\n  selector:\n    app: nginx\n"),
        ("", "services", "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  type: ExternalName\n  externalName: my.database.example.com\n"),
        ("", "endpoints", "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: my-service\nsubsets:\n  - addresses:\n      - ip: 192.0.2.42\n    ports:\n      - port: 9376\n"),
        ("", "pods", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: busybox\n  namespace: default\nspec:\n  containers:\n  - image: busybox:1.28\n    command:\n      - sleep\n      - \"3600\"\n    imagePullPolicy: IfNotPresent\n    name: busybox\n  restartPolicy: Always\n  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n"),
        ("apps", "deployments", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-nginx\nspec:\n  selector:\n    matchLabels:\n      run: my-nginx\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        run: my-nginx\n    spec:\n      containers:\n      - name: my-nginx\n        image: nginx\n        ports:\n        - containerPort: 80\n"),
        ("networking.k8s.io", "networkpolicies", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: access-nginx\nspec:\n  podSelector:\n    matchLabels:\n      run: nginx\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          access: \"true\"\n"),
    ];
    for (group, plural, text) in manifests {
        let (_, errs) = create(res(group, plural), yaml(text));
        assert!(errs.is_empty(), "{plural}: {errs:?}");
    }
}

#[test]
fn defaulting_fills_what_kubectl_shows() {
    let (svc, _) = create(
        res("", "services"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert_eq!(svc["spec"]["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
    assert_eq!(svc["spec"]["type"], json!("ClusterIP"));
    assert_eq!(svc["spec"]["sessionAffinity"], json!("None"));
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    let (ns, _) = create(res("", "namespaces"), json!({"metadata": {"name": "dev"}}));
    assert_eq!(ns["metadata"]["labels"], json!({"kubernetes.io/metadata.name": "dev"}));
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    let (deploy, _) = create(
        res("apps", "deployments"),
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    );
    assert_eq!(
        deploy["spec"]["strategy"],
        json!({"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"})
    );
}

#[test]
fn invalid_objects_read_like_kube_apiserver() {
    let r = res("", "services");
    let (_, errs) =
        create(r, json!({"metadata": {"name": "my-service"}, "spec": {"ports": [{"name": "123_abc", "port": 80}]}}));
    assert_eq!(errs.len(), 1);
    let (obj, _) =
        create(r, json!({"metadata": {"name": "my-service"}, "spec": {"ports": [{"name": "123_abc", "port": 80}]}}));
    let err = ApiError::invalid(r, "my-service", validate(r, &obj, None));
    assert_eq!(
        err.to_string(),
        "Service \"my-service\" is invalid: spec.ports[0].name: Invalid value: \"123_abc\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
    let (obj, _) =
        create(r, json!({"metadata": {"name": "my-service"}, "spec": {"ports": [{"port": 80}, {"port": 443}]}}));
    let err = ApiError::invalid(r, "my-service", validate(r, &obj, None));
    assert_eq!(
        err.to_string(),
        "Service \"my-service\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]"
    );
    let (_, errs) = create(
        res("", "endpoints"),
        json!({"metadata": {"name": "my-service"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]}),
    );
    assert_eq!(
        errs,
        ["subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    );
    let (_, errs) = create(
        res("", "pods"),
        json!({"metadata": {"name": "dns-example"}, "spec": {"dnsPolicy": "None", "containers": [{"name": "test", "image": "nginx"}]}}),
    );
    assert_eq!(errs, ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]);
}

#[test]
fn bodies_that_do_not_decode_are_bad_requests() {
    let r = res("", "services");
    let mut obj = json!({"metadata": {"name": "x"}, "spec": {"ports": [{"port": "eighty"}]}});
    match default(r, &mut obj) {
        Err(e @ ApiError::BadRequest(_)) => {
            assert!(e.to_string().starts_with("Service in version \"v1\" cannot be handled as a Service: "), "{e}")
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    let mut lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": "long"}});
    assert!(matches!(default(res("coordination.k8s.io", "leases"), &mut lease), Err(ApiError::BadRequest(_))));
}

#[test]
fn updates_go_through_preparation() {
    let r = res("", "services");
    let (old, errs) =
        create(r, json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}));
    assert!(errs.is_empty());
    let mut old = old;
    old["spec"]["clusterIP"] = json!("10.96.0.7");
    old["spec"]["clusterIPs"] = json!(["10.96.0.7"]);
    old["spec"]["ports"][0]["nodePort"] = json!(30080);
    let mut new = old.clone();
    new["spec"]["type"] = json!("ClusterIP");
    new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    assert!(default(r, &mut new).is_ok());
    assert!(prepare_for_update(r, &mut new, &old).is_ok());
    assert_eq!(new["spec"]["ports"][0].get("nodePort"), None);
    assert_eq!(new["status"], json!({"loadBalancer": {}}));
    assert!(validate(r, &new, Some(&old)).is_empty());
    let mut renamed = old.clone();
    renamed["metadata"]["name"] = json!("web2");
    let errs: Vec<String> = validate(r, &renamed, Some(&old)).iter().map(ToString::to_string).collect();
    assert_eq!(errs, ["metadata.name: Invalid value: \"web2\": field is immutable"]);
}

#[test]
fn status_updates_of_kinds_without_special_rules() {
    let r = res("", "configmaps");
    let old = json!({"metadata": {"name": "c", "namespace": "default"}});
    let mut new = old.clone();
    new["metadata"]["namespace"] = json!("other");
    let errs: Vec<String> = validate_status(r, &new, &old).iter().map(ToString::to_string).collect();
    assert_eq!(errs, ["metadata.namespace: Invalid value: \"other\": field is immutable"]);
}

#[test]
fn configured_service_cidr_decides_service_ips() {
    let cfg = AdmissionConfig { service_cidrs: vec!["10.100.0.0/16".parse().unwrap_or_else(|_| IpNet::default())] };
    assert_eq!(cfg.families(), vec![IpFamily::V4]);
    let ip: IpAddr = [10, 100, 3, 4].into();
    assert!(cfg.service_cidr_of(&ip).is_some());
    assert!(AdmissionConfig::default().service_cidr_of(&ip).is_none());
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "metadata",
        "name",
        "namespace",
        "spec",
        "status",
        "ports",
        "port",
        "targetPort",
        "nodePort",
        "protocol",
        "type",
        "clusterIP",
        "clusterIPs",
        "selector",
        "containers",
        "image",
        "subsets",
        "addresses",
        "ip",
        "template",
        "labels",
        "replicas",
        "dnsPolicy",
        "dnsConfig",
        "nameservers",
        "ingress",
        "from",
        "ipBlock",
        "cidr",
        "except",
        "endpoints",
        "addressType",
        "data",
        "stringData",
        "matchLabels",
        "strategy",
        "rules",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-5i64..70000).prop_map(Value::from),
        "[a-zA-Z0-9._/:-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a client sends, admission answers with errors, never a panic.
    #[test]
    fn admission_never_panics(obj in arbitrary_json(), old in arbitrary_json()) {
        let wrapped = json!({"metadata": {"name": "x", "namespace": "default"}, "spec": obj.clone(), "status": old.clone()});
        for (r, body) in RESOURCES.iter().flat_map(|r| [(r, obj.clone()), (r, wrapped.clone())]) {
            let mut new = body;
            if default(r, &mut new).is_ok() {
                let _ = prepare_for_create(r, &mut new.clone());
                let _ = prepare_for_update(r, &mut new.clone(), &old);
                let _ = validate(r, &new, None);
                let _ = validate(r, &new, Some(&old));
                let _ = validate_status(r, &new, &old);
            }
        }
    }
}
