//! networking.k8s.io: NetworkPolicies (policyTypes and port protocol defaults, peers,
//! ports and endPort, ipBlock CIDRs with `except` inside them), Ingresses (rules, paths,
//! backends, TLS) and IngressClasses (controller, parameters and their scope).

use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{
    IPBlock, Ingress, IngressBackend, IngressClass, IngressClassParametersReference, IngressStatus, NetworkPolicy,
    NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;
use serde_json::Value;

use super::{meta, s};

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const MAX_CONTROLLER_LEN: usize = 250;
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

/// `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`.
pub fn default_network_policy(np: &mut NetworkPolicy) {
    let spec = np.spec.get_or_insert_with(Default::default);
    if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
        let mut types = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".into());
        }
        spec.policy_types = Some(types);
    }
    let ingress_ports = spec.ingress.iter_mut().flatten().flat_map(|r| r.ports.iter_mut().flatten());
    let egress_ports = spec.egress.iter_mut().flatten().flat_map(|r| r.ports.iter_mut().flatten());
    for port in ingress_ports.chain(egress_ports) {
        if port.protocol.is_none() {
            port.protocol = Some("TCP".into());
        }
    }
}

/// `SetDefaults_IngressClass`: parameters default to cluster scope.
pub fn default_ingress_class(ic: &mut IngressClass) {
    if let Some(params) = ic.spec.as_mut().and_then(|sp| sp.parameters.as_mut()) {
        if params.scope.is_none() {
            params.scope = Some("Cluster".into());
        }
    }
}

pub fn prepare_ingress_create(ing: &mut Ingress) {
    ing.status = Some(IngressStatus::default());
}

/// `ValidateNetworkPolicy` / `ValidateNetworkPolicyUpdate`.
pub fn validate_network_policy(np: &NetworkPolicy, old: Option<&NetworkPolicy>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&np.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&np.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    let spec = np.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    let pod_selector = spec.pod_selector.clone().unwrap_or_default();
    errs.extend(meta::validate_label_selector(Some(&pod_selector), &path.child("podSelector")));
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let p = path.child("ingress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_policy_port(port, &p.child("ports").index(j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &p.child("from").index(j)));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let p = path.child("egress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_policy_port(port, &p.child("ports").index(j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &p.child("to").index(j)));
        }
    }
    let types = spec.policy_types.clone().unwrap_or_default();
    if types.len() > 2 {
        errs.push(FieldError::invalid(&path.child("policyTypes"), types, "may not specify more than two policyTypes"));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if !matches!(t.as_str(), "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                &path.child("policyTypes").index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

fn validate_policy_port(port: &NetworkPolicyPort, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(proto) = port.protocol.as_deref() {
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            errs.push(FieldError::not_supported(&path.child("protocol"), proto, &["TCP", "UDP", "SCTP"]));
        }
    }
    let end_path = path.child("endPort");
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(n)), end) => {
            errs.extend(meta::each(&path.child("port"), *n, v::is_valid_port_num((*n).into())));
            if let Some(end) = end {
                if end < *n {
                    errs.push(FieldError::invalid(&end_path, end, "must be greater than or equal to `port`"));
                }
                errs.extend(meta::each(&end_path, end, v::is_valid_port_num(end.into())));
            }
        }
        (Some(IntOrString::String(name)), end) => {
            if let Some(end) = end {
                errs.push(FieldError::invalid(&end_path, end, "may not be specified when `port` is non-numeric"));
            }
            errs.extend(meta::each(&path.child("port"), name.as_str(), v::is_valid_port_name(name)));
        }
        (None, Some(end)) => {
            errs.push(FieldError::invalid(&end_path, end, "may not be specified when `port` is not specified"))
        }
        (None, None) => {}
    }
    errs
}

fn validate_peer(peer: &NetworkPolicyPeer, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut peers = 0;
    if let Some(sel) = &peer.pod_selector {
        peers += 1;
        errs.extend(meta::validate_label_selector(Some(sel), &path.child("podSelector")));
    }
    if let Some(sel) = &peer.namespace_selector {
        peers += 1;
        errs.extend(meta::validate_label_selector(Some(sel), &path.child("namespaceSelector")));
    }
    if let Some(block) = &peer.ip_block {
        peers += 1;
        errs.extend(validate_ip_block(block, &path.child("ipBlock")));
    }
    if peers == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if peers > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(path, "may not specify both ipBlock and another peer"));
    }
    errs
}

