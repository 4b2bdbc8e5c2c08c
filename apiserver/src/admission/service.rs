//! Services: defaulting (`SetDefaults_Service`, clusterIP/ipFamilies initialisation),
//! the update preparation of kube-apiserver's service strategy and REST storage
//! (`patchAllocatedValues`, `NormalizeClusterIPs`, `dropTypeDependentFields`) and
//! validation (`ValidateService`, `ValidateServiceUpdate`, `ValidateServiceStatusUpdate`).
//!
//! Allocation itself (ClusterIPs from the range, node ports, conflicts) is the
//! allocator's job; validation here only checks formats and relations between fields.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;

use super::meta;
use super::{s, AdmissionConfig, IpFamily};

/// `v1.DefaultClientIPServiceAffinitySeconds`.
pub const DEFAULT_CLIENT_IP_TIMEOUT: i32 = 10800;
/// `core.MaxClientIPServiceAffinitySeconds`.
pub const MAX_CLIENT_IP_TIMEOUT: i32 = 86400;
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const LB_SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
const TOPOLOGY_HINTS_ANNOTATION: &str = "service.kubernetes.io/topology-aware-hints";
const TOPOLOGY_MODE_ANNOTATION: &str = "service.kubernetes.io/topology-mode";

fn spec(svc: &Service) -> ServiceSpec {
    svc.spec.clone().unwrap_or_default()
}

fn is_headless(spec: &ServiceSpec) -> bool {
    matches!(spec.cluster_ips.as_deref(), Some([only]) if only == "None")
}

/// `ExternallyAccessible`: NodePort, LoadBalancer, or ClusterIP with external IPs.
fn externally_accessible(spec: &ServiceSpec) -> bool {
    match s(&spec.type_) {
        "NodePort" | "LoadBalancer" => true,
        "ClusterIP" => spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

fn needs_health_check(spec: &ServiceSpec) -> bool {
    s(&spec.type_) == "LoadBalancer" && s(&spec.external_traffic_policy) == "Local"
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    s(&spec.type_) != "ExternalName"
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    matches!(s(&spec.type_), "NodePort" | "LoadBalancer")
}

/// Applies kube-apiserver's Service defaults.
pub fn default(svc: &mut Service, cfg: &AdmissionConfig) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    if s(&spec.session_affinity).is_empty() {
        spec.session_affinity = Some("None".into());
    }
    match s(&spec.session_affinity) {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig { timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT) }),
                });
            }
        }
        _ => {}
    }
    if s(&spec.type_).is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }
    for port in spec.ports.iter_mut().flatten() {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(name)) => name.is_empty(),
            Some(_) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec) && s(&spec.external_traffic_policy).is_empty() {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if spec.internal_traffic_policy.is_none() && matches!(s(&spec.type_), "NodePort" | "LoadBalancer" | "ClusterIP") {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if s(&spec.type_) == "LoadBalancer" {
        if spec.allocate_load_balancer_node_ports.is_none() {
            spec.allocate_load_balancer_node_ports = Some(true);
        }
        let ingress = svc.status.as_mut().and_then(|st| st.load_balancer.as_mut()).and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if !s(&ing.ip).is_empty() && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".into());
            }
        }
    }
    if let Some(spec) = svc.spec.as_mut() {
        init_cluster_ips(spec, cfg);
    }
}

/// `NormalizeClusterIPs` for a create and the family defaults of `initIPFamilyFields`
/// (single-stack clusters; a headless Service without selector asks for dual-stack).
fn init_cluster_ips(spec: &mut ServiceSpec, cfg: &AdmissionConfig) {
    if !s(&spec.cluster_ip).is_empty() && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
        spec.cluster_ips = Some(vec![s(&spec.cluster_ip).to_string()]);
    }
    if !needs_cluster_ip(spec) {
        return;
    }
    let headless_selectorless =
        s(&spec.cluster_ip) == "None" && spec.selector.as_ref().is_none_or(|sel| sel.is_empty());
    if spec.ip_family_policy.is_none() {
        let policy = if headless_selectorless { "RequireDualStack" } else { "SingleStack" };
        spec.ip_family_policy = Some(policy.into());
    }
    let mut families = spec.ip_families.clone().unwrap_or_default();
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if ip == "None" {
            break;
        }
        let Some(family) = v::parse_ip_sloppy(ip).map(|ip| IpFamily::of(&ip)) else { break };
        if i >= families.len() && cfg.has_family(family) {
            families.push(family.name().to_string());
        }
    }
    if families.is_empty() {
        families.push(cfg.default_family().name().to_string());
    }
    if headless_selectorless && families.len() < 2 && s(&spec.ip_family_policy) != "SingleStack" {
        let other = if families[0] == "IPv4" { "IPv6" } else { "IPv4" };
        families.push(other.into());
    }
    spec.ip_families = Some(families);
}

