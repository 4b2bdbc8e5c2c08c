//! Tests of the three patch formats, with the patches kubectl sends.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn smp(doc: &Value, patch: &Value, api_version: &str, kind: &str) -> Result<Value, PatchError> {
    let schema = patch_schema(api_version, kind).expect("a served kind");
    strategic_merge_patch(doc, patch, schema)
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "my-nginx", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
            "labels": {"app": "nginx", "tier": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{old}"}
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"run": "my-nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"run": "my-nginx"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx", "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
                            "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}],
                            "resources": {}
                        },
                        {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}
                    ],
                    "volumes": [{"name": "conf", "configMap": {"name": "nginx-conf"}}],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst"
                }
            }
        },
        "status": {"conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]}
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-nginx", "namespace": "default", "labels": {"run": "my-nginx"}},
        "spec": {
            "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"], "type": "ClusterIP",
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}
            ],
            "selector": {"run": "my-nginx"},
            "sessionAffinity": "None"
        }
    })
}

#[test]
fn kubectl_apply_changes_a_deployment() {
    // An edited manifest re-applied: new image, env var B between A and C, a second port, the
    // `tier` label removed.
    let patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{new}"},
            "labels": {"tier": null}
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                "env": [{"name": "B", "value": "2"}],
                "image": "nginx:1.27",
                "name": "nginx",
                "ports": [{"containerPort": 443}]
            }]
        }}}
    });
    let out = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap();
    let mut want = deployment();
    want["metadata"]["labels"] = json!({"app": "nginx"});
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{new}");
    let nginx = &mut want["spec"]["template"]["spec"]["containers"][0];
    nginx["image"] = json!("nginx:1.27");
    nginx["env"] = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]);
    nginx["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]);
    assert_eq!(out, want);
}

#[test]
fn kubectl_apply_removes_a_container_and_reorders() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "logger"}, {"name": "nginx"}],
        "containers": [{"name": "logger", "image": "busybox"}, {"$patch": "delete", "name": "sidecar"}]
    }}}});
    let out = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["logger", "nginx"]);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][1],
        deployment()["spec"]["template"]["spec"]["containers"][0]
    );
}

#[test]
fn kubectl_apply_changes_the_strategy_with_retain_keys() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}});
    let out = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // Every key set must be retained.
    let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
    let err = smp(&deployment(), &bad, "apps/v1", "Deployment").unwrap_err();
    assert_eq!(err, PatchError::BadRequest("invalid patch format of retainKeys".into()));
    assert_eq!(err.status_code(), 400);
}

#[test]
fn kubectl_apply_changes_a_service_port() {
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 8080}, {"port": 443}],
        "ports": [{"name": "http", "port": 8080, "targetPort": 80}, {"$patch": "delete", "port": 80}]
    }});
    let out = smp(&service(), &patch, "v1", "Service").unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([
            {"name": "http", "port": 8080, "targetPort": 80},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}
        ])
    );
    // A plain merge of one port keeps the other.
    let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
    let out = smp(&service(), &patch, "v1", "Service").unwrap();
    assert_eq!(out["spec"]["ports"][0], service()["spec"]["ports"][0]);
    assert_eq!(out["spec"]["ports"][1], json!({"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}));
}

#[test]
fn kubectl_label_and_scale() {
    let out = smp(&service(), &json!({"metadata": {"labels": {"env": "prod"}}}), "v1", "Service").unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"run": "my-nginx", "env": "prod"}));
    let out = smp(&service(), &json!({"metadata": {"labels": {"run": null}}}), "v1", "Service").unwrap();
    assert_eq!(out["metadata"]["labels"], json!({}));
    let out = smp(&deployment(), &json!({"spec": {"replicas": 5}}), "apps/v1", "Deployment").unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["spec"]["template"], deployment()["spec"]["template"]);
}

#[test]
fn lists_without_strategy_are_replaced() {
    let ep = json!({"subsets": [{"addresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}]}]});
    let patch = json!({"subsets": [{"addresses": [{"ip": "10.244.1.3"}]}]});
    assert_eq!(smp(&ep, &patch, "v1", "Endpoints").unwrap(), patch);
    // Service clusterIPs and container args too.
    let out = smp(&service(), &json!({"spec": {"clusterIPs": ["10.96.0.13"]}}), "v1", "Service").unwrap();
    assert_eq!(out["spec"]["clusterIPs"], json!(["10.96.0.13"]));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "command": ["true"]}]}}}});
    let out = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"][1]["command"], json!(["true"]));
}