/// `ValidateIPBlock`: a valid CIDR, and `except` entries strictly inside it.
fn validate_ip_block(block: &IPBlock, path: &Path) -> Vec<FieldError> {
    if block.cidr.is_empty() {
        return vec![FieldError::required(&path.child("cidr"), "")];
    }
    let mut errs = meta::cidr(&block.cidr, &path.child("cidr"));
    let Some((_, net)) = v::parse_cidr_sloppy(&block.cidr) else { return errs };
    for (i, except) in block.except.iter().flatten().enumerate() {
        let p = path.child("except").index(i);
        errs.extend(meta::cidr(except, &p));
        let Some((_, ex)) = v::parse_cidr_sloppy(except) else { continue };
        if !net.contains(&ex.network()) || net.prefix_len() >= ex.prefix_len() {
            errs.push(FieldError::invalid(&p, except.as_str(), "must be a strict subset of `cidr`"));
        }
    }
    errs
}

/// `ValidateIngressCreate` / `ValidateIngressUpdate`.
pub fn validate_ingress(ing: &Ingress, old: Option<&Ingress>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&ing.metadata, &old.metadata, &meta_path));
    }
    errs.extend(meta::validate_object_meta(&ing.metadata, true, v::name_is_dns_subdomain, &meta_path));
    let spec = ing.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    let rules = spec.rules.clone().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        errs.push(FieldError::invalid(&path, Value::Null, "either `defaultBackend` or `rules` must be specified"));
    }
    if let Some(backend) = &spec.default_backend {
        errs.extend(validate_backend(backend, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let p = path.child("rules").index(i);
        let host = s(&rule.host);
        if !host.is_empty() {
            if v::parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(&p.child("host"), host, "must be a DNS name, not an IP address"));
            }
            let msgs =
                if host.contains('*') { v::is_wildcard_dns1123_subdomain(host) } else { v::is_dns1123_subdomain(host) };
            errs.extend(meta::each(&p.child("host"), host, msgs));
        }
        if let Some(http) = &rule.http {
            let hp = p.child("http");
            if http.paths.is_empty() {
                errs.push(FieldError::required(&hp.child("paths"), ""));
            }
            for (j, path) in http.paths.iter().enumerate() {
                let pp = hp.child("paths").index(j);
                errs.extend(validate_http_path(s(&path.path), &path.path_type, &pp));
                if !path.path_type.is_empty() {
                    errs.extend(validate_backend(&path.backend, &pp.child("backend")));
                }
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let p = path.child("tls").index(i);
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            let msgs =
                if host.contains('*') { v::is_wildcard_dns1123_subdomain(host) } else { v::is_dns1123_subdomain(host) };
            errs.extend(meta::each(&p.child("hosts").index(j), host.as_str(), msgs));
        }
        if let Some(secret) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) {
            errs.extend(meta::each(&p.child("secretName"), secret, v::name_is_dns_subdomain(secret, false)));
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(meta::each(
            &path.child("ingressClassName"),
            class.as_str(),
            v::name_is_dns_subdomain(class, false),
        ));
    }
    if old.is_none() {
        let annotation = ing.metadata.annotations.as_ref().and_then(|a| a.get(INGRESS_CLASS_ANNOTATION));
        if let (Some(value), Some(class)) = (annotation, &spec.ingress_class_name) {
            if value != class {
                errs.push(FieldError::invalid(
                    &Path::new("annotations").child(INGRESS_CLASS_ANNOTATION),
                    value.as_str(),
                    "must match `ingressClassName` when both are specified",
                ));
            }
        }
    }
    errs
}

fn validate_http_path(path: &str, path_type: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match path_type {
        "" => return vec![FieldError::required(&p.child("pathType"), "pathType must be specified")],
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                errs.push(FieldError::invalid(&p.child("path"), path, "must be an absolute path"));
            }
            for seq in INVALID_PATH_SEQUENCES {
                if path.contains(seq) {
                    errs.push(FieldError::invalid(&p.child("path"), path, format!("must not contain '{seq}'")));
                }
            }
            for suffix in INVALID_PATH_SUFFIXES {
                if path.ends_with(suffix) {
                    errs.push(FieldError::invalid(&p.child("path"), path, format!("cannot end with '{suffix}'")));
                }
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                errs.push(FieldError::invalid(&p.child("path"), path, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(
            &p.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs
}

fn validate_backend(backend: &IngressBackend, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(path, "", "cannot set both resource and service backends")),
        (Some(resource), None) => errs.extend(validate_object_reference(resource, &path.child("resource"))),
        (None, Some(svc)) => {
            let name_path = path.child("service").child("name");
            if svc.name.is_empty() {
                errs.push(FieldError::required(&name_path, ""));
            } else {
                errs.extend(meta::each(&name_path, svc.name.as_str(), v::name_is_dns1035_label(&svc.name, false)));
            }
            let port = svc.port.clone().unwrap_or_default();
            let name = s(&port.name);
            let number = port.number.unwrap_or(0);
            let port_path = path.child("service").child("port");
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(path, "", "cannot set both port name & port number")),
                (false, true) => errs.extend(meta::each(&port_path.child("name"), name, v::is_valid_port_name(name))),
                (true, false) => {
                    errs.extend(meta::each(&port_path.child("number"), number, v::is_valid_port_num(number.into())))
                }
                (true, true) => errs.push(FieldError::required(path, "port name or number is required")),
            }
        }
        (None, None) => errs.push(FieldError::invalid(path, "", "resource or service backend is required")),
    }
    errs
}