/// `PrepareForCreate`: a new Service starts with an empty load-balancer status.
pub fn prepare_for_create(svc: &mut Service) {
    svc.status = Some(ServiceStatus { load_balancer: Some(LoadBalancerStatus::default()), conditions: None });
}

/// kube-apiserver's service update preparation: keep allocated values the client left
/// out, keep clusterIP and clusterIPs in step, wipe fields the new type does not use, and
/// keep the stored status (status changes go through `/status`).
pub fn prepare_for_update(svc: &mut Service, old: &Service) {
    let old_spec = spec(old);
    let new_spec = svc.spec.get_or_insert_with(Default::default);
    patch_allocated_values(new_spec, &old_spec);
    normalize_cluster_ips_on_update(new_spec, &old_spec);
    drop_type_dependent_fields(new_spec, &old_spec);
    svc.status = old.status.clone();
    if s(&spec(svc).type_) != "LoadBalancer" {
        if let Some(st) = svc.status.as_mut() {
            st.load_balancer = Some(LoadBalancerStatus::default());
        }
    }
}

fn node_ports(spec: &ServiceSpec) -> BTreeSet<i32> {
    spec.ports.iter().flatten().filter_map(|p| p.node_port).filter(|n| *n != 0).collect()
}

fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if s(&new.cluster_ip).is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_ips.as_ref().is_none_or(Vec::is_empty) && old.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        {
            new.cluster_ips = old.cluster_ips.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let used: BTreeSet<i32> = node_ports(old).intersection(&node_ports(new)).copied().collect();
        for port in new.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) != 0 {
                continue;
            }
            let old_val = old
                .ports
                .iter()
                .flatten()
                .rev()
                .find(|p| s(&p.name) == s(&port.name))
                .and_then(|p| p.node_port)
                .unwrap_or(0);
            if old_val != 0 && !used.contains(&old_val) {
                port.node_port = Some(old_val);
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && new.health_check_node_port.unwrap_or(0) == 0 {
        new.health_check_node_port = old.health_check_node_port;
    }
}

fn same_cluster_ips(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    s(&a.cluster_ip) == s(&b.cluster_ip)
        && a.cluster_ips.as_deref().unwrap_or(&[]) == b.cluster_ips.as_deref().unwrap_or(&[])
}