#[test]
fn merge_keys_of_the_served_kinds() {
    let node = json!({
        "spec": {"podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "192.168.56.11"}, {"type": "Hostname", "address": "w1"}],
            "conditions": [{"type": "Ready", "status": "False"}]
        }
    });
    let patch = json!({"spec": {"podCIDRs": ["fd00::/64"]}, "status": {
        "addresses": [{"type": "InternalIP", "address": "192.168.56.21"}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]
    }});
    let out = smp(&node, &patch, "v1", "Node").unwrap();
    assert_eq!(out["spec"]["podCIDRs"], json!(["fd00::/64", "10.244.1.0/24"]));
    assert_eq!(
        out["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "192.168.56.21"}, {"type": "Hostname", "address": "w1"}])
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
    );

    let pod = json!({
        "metadata": {"ownerReferences": [{"uid": "a", "name": "rs-1"}]},
        "spec": {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}], "containers": [{"name": "c"}]},
        "status": {"podIPs": [{"ip": "10.244.1.5"}], "conditions": [{"type": "Ready", "status": "False"}]}
    });
    let patch = json!({
        "metadata": {"ownerReferences": [{"uid": "b", "name": "rs-2"}]},
        "spec": {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["b"]}]},
        "status": {"podIPs": [{"ip": "fd00::5"}], "conditions": [{"type": "Ready", "status": "True"}]}
    });
    let out = smp(&pod, &patch, "v1", "Pod").unwrap();
    assert_eq!(out["metadata"]["ownerReferences"], json!([{"uid": "b", "name": "rs-2"}, {"uid": "a", "name": "rs-1"}]));
    assert_eq!(out["spec"]["hostAliases"], json!([{"ip": "1.2.3.4", "hostnames": ["b"]}]));
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "fd00::5"}, {"ip": "10.244.1.5"}]));
    assert_eq!(out["status"]["conditions"], json!([{"type": "Ready", "status": "True"}]));

    let sa = json!({"secrets": [{"name": "t1"}]});
    let out = smp(&sa, &json!({"secrets": [{"name": "t2"}]}), "v1", "ServiceAccount").unwrap();
    assert_eq!(out["secrets"], json!([{"name": "t2"}, {"name": "t1"}]));
}

#[test]
fn primitive_lists_merge_as_sets() {
    let doc = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = smp(&doc, &json!({"metadata": {"finalizers": ["c", "a"]}}), "v1", "ConfigMap").unwrap();
    // Patch values in patch order; server-only values where they were relative to them.
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp(&doc, &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "x"]}}), "v1", "ConfigMap")
        .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let patch = json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}});
    let out = smp(&doc, &patch, "v1", "ConfigMap").unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a"]));
    // Deleting from a list the object does not have is a no-op.
    let out = smp(
        &json!({"metadata": {}}),
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        "v1",
        "Pod",
    );
    assert_eq!(out.unwrap(), json!({"metadata": {}}));
}

#[test]
fn patch_directives_in_maps_and_lists() {
    let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
    let out = smp(&doc, &json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}), "v1", "Secret").unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    let out = smp(&doc, &json!({"metadata": {"annotations": {"$patch": "delete"}}}), "v1", "Secret").unwrap();
    assert_eq!(out["metadata"]["annotations"], json!({}));

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}}});
    let out = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}});
    let err = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap_err();
    assert_eq!(err.to_string(), "merging lists cannot yet be specified in the patch");

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "$patch": "bogus"}]}}}});
    let err = smp(&deployment(), &patch, "apps/v1", "Deployment").unwrap_err();
    assert_eq!(err.to_string(), "unknown patch type: bogus in map: map[$patch:bogus name:nginx]");
    assert_eq!(err.status_code(), 400);
    let err = smp(&doc, &json!({"metadata": {"$patch": "bogus"}}), "v1", "Secret").unwrap_err();
    assert_eq!(err.to_string(), "unknown patch type: bogus in map: map[$patch:bogus]");

    // Directive objects in values the original does not have are dropped.
    let patch =
        json!({"data": {"k": "v", "gone": null}, "extra": {"$patch": "delete"}, "list": [{"$patch": "delete"}, 1]});
    assert_eq!(smp(&json!({}), &patch, "v1", "ConfigMap").unwrap(), json!({"data": {"k": "v"}, "list": [1]}));
}