fn validate_object_reference(r: &TypedLocalObjectReference, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(group) = &r.api_group {
        errs.extend(meta::dns1123_subdomain(group, &path.child("apiGroup")));
    }
    for (value, name) in [(&r.kind, "kind"), (&r.name, "name")] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child(name), ""));
        } else {
            errs.extend(meta::each(&path.child(name), value.as_str(), v::is_path_segment_name(value)));
        }
    }
    errs
}

/// `ValidateIngressStatusUpdate`.
pub fn validate_ingress_status(ing: &Ingress, old: &Ingress) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&ing.metadata, &old.metadata, &Path::new("metadata"));
    let ingress = ing.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|lb| lb.ingress.clone());
    for (i, lb) in ingress.iter().flatten().enumerate() {
        let p = Path::new("status").child("loadBalancer").child("ingress").index(i);
        if let Some(ip) = lb.ip.as_deref().filter(|ip| !ip.is_empty()) {
            errs.extend(meta::ip(ip, &p.child("ip")));
        }
        if let Some(host) = lb.hostname.as_deref().filter(|h| !h.is_empty()) {
            errs.extend(meta::dns1123_subdomain(host, &p.child("hostname")));
            if v::parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(&p.child("hostname"), host, "must be a DNS name, not an IP address"));
            }
        }
    }
    errs
}

/// `ValidateIngressClass` / `ValidateIngressClassUpdate`.
pub fn validate_ingress_class(ic: &IngressClass, old: Option<&IngressClass>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = Vec::new();
    let spec = ic.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&ic.metadata, &old.metadata, &meta_path));
        let old_controller = old.spec.as_ref().and_then(|sp| sp.controller.clone());
        errs.extend(meta::immutable_str(&spec.controller, &old_controller, &path.child("controller")));
    }
    errs.extend(meta::validate_object_meta(&ic.metadata, false, v::name_is_dns_subdomain, &meta_path));
    let controller = s(&spec.controller);
    let cp = path.child("controller");
    if controller.is_empty() {
        errs.push(FieldError::required(&cp, ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long(&cp, MAX_CONTROLLER_LEN));
        }
        errs.extend(domain_prefixed_path(controller, &cp));
    }
    if let Some(params) = &spec.parameters {
        errs.extend(validate_parameters(params, &path.child("parameters")));
    }
    errs
}

/// `IsDomainPrefixedPath`: `acme.io/foo`.
fn domain_prefixed_path(value: &str, path: &Path) -> Vec<FieldError> {
    let Some((host, rest)) = value.split_once('/').filter(|(h, r)| !h.is_empty() && !r.is_empty()) else {
        return vec![FieldError::invalid(path, value, "must be a domain-prefixed path (such as \"acme.io/foo\")")];
    };
    let mut errs = meta::each(path, host, v::is_dns1123_subdomain(host));
    errs.extend(meta::each(path, rest, v::is_http_path(rest)));
    errs
}

fn validate_parameters(params: &IngressClassParametersReference, path: &Path) -> Vec<FieldError> {
    let reference = TypedLocalObjectReference {
        api_group: params.api_group.clone(),
        kind: params.kind.clone(),
        name: params.name.clone(),
    };
    let mut errs = validate_object_reference(&reference, path);
    let Some(scope) = params.scope.as_deref() else {
        errs.push(FieldError::required(&path.child("scope"), ""));
        return errs;
    };
    match scope {
        "Namespace" => match params.namespace.as_deref() {
            None => {
                errs.push(FieldError::required(&path.child("namespace"), "`parameters.scope` is set to 'Namespace'"))
            }
            Some(ns) => errs.extend(meta::each(&path.child("namespace"), ns, v::name_is_dns_label(ns, false))),
        },
        "Cluster" => {
            if params.namespace.is_some() {
                errs.push(FieldError::forbidden(&path.child("namespace"), "`parameters.scope` is set to 'Cluster'"));
            }
        }
        other => errs.push(FieldError::not_supported(&path.child("scope"), other, &["Cluster", "Namespace"])),
    }
    errs
}

#[cfg(test)]
mod tests;