fn normalize_cluster_ips_on_update(new: &mut ServiceSpec, old: &ServiceSpec) {
    let old_ips = old.cluster_ips.as_deref().unwrap_or(&[]);
    if !old_ips.is_empty()
        && new.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        && s(&old.cluster_ip) == s(&new.cluster_ip)
    {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if s(&old.cluster_ip) != s(&new.cluster_ip) {
        let same_plural = old_ips == new.cluster_ips.as_deref().unwrap_or(&[]);
        if !s(&old.cluster_ip).is_empty() && s(&new.cluster_ip).is_empty() && same_plural {
            new.cluster_ips = None;
        }
        if !s(&new.cluster_ip).is_empty() && same_plural {
            new.cluster_ips = Some(vec![s(&new.cluster_ip).to_string()]);
        }
    }
}

fn drop_type_dependent_fields(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same_cluster_ips(old, new) {
            new.cluster_ip = None;
            new.cluster_ips = None;
        }
        if old.ip_families == new.ip_families {
            new.ip_families = None;
        }
        if s(&old.ip_family_policy) == s(&new.ip_family_policy) {
            new.ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(new) && node_ports(old).is_superset(&node_ports(new)) {
        for port in new.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    if needs_health_check(old) && !needs_health_check(new) && old.health_check_node_port == new.health_check_node_port {
        new.health_check_node_port = None;
    }
    if s(&old.type_) == "LoadBalancer" && s(&new.type_) != "LoadBalancer" {
        if new.allocate_load_balancer_node_ports.is_some()
            && old.allocate_load_balancer_node_ports == new.allocate_load_balancer_node_ports
        {
            new.allocate_load_balancer_node_ports = None;
        }
        if old.load_balancer_class == new.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && old.external_traffic_policy == new.external_traffic_policy
    {
        new.external_traffic_policy = None;
    }
}

/// `ValidateService` (create) or `ValidateServiceUpdate` (update).
pub fn validate(svc: &Service, old: Option<&Service>, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = spec(svc);
    if let Some(old) = old {
        let osp = spec(old);
        errs.extend(meta::validate_object_meta_update(&svc.metadata, &old.metadata, &Path::new("metadata")));
        errs.extend(upgrade_downgrade_cluster_ips(&osp, &sp));
        errs.extend(upgrade_downgrade_ip_families(&osp, &sp));
        errs.extend(load_balancer_class(Some(&osp), &sp));
        if needs_health_check(&osp)
            && needs_health_check(&sp)
            && osp.health_check_node_port != sp.health_check_node_port
        {
            errs.push(FieldError::forbidden(&Path::new("spec").child("healthCheckNodePort"), "field is immutable"));
        }
    }
    errs.extend(validate_service(svc, &sp, cfg));
    errs
}

fn validate_service(svc: &Service, sp: &ServiceSpec, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = meta::validate_object_meta(&svc.metadata, true, v::name_is_dns1035_label, &meta_path);
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    if let (Some(mode), Some(hints)) =
        (annotations.get(TOPOLOGY_MODE_ANNOTATION), annotations.get(TOPOLOGY_HINTS_ANNOTATION))
    {
        if mode != hints {
            errs.push(FieldError::invalid(
                &meta_path.child("annotations").key(TOPOLOGY_MODE_ANNOTATION),
                mode.as_str(),
                format!("must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified"),
            ));
        }
    }
    let spec_path = Path::new("spec");
    let typ = s(&sp.type_);
    let ports = sp.ports.as_deref().unwrap_or(&[]);
    let headless = is_headless(sp);
    let cluster_ips = sp.cluster_ips.as_deref().unwrap_or(&[]);
    if ports.is_empty() && !headless && typ != "ExternalName" {
        errs.push(FieldError::required(&spec_path.child("ports"), ""));
    }
    match typ {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            &spec_path.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {typ} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if sp.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if sp.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(&sp.external_name);
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(&spec_path.child("externalName"), ""));
            } else {
                errs.extend(meta::dns1123_subdomain(cname, &spec_path.child("externalName")));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_port(port, ports.len() > 1, &mut names, &spec_path.child("ports").index(i)));
    }
    if sp.selector.is_some() {
        errs.extend(meta::validate_labels(sp.selector.as_ref(), &spec_path.child("selector")));
    }
    errs.extend(validate_session_affinity(sp, &spec_path));
    errs.extend(cluster_ips_related(sp));
    errs.extend(families_configured(sp, cfg));
    for (i, ip) in sp.external_ips.iter().flatten().enumerate() {
        let p = spec_path.child("externalIPs").index(i);
        let bad = meta::ip(ip, &p);
        if bad.is_empty() {
            errs.extend(meta::non_special_ip(ip, &p));
        } else {
            errs.extend(bad);
        }
    }
    if typ.is_empty() {
        errs.push(FieldError::required(&spec_path.child("type"), ""));
    } else if !TYPES.contains(&typ) {
        errs.push(FieldError::not_supported(&spec_path.child("type"), typ, TYPES));
    }
    if typ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    errs.extend(duplicate_ports(ports, &spec_path));
    errs.extend(validate_source_ranges(svc, sp, &spec_path));
    if sp.allocate_load_balancer_node_ports.is_some() && typ != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &spec_path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if typ == "LoadBalancer" && sp.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required(&Path::new("allocateLoadBalancerNodePorts"), ""));
    }
    errs.extend(load_balancer_class(None, sp));
    errs.extend(validate_traffic_policies(sp, &spec_path));
    errs
}

