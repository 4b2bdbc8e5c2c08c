use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap_or_default()
}

fn defaulted(v: serde_json::Value) -> Service {
    let mut s = svc(v);
    default(&mut s, &AdmissionConfig::default());
    s
}

fn errors(s: &Service, old: Option<&Service>) -> Vec<String> {
    validate(s, old, &AdmissionConfig::default()).iter().map(ToString::to_string).collect()
}

fn base(spec: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": "my-service", "namespace": "default"}, "spec": spec})
}

#[test]
fn defaults_of_a_plain_service() {
    let s = defaulted(base(
        json!({"selector": {"app": "MyApp"}, "ports": [{"port": 80, "targetPort": 9376}, {"port": 81}]}),
    ));
    let sp = s.spec.clone().unwrap_or_default();
    assert_eq!(sp.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(sp.session_affinity.as_deref(), Some("None"));
    assert_eq!(sp.session_affinity_config, None);
    assert_eq!(sp.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(sp.external_traffic_policy, None);
    assert_eq!(sp.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(sp.ip_families, Some(vec!["IPv4".to_string()]));
    let ports = sp.ports.unwrap_or_default();
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(ports[0].target_port, Some(IntOrString::Int(9376)));
    assert_eq!(ports[1].target_port, Some(IntOrString::Int(81)), "targetPort defaults to port");
}

#[test]
fn client_ip_affinity_gets_the_default_timeout() {
    let s = defaulted(base(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]})));
    let timeout =
        s.spec.and_then(|sp| sp.session_affinity_config).and_then(|c| c.client_ip).and_then(|c| c.timeout_seconds);
    assert_eq!(timeout, Some(10800));
    let s = defaulted(base(json!({
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}},
        "ports": [{"port": 80}]
    })));
    assert_eq!(
        errors(&s, None),
        ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"]
    );
    let s = defaulted(base(json!({
        "sessionAffinity": "None",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "ports": [{"port": 80}]
    })));
    assert_eq!(s.spec.and_then(|sp| sp.session_affinity_config), None, "None drops the config");
}

#[test]
fn externally_accessible_services_get_traffic_policies() {
    let s = defaulted(base(json!({"type": "NodePort", "ports": [{"port": 80}]})));
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.external_traffic_policy.as_deref()), Some("Cluster"));
    let s = defaulted(base(json!({"type": "LoadBalancer", "ports": [{"port": 80}]})));
    let sp = s.spec.clone().unwrap_or_default();
    assert_eq!(sp.allocate_load_balancer_node_ports, Some(true));
    assert!(errors(&s, None).is_empty());
    let s = defaulted(base(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"]
    );
}

#[test]
fn the_seed_port_name_rules() {
    let s = defaulted(base(json!({"ports": [{"name": "123_abc", "port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.ports[0].name: Invalid value: \"123_abc\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
    let s = defaulted(base(json!({"ports": [{"name": "-web", "port": 80}]})));
    assert_eq!(errors(&s, None).len(), 1);
    let s = defaulted(base(json!({"ports": [{"name": "123-abc", "port": 80}, {"name": "web", "port": 81}]})));
    assert!(errors(&s, None).is_empty());
}

#[test]
fn multi_port_services_need_unique_names() {
    let s = defaulted(base(json!({"ports": [{"port": 80}, {"port": 443}]})));
    assert_eq!(errors(&s, None), ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]);
    let s = defaulted(base(json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 443}]})));
    assert_eq!(errors(&s, None), ["spec.ports[1].name: Duplicate value: \"http\""]);
    let s = defaulted(base(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]})));
    assert_eq!(errors(&s, None), ["spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}"]);
}

#[test]
fn ports_and_target_ports() {
    let s = defaulted(base(json!({"ports": [{"port": 0, "targetPort": "web_1"}]})));
    assert_eq!(
        errors(&s, None),
        [
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: \"web_1\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
        ]
    );
    let s = defaulted(base(json!({"ports": [{"port": 53, "protocol": "ICMP"}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""]
    );
    let s = defaulted(base(json!({})));
    assert_eq!(errors(&s, None), ["spec.ports: Required value"]);
}

#[test]
fn service_names_are_dns1035_labels() {
    let mut s = defaulted(base(json!({"ports": [{"port": 80}]})));
    s.metadata.name = Some("1st-service".into());
    assert_eq!(
        errors(&s, None),
        ["metadata.name: Invalid value: \"1st-service\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn node_ports_only_where_they_belong() {
    let s = defaulted(base(json!({"ports": [{"port": 80, "nodePort": 30080}]})));
    assert_eq!(errors(&s, None), ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]);
    let s = defaulted(base(
        json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}]}),
    ));
    assert_eq!(errors(&s, None), ["spec.ports[1].nodePort: Duplicate value: 30080"]);
}

