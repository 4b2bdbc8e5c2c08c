use super::*;
use serde_json::json;

fn strings(errs: Vec<FieldError>) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn template(labels: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}})
}

fn deployment(spec: serde_json::Value) -> Deployment {
    let mut d: Deployment =
        serde_json::from_value(json!({"metadata": {"name": "my-nginx", "namespace": "default"}, "spec": spec}))
            .unwrap_or_default();
    default_deployment(&mut d);
    d
}

#[test]
fn replication_controller_defaults_from_its_template() {
    let mut rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "my-nginx", "namespace": "default"},
        "spec": {"replicas": 2, "template": template(json!({"app": "nginx"}))}
    }))
    .unwrap_or_default();
    default_replication_controller(&mut rc);
    let spec = rc.spec.clone().unwrap_or_default();
    let labels = BTreeMap::from([("app".to_string(), "nginx".to_string())]);
    assert_eq!(spec.selector.as_ref(), Some(&labels));
    assert_eq!(rc.metadata.labels.as_ref(), Some(&labels));
    assert_eq!(spec.replicas, Some(2));
    let pod_spec = spec.template.and_then(|t| t.spec).unwrap_or_default();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod_spec.enable_service_links, None, "enableServiceLinks is a Pod default, not a template one");
    assert!(validate_replication_controller(&rc, None).is_empty());
    let mut bad = rc.clone();
    if let Some(spec) = bad.spec.as_mut() {
        spec.selector = Some(BTreeMap::from([("app".to_string(), "web".to_string())]));
        if let Some(ps) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
            ps.restart_policy = Some("Never".into());
        }
    }
    assert_eq!(
        strings(validate_replication_controller(&bad, Some(&rc))),
        [
            "spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        ]
    );
}

#[test]
fn deployment_defaults() {
    let d = deployment(
        json!({"selector": {"matchLabels": {"run": "my-nginx"}}, "template": template(json!({"run": "my-nginx"}))}),
    );
    let spec = d.spec.clone().unwrap_or_default();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap_or_default();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = strategy.rolling_update.unwrap_or_default();
    assert_eq!(ru.max_surge, Some(IntOrString::String("25%".into())));
    assert_eq!(ru.max_unavailable, Some(IntOrString::String("25%".into())));
    assert!(validate_deployment(&d, None, true).is_empty());
}

#[test]
fn deployment_selector_rules() {
    let d = deployment(json!({"template": template(json!({"app": "nginx"}))}));
    assert_eq!(
        strings(validate_deployment(&d, None, false)),
        [
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`"
        ]
    );
    let d = deployment(json!({"selector": {}, "template": template(json!({"app": "nginx"}))}));
    assert_eq!(
        strings(validate_deployment(&d, None, true)),
        ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    );
    let old = deployment(
        json!({"selector": {"matchLabels": {"app": "nginx"}}, "template": template(json!({"app": "nginx"}))}),
    );
    let new = deployment(
        json!({"selector": {"matchLabels": {"app": "nginx2"}}, "template": template(json!({"app": "nginx2"}))}),
    );
    assert_eq!(
        strings(validate_deployment(&new, Some(&old), true)),
        ["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"nginx2\"}}: field is immutable"]
    );
}

#[test]
fn deployment_strategy_and_deadlines() {
    let d = deployment(json!({
        "selector": {"matchLabels": {"app": "x"}}, "template": template(json!({"app": "x"})), "minReadySeconds": 700,
        "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "120%"}}
    }));
    assert_eq!(
        strings(validate_deployment(&d, None, true)),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%",
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
        ]
    );
    let d = deployment(json!({
        "selector": {"matchLabels": {"app": "x"}}, "template": template(json!({"app": "x"})),
        "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    }));
    assert_eq!(
        strings(validate_deployment(&d, None, true)),
        ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"]
    );
    let d = deployment(json!({
        "selector": {"matchLabels": {"app": "x"}}, "template": template(json!({"app": "x"})),
        "strategy": {"type": "Recreate", "rollingUpdate": {}}
    }));
    assert_eq!(
        strings(validate_deployment(&d, None, true)),
        ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
    );
}

#[test]
fn new_status_and_status_validation() {
    let mut d =
        deployment(json!({"selector": {"matchLabels": {"app": "x"}}, "template": template(json!({"app": "x"}))}));
    d.status = Some(DeploymentStatus { replicas: Some(4), ..Default::default() });
    prepare_deployment_create(&mut d);
    assert_eq!(d.status, Some(DeploymentStatus::default()), "a new Deployment starts with an empty status");
    let mut st = d.clone();
    st.status = serde_json::from_value(json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 2})).ok();
    assert_eq!(
        strings(validate_deployment_status(&st, &d)),
        [
            "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
            "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas"
        ]
    );
}

#[test]
fn replica_sets() {
    let mut rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-5d8f", "namespace": "default"},
        "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, "template": template(json!({"app": "web"}))}
    }))
    .unwrap_or_default();
    default_replica_set(&mut rs);
    assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert!(validate_replica_set(&rs, None, true).is_empty());
    if let Some(spec) = rs.spec.as_mut() {
        spec.selector.match_expressions = Some(vec![Default::default()]);
    }
    let errs = strings(validate_replica_set(&rs, None, true));
    assert_eq!(errs.last().map(String::as_str), Some("spec.selector: Invalid value: {\"matchExpressions\":[{\"key\":\"\",\"operator\":\"\"}]}: invalid label selector"));
}