fn validate_port(port: &ServicePort, require_name: bool, names: &mut BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(meta::dns1123_label(name, &path.child("name")));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    errs.extend(meta::each(&path.child("port"), port.port, v::is_valid_port_num(port.port.into())));
    let protocol = s(&port.protocol);
    if protocol.is_empty() {
        errs.push(FieldError::required(&path.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(&path.child("protocol"), protocol, PROTOCOLS));
    }
    errs.extend(port_num_or_name(port.target_port.as_ref().unwrap_or(&IntOrString::Int(0)), &path.child("targetPort")));
    if let Some(app) = &port.app_protocol {
        errs.extend(meta::qualified_name(app, &path.child("appProtocol")));
    }
    errs
}

/// `ValidatePortNumOrName`: a number 1-65535 or an IANA service name.
pub fn port_num_or_name(port: &IntOrString, path: &Path) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => meta::each(path, *n, v::is_valid_port_num((*n).into())),
        IntOrString::String(name) => meta::each(path, name.as_str(), v::is_valid_port_name(name)),
    }
}

fn validate_session_affinity(sp: &ServiceSpec, spec_path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = spec_path.child("sessionAffinity");
    let affinity = s(&sp.session_affinity);
    if affinity.is_empty() {
        errs.push(FieldError::required(&path, ""));
    } else if !matches!(affinity, "ClientIP" | "None") {
        errs.push(FieldError::not_supported(&path, affinity, &["ClientIP", "None"]));
    }
    let cfg_path = spec_path.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let when = "when session affinity type is ClientIP";
        let Some(config) = &sp.session_affinity_config else {
            errs.push(FieldError::required(&cfg_path, when));
            return errs;
        };
        let Some(client_ip) = &config.client_ip else {
            errs.push(FieldError::required(&cfg_path.child("clientIP"), when));
            return errs;
        };
        let timeout_path = cfg_path.child("clientIP").child("timeoutSeconds");
        match client_ip.timeout_seconds {
            None => errs.push(FieldError::required(&timeout_path, when)),
            Some(t) if t <= 0 || t > MAX_CLIENT_IP_TIMEOUT => errs.push(FieldError::invalid(
                &timeout_path,
                t,
                format!("must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}"),
            )),
            Some(_) => {}
        }
    } else if affinity == "None" && sp.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(&cfg_path, "must not be set when session affinity is None"));
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips_related(sp: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s(&sp.type_) == "ExternalName" {
        return errs;
    }
    let spec_path = Path::new("spec");
    let ips_path = spec_path.child("clusterIPs");
    let ips = sp.cluster_ips.clone().unwrap_or_default();
    let cluster_ip = s(&sp.cluster_ip);
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(&ips_path, ips.clone(), "first value must match `clusterIP`"));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(&ips_path, ips.clone(), "must be empty when `clusterIP` is not specified"));
    }
    let families = sp.ip_families.clone().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, family) in families.iter().enumerate() {
        let p = spec_path.child("ipFamilies").index(i);
        if !matches!(family.as_str(), "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(&p, family.as_str(), &["IPv4", "IPv6"]));
        }
        if !seen.insert(family.clone()) {
            errs.push(FieldError::duplicate(&p, family.as_str()));
        }
    }
    if let Some(policy) = &sp.ip_family_policy {
        if !matches!(policy.as_str(), "PreferDualStack" | "RequireDualStack" | "SingleStack") {
            errs.push(FieldError::not_supported(
                &spec_path.child("ipFamilyPolicy"),
                policy.as_str(),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(FieldError::invalid(&ips_path, ips.clone(), "'None' must be the first and only value"));
            }
            continue;
        }
        let bad = meta::ip(ip, &ips_path.index(i));
        invalid_ips |= !bad.is_empty();
        errs.extend(bad);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(&ips_path, ips.clone(), "may only hold up to 2 values"));
    }
    if invalid_ips {
        return errs;
    }
    if ips.len() > 1 {
        let fams: BTreeSet<IpFamily> =
            ips.iter().filter_map(|ip| v::parse_ip_sloppy(ip)).map(|ip| IpFamily::of(&ip)).collect();
        if fams.len() < 2 {
            errs.push(FieldError::invalid(
                &ips_path,
                ips.clone(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(sp) {
        for (i, (ip, family)) in ips.iter().zip(families.iter()).enumerate() {
            let is_v6 = v::parse_ip_sloppy(ip).is_some_and(|ip| IpFamily::of(&ip) == IpFamily::V6);
            if family == "IPv4" && is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// The allocator-side checks of `initIPFamilyFields`: families and dual-stack must be
/// configured on this cluster (headless Services without selector are exempt).
fn families_configured(sp: &ServiceSpec, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s(&sp.type_) == "ExternalName" {
        return errs;
    }
    let headless_selectorless = s(&sp.cluster_ip) == "None" && sp.selector.as_ref().is_none_or(|sel| sel.is_empty());
    if headless_selectorless {
        return errs;
    }
    let spec_path = Path::new("spec");
    let policy = s(&sp.ip_family_policy);
    if policy == "SingleStack" {
        if sp.cluster_ips.as_ref().is_some_and(|ips| ips.len() == 2) {
            errs.push(FieldError::invalid(
                &spec_path.child("ipFamilyPolicy"),
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if sp.ip_families.as_ref().is_some_and(|f| f.len() == 2) {
            errs.push(FieldError::invalid(
                &spec_path.child("ipFamilyPolicy"),
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    if policy == "RequireDualStack" && cfg.families().len() < 2 {
        errs.push(FieldError::invalid(
            &spec_path.child("ipFamilyPolicy"),
            policy,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in sp.ip_families.iter().flatten().enumerate() {
        let known = IpFamily::from_name(family);
        if known.is_some_and(|f| !cfg.has_family(f)) {
            errs.push(FieldError::invalid(
                &spec_path.child("ipFamilies").index(i),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    errs
}

fn duplicate_ports(ports: &[ServicePort], spec_path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((s(&port.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(&spec_path.child("ports").index(i).child("nodePort"), np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        if !seen.insert((s(&port.protocol).to_string(), port.port)) {
            let key = serde_json::json!({"port": port.port, "protocol": s(&port.protocol)});
            errs.push(FieldError::duplicate(&spec_path.child("ports").index(i), key));
        }
    }
    errs
}

fn validate_source_ranges(svc: &Service, sp: &ServiceSpec, spec_path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let is_lb = s(&sp.type_) == "LoadBalancer";
    let lb_only = "may only be used when `type` is 'LoadBalancer'";
    let ranges = sp.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    if !ranges.is_empty() {
        // kube-apiserver reports this field with a capital L.
        let path = spec_path.child("LoadBalancerSourceRanges");
        if !is_lb {
            errs.push(FieldError::forbidden(&path, lb_only));
        }
        for (i, value) in ranges.iter().enumerate() {
            errs.extend(meta::cidr(value.trim(), &path.index(i)));
        }
    } else if let Some(val) = svc.metadata.annotations.as_ref().and_then(|a| a.get(LB_SOURCE_RANGES_ANNOTATION)) {
        let path = Path::new("metadata").child("annotations").key(LB_SOURCE_RANGES_ANNOTATION);
        if !is_lb {
            errs.push(FieldError::forbidden(&path, lb_only));
        }
        let val = val.trim();
        if !val.is_empty() {
            for value in val.split(',') {
                errs.extend(meta::cidr(value.trim(), &path));
            }
        }
    }
    errs
}

fn load_balancer_class(old: Option<&ServiceSpec>, sp: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("spec").child("loadBalancerClass");
    let is_lb = s(&sp.type_) == "LoadBalancer";
    if let Some(old) = old {
        if s(&old.type_) == "LoadBalancer" && is_lb && old.load_balancer_class != sp.load_balancer_class {
            let value = sp.load_balancer_class.clone().map(serde_json::Value::from).unwrap_or_default();
            errs.push(FieldError::invalid(&path, value, "may not change once set"));
        }
        return errs;
    }
    match &sp.load_balancer_class {
        Some(class) if is_lb => errs.extend(meta::qualified_name(class, &path)),
        Some(_) => errs.push(FieldError::forbidden(&path, "may only be used when `type` is 'LoadBalancer'")),
        None => {}
    }
    errs
}

fn validate_traffic_policies(sp: &ServiceSpec, spec_path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let etp = s(&sp.external_traffic_policy);
    let etp_path = spec_path.child("externalTrafficPolicy");
    if !externally_accessible(sp) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(&etp_path, etp, "may only be set for externally-accessible services"));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&etp_path, ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(&etp_path, etp, &["Cluster", "Local"]));
    }
    let hc = sp.health_check_node_port.unwrap_or(0);
    let hc_path = spec_path.child("healthCheckNodePort");
    if !needs_health_check(sp) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // 0 is left for the allocator to fill in.
        errs.extend(meta::each(&hc_path, hc, v::is_valid_port_num(hc.into())));
    }
    let itp_path = spec_path.child("internalTrafficPolicy");
    match sp.internal_traffic_policy.as_deref() {
        None if matches!(s(&sp.type_), "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(&itp_path, ""))
        }
        Some(itp) if !matches!(itp, "Cluster" | "Local") => {
            errs.push(FieldError::not_supported(&itp_path, itp, &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(td) = sp.traffic_distribution.as_deref() {
        const DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
        if !DISTRIBUTIONS.contains(&td) {
            errs.push(FieldError::not_supported(&spec_path.child("trafficDistribution"), td, DISTRIBUTIONS));
        }
    }
    errs
}

fn upgrade_downgrade_cluster_ips(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s(&new.type_) == "ExternalName" || s(&old.type_) == "ExternalName" {
        return errs;
    }
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let path = Path::new("spec").child("clusterIPs");
    let old_ips = old.cluster_ips.as_deref().unwrap_or(&[]);
    let new_ips = new.cluster_ips.as_deref().unwrap_or(&[]);
    let value = || serde_json::Value::from(new_ips.to_vec());
    let changed = "may not change once set";
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(&path.index(i), value(), changed));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(&path.index(0), value(), "primary clusterIP can not be unset"));
        }
        if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid(&path.index(0), value(), changed));
        }
        if new_ips.len() == 1 && s(&new.ip_family_policy) != "SingleStack" {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                new.ip_family_policy.clone().map(serde_json::Value::from).unwrap_or_default(),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(&path.index(0), value(), changed));
    }
    errs
}

fn upgrade_downgrade_ip_families(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s(&new.type_) == "ExternalName" || s(&old.type_) == "ExternalName" {
        return errs;
    }
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let path = Path::new("spec").child("ipFamilies").index(0);
    let old_f = old.ip_families.as_deref().unwrap_or(&[]);
    let new_f = new.ip_families.as_deref().unwrap_or(&[]);
    let value = serde_json::Value::from(new_f.to_vec());
    if old_f.len() == new_f.len() {
        for (i, f) in old_f.iter().enumerate() {
            if *f != new_f[i] {
                errs.push(FieldError::invalid(&path, value.clone(), "may not change once set"));
            }
        }
    } else if old_f.len() > new_f.len() {
        if new.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::invalid(&path, value.clone(), "primary ipFamily can not be unset"));
        }
        if !new_f.is_empty() && new_f[0] != old_f[0] {
            errs.push(FieldError::invalid(&path, value.clone(), "may not change once set"));
        }
        if new_f.len() == 1 && s(&new.ip_family_policy) != "SingleStack" {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                new.ip_family_policy.clone().map(serde_json::Value::from).unwrap_or_default(),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !old_f.is_empty() && !new_f.is_empty() && new_f[0] != old_f[0] {
        errs.push(FieldError::invalid(&path, value, "may not change once set"));
    }
    errs
}

/// `ValidateServiceStatusUpdate`: metadata rules and the load-balancer status.
pub fn validate_status(svc: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&svc.metadata, &old.metadata, &Path::new("metadata"));
    let sp = spec(svc);
    let path = Path::new("status").child("loadBalancer").child("ingress");
    let ingress = svc.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_deref());
    let ingress = ingress.unwrap_or(&[]);
    if s(&sp.type_) != "LoadBalancer" && !ingress.is_empty() {
        errs.push(FieldError::forbidden(&path, "may only be used when `spec.type` is 'LoadBalancer'"));
        return errs;
    }
    for (i, ing) in ingress.iter().enumerate() {
        let p = path.index(i);
        let ip = s(&ing.ip);
        if !ip.is_empty() {
            errs.extend(meta::ip(ip, &p.child("ip")));
        }
        match ing.ip_mode.as_deref() {
            None if !ip.is_empty() => {
                errs.push(FieldError::required(&p.child("ipMode"), "must be specified when `ip` is set"))
            }
            Some(_) if ip.is_empty() => {
                errs.push(FieldError::forbidden(&p.child("ipMode"), "may not be specified when `ip` is not set"))
            }
            Some(mode) if !matches!(mode, "Proxy" | "VIP") => {
                errs.push(FieldError::not_supported(&p.child("ipMode"), mode, &["Proxy", "VIP"]))
            }
            _ => {}
        }
        let host = s(&ing.hostname);
        if !host.is_empty() {
            errs.extend(meta::dns1123_subdomain(host, &p.child("hostname")));
            if v::parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(&p.child("hostname"), host, "must be a DNS name, not an IP address"));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests;