#[test]
fn headless_services() {
    let s = defaulted(base(
        json!({"clusterIP": "None", "selector": {"name": "busybox"}, "ports": [{"name": "foo", "port": 1234, "targetPort": 1234}]}),
    ));
    let sp = s.spec.clone().unwrap_or_default();
    assert_eq!(sp.cluster_ips, Some(vec!["None".to_string()]));
    assert_eq!(sp.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(sp.ip_families, Some(vec!["IPv4".to_string()]));
    assert!(errors(&s, None).is_empty());
    let s = defaulted(base(json!({"clusterIP": "None"})));
    let sp = s.spec.clone().unwrap_or_default();
    assert_eq!(sp.ip_family_policy.as_deref(), Some("RequireDualStack"), "headless without selector");
    assert_eq!(sp.ip_families, Some(vec!["IPv4".to_string(), "IPv6".to_string()]));
    assert!(errors(&s, None).is_empty(), "{:?}", errors(&s, None));
    let s = defaulted(base(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
    );
}

#[test]
fn external_name_services() {
    let s = defaulted(base(json!({"type": "ExternalName", "externalName": "my.database.example.com"})));
    let sp = s.spec.clone().unwrap_or_default();
    assert_eq!((sp.ip_families, sp.ip_family_policy, sp.cluster_ips), (None, None, None));
    assert!(errors(&s, None).is_empty());
    let s = defaulted(base(json!({"type": "ExternalName"})));
    assert_eq!(errors(&s, None), ["spec.externalName: Required value"]);
    let s = defaulted(base(json!({"type": "ExternalName", "externalName": "Bad_Name", "clusterIP": "10.96.0.5"})));
    let errs = errors(&s, None);
    assert_eq!(errs[0], "spec.clusterIPs: Forbidden: may not be set for ExternalName services");
    assert!(errs[1].starts_with("spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
}

#[test]
fn cluster_ip_formats_and_pairing() {
    let s = defaulted(base(json!({"clusterIP": "10.96.0.300", "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    );
    let s = defaulted(base(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.6"], "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.clusterIPs: Invalid value: [\"10.96.0.6\"]: first value must match `clusterIP`"]
    );
    let s = defaulted(base(json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"]
    );
    let s = defaulted(base(json!({"externalIPs": ["80.11.12.10", "127.0.0.1", "nope"], "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        [
            "spec.externalIPs[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
            "spec.externalIPs[2]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]
    );
}

#[test]
fn load_balancer_source_ranges() {
    let s = defaulted(base(
        json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", " 192.168.0.0/16 ", "x"], "ports": [{"port": 80}]}),
    ));
    assert_eq!(
        errors(&s, None),
        ["spec.LoadBalancerSourceRanges[2]: Invalid value: \"x\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    );
    let s = defaulted(base(json!({"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 80}]})));
    assert_eq!(
        errors(&s, None),
        ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"]
    );
}

#[test]
fn cluster_ip_is_immutable_except_for_external_name() {
    let old = defaulted(base(json!({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]})));
    let mut new = old.clone();
    if let Some(sp) = new.spec.as_mut() {
        sp.cluster_ip = Some("10.96.0.6".into());
    }
    prepare_for_update(&mut new, &old);
    assert_eq!(
        errors(&new, Some(&old)),
        ["spec.clusterIPs[0]: Invalid value: [\"10.96.0.6\"]: may not change once set"]
    );
    // A client that leaves clusterIP out keeps the allocated one.
    let mut new = defaulted(base(json!({"ports": [{"port": 80}]})));
    prepare_for_update(&mut new, &old);
    assert_eq!(new.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref()), Some("10.96.0.5"));
    assert!(errors(&new, Some(&old)).is_empty());
    // Switching to ExternalName drops the IPs and families.
    let mut new = old.clone();
    if let Some(sp) = new.spec.as_mut() {
        sp.type_ = Some("ExternalName".into());
        sp.external_name = Some("example.com".into());
        sp.internal_traffic_policy = None;
    }
    prepare_for_update(&mut new, &old);
    let sp = new.spec.clone().unwrap_or_default();
    assert_eq!((sp.cluster_ip, sp.cluster_ips, sp.ip_families), (None, None, None));
    assert!(errors(&new, Some(&old)).is_empty(), "{:?}", errors(&new, Some(&old)));
}

#[test]
fn type_change_from_node_port_wipes_node_ports() {
    let old = defaulted(base(
        json!({"type": "NodePort", "clusterIP": "10.96.0.5", "ports": [{"port": 80, "nodePort": 30080}]}),
    ));
    let mut new = old.clone();
    if let Some(sp) = new.spec.as_mut() {
        sp.type_ = Some("ClusterIP".into());
    }
    prepare_for_update(&mut new, &old);
    let sp = new.spec.clone().unwrap_or_default();
    assert_eq!(sp.ports.unwrap_or_default()[0].node_port, None);
    assert_eq!(sp.external_traffic_policy, None);
    assert!(errors(&new, Some(&old)).is_empty(), "{:?}", errors(&new, Some(&old)));
    // An update that leaves nodePort out keeps the allocated port.
    let mut new = defaulted(base(json!({"type": "NodePort", "clusterIP": "10.96.0.5", "ports": [{"port": 80}]})));
    prepare_for_update(&mut new, &old);
    assert_eq!(new.spec.and_then(|sp| sp.ports).unwrap_or_default()[0].node_port, Some(30080));
}

#[test]
fn load_balancer_status() {
    let mut s = defaulted(base(json!({"type": "LoadBalancer", "ports": [{"port": 80}]})));
    let old = s.clone();
    s.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.240"}]}})).ok();
    default(&mut s, &AdmissionConfig::default());
    let mode = s.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|lb| lb.ingress.clone());
    assert_eq!(mode.unwrap_or_default()[0].ip_mode.as_deref(), Some("VIP"));
    assert!(validate_status(&s, &old).is_empty());
    let mut c = defaulted(base(json!({"ports": [{"port": 80}]})));
    c.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.240"}]}})).ok();
    let errs: Vec<String> = validate_status(&c, &c.clone()).iter().map(ToString::to_string).collect();
    assert_eq!(errs, ["status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]);
}