#[test]
fn malformed_directives_are_refused() {
    let mut doc = deployment();
    doc["metadata"]["finalizers"] = json!([]);
    let cases = [
        (json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}), "invalid patch format of primitive list"),
        (json!({"metadata": {"$setElementOrder": ["a"]}}), "invalid patch format of setElementOrder list"),
        (json!({"metadata": {"$retainKeys": "name"}}), "invalid patch format of retainKeys"),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx"}, "x"]}}}}),
            "list element types are not identical: [[map[env:[map[name:A value:1] map[name:C value:3]] image:nginx ...",
        ),
        (json!({"metadata": {"finalizers": [["a"]]}}), "lists of lists are not supported"),
        (json!({"spec": {"$setElementOrder/x": "a"}}), "expected a []interface {}, but received a string"),
        (
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"name": "sidecar", "image": "b"}]
            }}}}),
            "The order in patch list:\n[map[image:b name:sidecar]]\n doesn't match $setElementOrder list:\n[map[name:nginx]]\n",
        ),
    ];
    for (patch, want) in cases {
        let err = smp(&doc, &patch, "apps/v1", "Deployment").expect_err(&patch.to_string());
        let text = err.to_string();
        match want.strip_suffix(" ...") {
            Some(prefix) => assert!(text.starts_with(prefix), "{text}"),
            None => assert_eq!(text, want),
        }
        assert!(matches!(err.status_code(), 400 | 422), "{err:?}");
    }
    let err = strategic_merge_patch(&doc, &json!([1]), PatchSchema::empty()).unwrap_err();
    assert_eq!(err.to_string(), "json: cannot unmarshal array into Go value of type map[string]interface {}");
    assert_eq!(strategic_merge_patch(&doc, &Value::Null, PatchSchema::empty()), Ok(doc.clone()));
}

