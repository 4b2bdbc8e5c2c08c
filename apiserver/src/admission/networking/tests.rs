use super::*;
use serde_json::json;

fn strings(errs: Vec<FieldError>) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn policy(spec: serde_json::Value) -> NetworkPolicy {
    let mut np: NetworkPolicy = serde_json::from_value(
        json!({"metadata": {"name": "test-network-policy", "namespace": "default"}, "spec": spec}),
    )
    .unwrap_or_default();
    default_network_policy(&mut np);
    np
}

#[test]
fn the_seed_policy_is_valid_and_defaulted() {
    let np = policy(json!({
        "podSelector": {"matchLabels": {"role": "db"}},
        "ingress": [{
            "from": [
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                {"podSelector": {"matchLabels": {"role": "frontend"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 6379}]
        }],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 5978}]}]
    }));
    let spec = np.spec.clone().unwrap_or_default();
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string(), "Egress".to_string()]));
    let egress_port = spec.egress.unwrap_or_default()[0].ports.clone().unwrap_or_default()[0].clone();
    assert_eq!(egress_port.protocol.as_deref(), Some("TCP"));
    assert!(validate_network_policy(&np, None).is_empty());
    let deny_all = policy(json!({"podSelector": {}}));
    assert_eq!(deny_all.spec.and_then(|s| s.policy_types), Some(vec!["Ingress".to_string()]));
}

#[test]
fn ip_blocks_ports_and_peers() {
    let np = policy(json!({
        "podSelector": {},
        "ingress": [{
            "from": [
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["10.0.0.0/24", "172.17.0.0/16"]}},
                {},
                {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}
            ],
            "ports": [{"port": 80, "endPort": 79}, {"port": "http", "endPort": 90}, {"endPort": 90}, {"port": 80, "protocol": "ICMP"}]
        }]
    }));
    assert_eq!(
        strings(validate_network_policy(&np, None)),
        [
            "spec.ingress[0].ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`",
            "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
            "spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is not specified",
            "spec.ingress[0].ports[3].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.0.0.0/24\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: \"172.17.0.0/16\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1]: Required value: must specify a peer",
            "spec.ingress[0].from[2]: Forbidden: may not specify both ipBlock and another peer"
        ]
    );
    let np = policy(json!({"podSelector": {}, "policyTypes": ["Ingress", "Sideways"]}));
    assert_eq!(
        strings(validate_network_policy(&np, None)),
        ["spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\""]
    );
    let np = policy(json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]}));
    assert_eq!(
        strings(validate_network_policy(&np, None)),
        ["spec.egress[0].to[0].ipBlock.cidr: Invalid value: \"10.0.0/8\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    );
}

#[test]
fn ingresses() {
    let ing: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "my-ingress-for-nginx", "namespace": "default"},
        "spec": {"rules": [{"host": "a.demo.kuboard.cn", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "nginx-service", "port": {"number": 80}}}}
        ]}}]}
    }))
    .unwrap_or_default();
    assert!(validate_ingress(&ing, None).is_empty());
    let bad: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
            {"path": "/a//b", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}},
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "/", "pathType": "Prefix", "backend": {}}
        ]}}]}
    }))
    .unwrap_or_default();
    assert_eq!(
        strings(validate_ingress(&bad, None)),
        [
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
            "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'",
            "spec.rules[0].http.paths[0].backend: Invalid value: \"\": cannot set both port name & port number",
            "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified",
            "spec.rules[0].http.paths[2].backend: Invalid value: \"\": resource or service backend is required"
        ]
    );
    let empty: Ingress = serde_json::from_value(json!({"metadata": {"name": "e", "namespace": "default"}, "spec": {}}))
        .unwrap_or_default();
    assert_eq!(
        strings(validate_ingress(&empty, None)),
        ["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"]
    );
}

#[test]
fn ingress_classes() {
    let mut ic: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "nginx"},
        "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"kind": "IngressParameters", "name": "p", "apiGroup": "k8s.example.com"}}
    }))
    .unwrap_or_default();
    default_ingress_class(&mut ic);
    assert_eq!(ic.spec.as_ref().and_then(|s| s.parameters.as_ref()).and_then(|p| p.scope.as_deref()), Some("Cluster"));
    assert!(validate_ingress_class(&ic, None).is_empty());
    let bad: IngressClass =
        serde_json::from_value(json!({"metadata": {"name": "nginx"}, "spec": {"controller": "nginx"}}))
            .unwrap_or_default();
    assert_eq!(
        strings(validate_ingress_class(&bad, None)),
        ["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"]
    );
    assert_eq!(
        strings(validate_ingress_class(&bad, Some(&ic))),
        [
            "spec.controller: Invalid value: \"nginx\": field is immutable",
            "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        ]
    );
}
