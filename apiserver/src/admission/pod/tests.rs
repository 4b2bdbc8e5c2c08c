use super::*;
use serde_json::json;

fn pod(spec: serde_json::Value) -> Pod {
    let mut p: Pod =
        serde_json::from_value(json!({"metadata": {"name": "dns-example", "namespace": "default"}, "spec": spec}))
            .unwrap_or_default();
    default_pod(&mut p);
    p
}

fn errors(p: &Pod, old: Option<&Pod>) -> Vec<String> {
    validate(p, old).iter().map(ToString::to_string).collect()
}

fn nginx() -> serde_json::Value {
    json!({"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]})
}

#[test]
fn defaults() {
    let p = pod(nginx());
    let spec = p.spec.clone().unwrap_or_default();
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(spec.enable_service_links, Some(true));
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.service_account.as_deref(), Some("default"));
    assert_eq!(spec.security_context, Some(Default::default()));
    assert_eq!(spec.priority, Some(0));
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    assert_eq!(tolerations.len(), 2);
    assert_eq!(tolerations[0].key.as_deref(), Some("node.kubernetes.io/not-ready"));
    assert_eq!(tolerations[0].toleration_seconds, Some(300));
    let c = &spec.containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"), "no tag means latest");
    assert_eq!(c.termination_message_path.as_deref(), Some("/dev/termination-log"));
    assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    assert_eq!(c.ports.clone().unwrap_or_default()[0].protocol.as_deref(), Some("TCP"));
    assert!(errors(&p, None).is_empty(), "{:?}", errors(&p, None));
    // Defaulting twice changes nothing.
    let mut again = p.clone();
    default_pod(&mut again);
    assert_eq!(again, p);
    let p = pod(json!({"containers": [{"name": "b", "image": "busybox:1.28"}]}));
    assert_eq!(p.spec.unwrap_or_default().containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
}

#[test]
fn dns_policy_none_requires_nameservers() {
    let mut spec = nginx();
    spec["dnsPolicy"] = json!("None");
    assert_eq!(
        errors(&pod(spec.clone()), None),
        ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
    );
    spec["dnsConfig"] = json!({"searches": ["my.dns.search.suffix"]});
    assert_eq!(
        errors(&pod(spec.clone()), None),
        ["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"]
    );
    spec["dnsConfig"] = json!({
        "nameservers": ["1.2.3.4"],
        "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
    });
    assert!(errors(&pod(spec.clone()), None).is_empty());
    spec["dnsConfig"] = json!({"nameservers": ["1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.7"]});
    assert_eq!(
        errors(&pod(spec.clone()), None),
        ["spec.dnsConfig.nameservers: Invalid value: [\"1.2.3.4\",\"1.2.3.5\",\"1.2.3.6\",\"1.2.3.7\"]: must not have more than 3 nameservers"]
    );
    spec["dnsConfig"] =
        json!({"nameservers": ["1.2.3.4"], "searches": vec!["a.example"; 33], "options": [{"value": "1"}]});
    assert_eq!(
        errors(&pod(spec.clone()), None)
            .iter()
            .map(|e| e.split(':').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        ["spec.dnsConfig.searches", "spec.dnsConfig.options[0]"]
    );
    spec["dnsPolicy"] = json!("Sometimes");
    spec["dnsConfig"] = json!(null);
    assert_eq!(
        errors(&pod(spec), None),
        ["spec.dnsPolicy: Unsupported value: \"Sometimes\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""]
    );
}

#[test]
fn containers() {
    assert_eq!(errors(&pod(json!({"containers": []})), None), ["spec.containers: Required value"]);
    let p = pod(json!({"containers": [
        {"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 0}]},
        {"name": "web", "image": ""},
    ]}));
    assert_eq!(
        errors(&p, None),
        [
            "spec.containers[0].ports[1].name: Duplicate value: \"http\"",
            "spec.containers[0].ports[1].containerPort: Required value",
            "spec.containers[1].image: Required value",
            "spec.containers[1].name: Duplicate value: \"web\""
        ]
    );
    let p = pod(
        json!({"containers": [{"name": "Web", "image": "nginx", "ports": [{"name": "123_abc", "containerPort": 70000}]}]}),
    );
    let errs = errors(&p, None);
    assert!(errs[0].starts_with("spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"));
    assert_eq!(
        &errs[1..],
        [
            "spec.containers[0].ports[0].name: Invalid value: \"123_abc\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        ]
    );
    let p = pod(
        json!({"containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}),
    );
    assert_eq!(errors(&p, None), ["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]);
}

#[test]
fn hostnames_and_host_aliases() {
    let p = pod(json!({
        "hostname": "busybox-1", "subdomain": "default-subdomain", "restartPolicy": "Never",
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}, {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}],
        "containers": [{"name": "cat-hosts", "image": "busybox", "command": ["cat"], "args": ["/etc/hosts"]}]
    }));
    assert!(errors(&p, None).is_empty(), "{:?}", errors(&p, None));
    let p = pod(json!({
        "hostname": "Busy.box", "hostAliases": [{"ip": "10.1.2", "hostnames": ["foo.local"]}],
        "containers": [{"name": "c", "image": "busybox"}]
    }));
    let errs = errors(&p, None);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("spec.hostname: Invalid value: \"Busy.box\""));
    assert_eq!(errs[1], "spec.hostAliases[0].ip: Invalid value: \"10.1.2\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
}

#[test]
fn updates_may_only_change_images_and_friends() {
    let old = pod(nginx());
    let mut new = old.clone();
    if let Some(spec) = new.spec.as_mut() {
        spec.containers[0].image = Some("nginx:1.27".into());
        spec.active_deadline_seconds = Some(600);
    }
    assert!(errors(&new, Some(&old)).is_empty());
    let mut new = old.clone();
    if let Some(spec) = new.spec.as_mut() {
        spec.restart_policy = Some("Never".into());
    }
    let errs = errors(&new, Some(&old));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ));
    assert!(errs[0].contains("- \trestartPolicy: \"Always\",\n+ \trestartPolicy: \"Never\","), "{}", errs[0]);
    let mut new = old.clone();
    if let Some(spec) = new.spec.as_mut() {
        let mut sidecar = spec.containers[0].clone();
        sidecar.name = "sidecar".into();
        spec.containers.push(sidecar);
    }
    assert_eq!(errors(&new, Some(&old)), ["spec.containers: Forbidden: pod updates may not add or remove containers"]);
}

#[test]
fn create_preparation_and_status() {
    let mut p = pod(nginx());
    prepare_for_create(&mut p);
    let status = p.status.clone().unwrap_or_default();
    assert_eq!((status.phase.as_deref(), status.qos_class.as_deref()), (Some("Pending"), Some("BestEffort")));
    let mut running = p.clone();
    running.status = serde_json::from_value(json!({
        "phase": "Running", "qosClass": "BestEffort", "hostIP": "192.168.56.11",
        "hostIPs": [{"ip": "192.168.56.11"}], "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]
    }))
    .ok();
    assert!(validate_status(&running, &p).is_empty());
    running.status = serde_json::from_value(
        json!({"qosClass": "Guaranteed", "podIPs": [{"ip": "10.244.1.5"}, {"ip": "10.244.1.6"}]}),
    )
    .ok();
    let errs: Vec<String> = validate_status(&running, &p).iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        [
            "status.qosClass: Invalid value: \"Guaranteed\": field is immutable",
            "status.podIPs: Invalid value: [{\"ip\":\"10.244.1.5\"},{\"ip\":\"10.244.1.6\"}]: may specify no more than one IP for each IP family"
        ]
    );
    let mut guaranteed = pod(
        json!({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
    );
    prepare_for_create(&mut guaranteed);
    assert_eq!(guaranteed.status.and_then(|s| s.qos_class).as_deref(), Some("Guaranteed"));
}

#[test]
fn qos_class_follows_requests_and_limits_after_defaulting() {
    let qos = |spec: serde_json::Value| {
        let mut pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
        default_pod(&mut pod);
        prepare_for_create(&mut pod);
        pod.status.and_then(|s| s.qos_class).unwrap_or_default()
    };
    assert_eq!(qos(serde_json::json!({"containers": [{"name": "a"}]})), "BestEffort");
    assert_eq!(
        qos(serde_json::json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})),
        "Guaranteed"
    );
    assert_eq!(
        qos(serde_json::json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]})),
        "Burstable"
    );
}