#[test]
fn schemas_of_the_served_kinds() {
    for (v, k) in [
        ("v1", "Pod"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("v1", "Node"),
        ("v1", "Namespace"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("v1", "Event"),
        ("v1", "ReplicationController"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("coordination.k8s.io/v1", "Lease"),
        ("events.k8s.io/v1", "Event"),
        ("autoscaling/v1", "Scale"),
    ] {
        let schema = patch_schema(v, k).unwrap_or_else(|| panic!("{v} {k}"));
        assert_eq!(schema.field("metadata").schema.field("ownerReferences").merge_key, Some("uid"), "{k}");
    }
    assert!(patch_schema("example.com/v1", "Widget").is_none());
    assert!(patch_schema("v1", "Deployment").is_none());
    let rc = patch_schema("v1", "ReplicationController").unwrap();
    let containers = rc.field("spec").schema.field("template").schema.field("spec").schema.field("containers");
    assert_eq!((containers.strategy, containers.merge_key), (PatchStrategy::Merge, Some("name")));
    let c = containers.schema;
    assert_eq!(c.field("ports").merge_key, Some("containerPort"));
    assert_eq!(c.field("volumeMounts").merge_key, Some("mountPath"));
    assert_eq!(c.field("args").strategy, PatchStrategy::Default);
    let pod_spec = patch_schema("v1", "Pod").unwrap().field("spec").schema;
    assert!(pod_spec.field("volumes").retain_keys);
    // The schemas follow k8s-openapi's types all the way down, so tags deep inside apply too.
    let ephemeral = pod_spec.field("volumes").schema.field("ephemeral").schema;
    let claim_meta = ephemeral.field("volumeClaimTemplate").schema.field("metadata").schema;
    assert_eq!(claim_meta.field("ownerReferences").merge_key, Some("uid"));
    assert_eq!(claim_meta.field("finalizers").strategy, PatchStrategy::Merge);
    let deploy_spec = patch_schema("apps/v1", "Deployment").unwrap().field("spec").schema;
    assert!(deploy_spec.field("strategy").retain_keys);
    let event = patch_schema("events.k8s.io/v1", "Event").unwrap();
    assert_eq!(event.field("series").strategy, PatchStrategy::Default);
}

#[test]
fn json_patch_operations_and_errors() {
    let doc = service();
    let patch = json!([
        {"op": "replace", "path": "/spec/ports/0/port", "value": 81},
        {"op": "add", "path": "/metadata/labels/env", "value": "prod"},
        {"op": "remove", "path": "/spec/sessionAffinity"},
        {"op": "test", "path": "/spec/type", "value": "ClusterIP"}
    ]);
    let out = json_patch(&doc, &patch).unwrap();
    assert_eq!(out["spec"]["ports"][0]["port"], 81);
    assert_eq!(out["metadata"]["labels"]["env"], "prod");
    assert!(out["spec"].get("sessionAffinity").is_none());

    let err = json_patch(&doc, &json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
    assert_eq!(err.status_code(), 422);
    let err = json_patch(&doc, &json!([{"op": "test", "path": "/spec/type", "value": "NodePort"}])).unwrap_err();
    assert_eq!(err.status_code(), 422);
    // Nothing is applied when one operation fails.
    assert!(
        json_patch(&doc, &json!([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}])).is_err()
    );
    let err = json_patch(&doc, &json!({"op": "add"})).unwrap_err();
    assert_eq!(
        err,
        PatchError::BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into())
    );
    assert_eq!(
        json_patch(&doc, &json!([{"op": "frobnicate", "path": "/a"}])),
        Err(PatchError::Unprocessable("Unexpected kind: frobnicate".into()))
    );
    assert_eq!(
        json_patch(&doc, &json!([1])),
        Err(PatchError::BadRequest("json: cannot unmarshal number into Go value of type jsonpatch.Operation".into()))
    );
    // kube-apiserver's texts for operations that do not apply.
    let e = |p: Value| json_patch(&doc, &p).unwrap_err().to_string();
    assert_eq!(
        e(json!([{"op": "add", "path": "/spec/x/y", "value": 1}])),
        "add operation does not apply: doc is missing path: \"/spec/x/y\": missing value"
    );
    assert_eq!(
        e(json!([{"op": "remove", "path": "/spec/nope"}])),
        "remove operation does not apply: doc is missing path: \"/spec/nope\": missing value"
    );
    assert_eq!(
        e(json!([{"op": "replace", "path": "/spec/nope", "value": 1}])),
        "replace operation does not apply: doc is missing path: /spec/nope: missing value"
    );
    assert_eq!(e(json!([{"op": "test", "path": "/kind", "value": "Pod"}])), "testing value /kind failed: test failed");
    assert_eq!(
        e(json!([{"op": "move", "from": "/nope", "path": "/x"}])),
        "move operation does not apply: doc is missing from path: /nope: missing value"
    );
    assert_eq!(e(json!([{"op": "remove"}])), "remove operation failed to decode path: missing value");
    // Testing a missing member against null passes.
    assert!(json_patch(&doc, &json!([{"op": "test", "path": "/spec/nope", "value": null}])).is_ok());
    assert!(json_patch(&doc, &json!([{"op": "test", "path": "/nope/deeper", "value": null}])).is_err());
    let many = Value::Array(vec![json!({"op": "test", "path": "/kind", "value": "Service"}); 10_001]);
    let err = json_patch(&doc, &many).unwrap_err();
    assert_eq!(err.to_string(), "The allowed maximum operations in a JSON patch is 10000, got 10001");
    assert_eq!(err.status_code(), 413);
}

#[test]
fn merge_patch_replaces_lists() {
    let out = merge_patch(&service(), &json!({"spec": {"ports": [{"port": 1}], "selector": null}, "x": {"y": null}}));
    assert_eq!(out["spec"]["ports"], json!([{"port": 1}]));
    assert!(out["spec"].get("selector").is_none());
    assert_eq!(out["x"], json!({}));
    assert_eq!(out["spec"]["clusterIP"], "10.96.0.12");
}

// ---- properties ----

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-d]".prop_map(String::from),
        1 => Just("name".to_string()),
        1 => Just("containers".to_string()),
        1 => Just("ports".to_string()),
        1 => Just("metadata".to_string()),
        1 => Just("spec".to_string()),
        1 => Just("finalizers".to_string()),
        1 => Just("$patch".to_string()),
        1 => Just("$retainKeys".to_string()),
        1 => Just("$setElementOrder/containers".to_string()),
        1 => Just("$setElementOrder/finalizers".to_string()),
        1 => Just("$deleteFromPrimitiveList/finalizers".to_string()),
        1 => Just("$deleteFromPrimitiveList".to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        Just(json!(1.5)),
        prop_oneof![Just("replace"), Just("delete"), Just("merge"), Just("a"), Just("b")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::vec((key(), json_value()), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// Makes a patch a plain merge patch, for which SMP and RFC 7386 agree: no directive keys,
/// and no `null` inside lists (SMP drops `null` members of objects inside lists).
fn make_plain(v: Value, in_list: bool) -> Value {
    match v {
        Value::Null if in_list => json!(0),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| make_plain(i, true)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k, make_plain(v, in_list))).collect(),
        ),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn strategic_merge_patch_never_panics(doc in json_object(), patch in json_value()) {
        for (v, k) in [("apps/v1", "Deployment"), ("v1", "Pod"), ("v1", "Node"), ("v1", "ConfigMap")] {
            let schema = patch_schema(v, k).unwrap();
            if let Err(e) = strategic_merge_patch(&doc, &patch, schema) {
                prop_assert!(matches!(e.status_code(), 400 | 422));
                prop_assert!(!e.to_string().is_empty());
            }
            let _ = strategic_merge_patch(&patch, &doc, schema);
        }
    }

    #[test]
    fn without_merge_lists_or_directives_it_is_a_merge_patch(
        doc in json_object(),
        patch in json_object().prop_map(|p| make_plain(p, false)),
    ) {
        let out = strategic_merge_patch(&doc, &patch, PatchSchema::empty());
        prop_assert_eq!(out, Ok(merge_patch(&doc, &patch)));
    }

    #[test]
    fn other_patch_formats_never_panic(doc in json_value(), patch in json_value()) {
        let _ = json_patch(&doc, &patch);
        let _ = merge_patch(&doc, &patch);
    }
}
