//! Endpoints and EndpointSlices: port protocol defaults and validation of addresses
//! (real IPs, never unspecified, loopback, link-local or a Service IP), ports and names.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort as SlicePort, EndpointSlice};
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;

use super::meta;
use super::{s, AdmissionConfig};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_SLICE_ENDPOINTS: usize = 1000;
const MAX_SLICE_ADDRESSES: usize = 100;
const MAX_SLICE_PORTS: usize = 100;
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_HINTS: usize = 8;

/// `SetDefaults_Endpoints`: ports default to TCP.
pub fn default_endpoints(ep: &mut Endpoints) {
    for port in ep.subsets.iter_mut().flatten().flat_map(|ss| ss.ports.iter_mut().flatten()) {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".into());
        }
    }
}

/// EndpointSlice port defaults: name `""`, protocol TCP.
pub fn default_endpoint_slice(slice: &mut EndpointSlice) {
    for port in slice.ports.iter_mut().flatten() {
        if port.name.is_none() {
            port.name = Some(String::new());
        }
        if port.protocol.is_none() {
            port.protocol = Some("TCP".into());
        }
    }
}

/// knet's rule (from the Service docs): an endpoint may not be a Service's virtual IP.
fn not_service_ip(ip: &str, path: &Path, cfg: &AdmissionConfig) -> Vec<FieldError> {
    match v::parse_ip_sloppy(ip).and_then(|addr| cfg.service_cidr_of(&addr)) {
        Some(cidr) => {
            vec![FieldError::invalid(path, ip, format!("may not be a Service cluster IP (service IP range {cidr})"))]
        }
        None => Vec::new(),
    }
}

/// `ValidateEndpointsCreate` / `ValidateEndpointsUpdate`.
pub fn validate_endpoints(ep: &Endpoints, old: Option<&Endpoints>, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&ep.metadata, &old.metadata, &meta_path));
    }
    errs.extend(meta::validate_object_meta(&ep.metadata, true, v::name_is_dns_subdomain, &meta_path));
    for (i, ss) in ep.subsets.iter().flatten().enumerate() {
        let p = Path::new("subsets").index(i);
        let addresses = ss.addresses.as_deref().unwrap_or(&[]);
        let not_ready = ss.not_ready_addresses.as_deref().unwrap_or(&[]);
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(&p, "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, addr) in addresses.iter().enumerate() {
            errs.extend(validate_address(addr, &p.child("addresses").index(j), cfg));
        }
        for (j, addr) in not_ready.iter().enumerate() {
            errs.extend(validate_address(addr, &p.child("notReadyAddresses").index(j), cfg));
        }
        let ports = ss.ports.as_deref().unwrap_or(&[]);
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_port(port, ports.len() > 1, &p.child("ports").index(j)));
        }
    }
    errs
}

fn validate_address(addr: &EndpointAddress, path: &Path, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let ip_path = path.child("ip");
    let mut errs = meta::ip(&addr.ip, &ip_path);
    if let Some(host) = addr.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(meta::dns1123_label(host, &path.child("hostname")));
    }
    if let Some(node) = &addr.node_name {
        errs.extend(meta::each(&path.child("nodeName"), node.as_str(), v::name_is_dns_subdomain(node, false)));
    }
    errs.extend(meta::non_special_ip(&addr.ip, &ip_path));
    errs.extend(not_service_ip(&addr.ip, &ip_path, cfg));
    errs
}

fn validate_port(port: &EndpointPort, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(meta::dns1123_label(name, &path.child("name")));
    }
    errs.extend(meta::each(&path.child("port"), port.port, v::is_valid_port_num(port.port.into())));
    errs.extend(protocol(port.protocol.as_deref(), &path.child("protocol")));
    if let Some(app) = &port.app_protocol {
        errs.extend(meta::qualified_name(app, &path.child("appProtocol")));
    }
    errs
}

fn protocol(protocol: Option<&str>, path: &Path) -> Vec<FieldError> {
    match protocol {
        None | Some("") => vec![FieldError::required(path, "")],
        Some(p) if !PROTOCOLS.contains(&p) => vec![FieldError::not_supported(path, p, PROTOCOLS)],
        Some(_) => Vec::new(),
    }
}

/// `ValidateEndpointSliceCreate` / `ValidateEndpointSliceUpdate`.
pub fn validate_endpoint_slice(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
    cfg: &AdmissionConfig,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&slice.metadata, true, v::name_is_dns_subdomain, &Path::new("metadata"));
    let type_path = Path::new("addressType");
    let supported: &[&str] = if old.is_some() { &["FQDN", "IP", "IPv4", "IPv6"] } else { &["FQDN", "IPv4", "IPv6"] };
    if slice.address_type.is_empty() {
        errs.push(FieldError::required(&type_path, ""));
    } else if !supported.contains(&slice.address_type.as_str()) {
        errs.push(FieldError::not_supported(&type_path, slice.address_type.as_str(), supported));
    }
    errs.extend(validate_slice_endpoints(&slice.endpoints, &slice.address_type, cfg));
    errs.extend(validate_slice_ports(slice.ports.as_deref().unwrap_or(&[])));
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&slice.metadata, &old.metadata, &Path::new("metadata")));
        errs.extend(meta::immutable(&slice.address_type, &old.address_type, &type_path));
    }
    errs
}

fn validate_slice_endpoints(endpoints: &[Endpoint], address_type: &str, cfg: &AdmissionConfig) -> Vec<FieldError> {
    let path = Path::new("endpoints");
    if endpoints.len() > MAX_SLICE_ENDPOINTS {
        return vec![FieldError::too_many(&path, endpoints.len(), MAX_SLICE_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let p = path.index(i);
        let addr_path = p.child("addresses");
        if ep.addresses.is_empty() {
            errs.push(FieldError::required(&addr_path, "must contain at least 1 address"));
        } else if ep.addresses.len() > MAX_SLICE_ADDRESSES {
            errs.push(FieldError::too_many(&addr_path, ep.addresses.len(), MAX_SLICE_ADDRESSES));
        }
        for (j, addr) in ep.addresses.iter().enumerate() {
            let ap = addr_path.index(j);
            let format = match address_type {
                "IPv4" => meta::each(&ap, addr.as_str(), v::is_valid_ipv4_address(addr)),
                "IPv6" => meta::each(&ap, addr.as_str(), v::is_valid_ipv6_address(addr)),
                // The deprecated "IP" type (kept on update) only checks the format.
                "IP" => {
                    errs.extend(meta::ip(addr, &ap));
                    continue;
                }
                "FQDN" => {
                    errs.extend(fully_qualified_domain_name(addr, &ap));
                    continue;
                }
                _ => continue,
            };
            if format.is_empty() {
                errs.extend(meta::non_special_ip(addr, &ap));
                errs.extend(not_service_ip(addr, &ap, cfg));
            } else {
                errs.extend(format);
            }
        }
        if let Some(node) = &ep.node_name {
            errs.extend(meta::each(&p.child("nodeName"), node.as_str(), v::name_is_dns_subdomain(node, false)));
        }
        let topology_path = p.child("deprecatedTopology");
        let topology = ep.deprecated_topology.as_ref();
        if topology.is_some_and(|t| t.len() > MAX_TOPOLOGY_LABELS) {
            errs.push(FieldError::too_many(&topology_path, topology.map_or(0, |t| t.len()), MAX_TOPOLOGY_LABELS));
        }
        errs.extend(meta::validate_labels(topology, &topology_path));
        if let Some(host) = &ep.hostname {
            errs.extend(meta::dns1123_label(host, &p.child("hostname")));
        }
        let zones = ep.hints.as_ref().and_then(|h| h.for_zones.as_deref()).unwrap_or(&[]);
        let zones_path = p.child("hints").child("forZones");
        if zones.len() > MAX_HINTS {
            errs.push(FieldError::too_many(&zones_path, zones.len(), MAX_HINTS));
        } else {
            let mut seen = BTreeSet::new();
            for (j, zone) in zones.iter().enumerate() {
                let zp = zones_path.index(j).child("name");
                if !seen.insert(zone.name.clone()) {
                    errs.push(FieldError::duplicate(&zp, zone.name.as_str()));
                }
                errs.extend(meta::each(&zp, zone.name.as_str(), v::is_valid_label_value(&zone.name)));
            }
        }
    }
    errs
}

/// `IsFullyQualifiedDomainName`: at least two DNS labels, optional trailing dot.
fn fully_qualified_domain_name(name: &str, path: &Path) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = v::is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = v::is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, label, errs.join(","))];
        }
    }
    Vec::new()
}

fn validate_slice_ports(ports: &[SlicePort]) -> Vec<FieldError> {
    let path = Path::new("ports");
    if ports.len() > MAX_SLICE_PORTS {
        return vec![FieldError::too_many(&path, ports.len(), MAX_SLICE_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            errs.extend(meta::dns1123_label(name, &p.child("name")));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        if let Some(n) = port.port {
            errs.extend(meta::each(&p.child("port"), n, v::is_valid_port_num(n.into())));
        }
        match port.protocol.as_deref() {
            None => errs.push(FieldError::required(&p.child("protocol"), "")),
            Some(pr) if !PROTOCOLS.contains(&pr) => {
                errs.push(FieldError::not_supported(&p.child("protocol"), pr, PROTOCOLS))
            }
            Some(_) => {}
        }
        if let Some(app) = &port.app_protocol {
            errs.extend(meta::qualified_name(app, &p.child("appProtocol")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(ip: &str, ports: serde_json::Value) -> Endpoints {
        serde_json::from_value(json!({
            "metadata": {"name": "my-service", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip}], "ports": ports}]
        }))
        .unwrap_or_default()
    }

    fn strings(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn seed_endpoints_are_valid_and_default_to_tcp() {
        let mut ep = endpoints("192.0.2.42", json!([{"port": 9376}]));
        default_endpoints(&mut ep);
        let port = ep.subsets.as_ref().and_then(|s| s[0].ports.as_ref()).map(|p| p[0].clone()).unwrap_or_default();
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert!(validate_endpoints(&ep, None, &AdmissionConfig::default()).is_empty());
    }

    #[test]
    fn loopback_link_local_and_service_ips_are_rejected() {
        let cfg = AdmissionConfig::default();
        let mut ep = endpoints("127.0.0.1", json!([{"port": 80, "protocol": "TCP"}]));
        default_endpoints(&mut ep);
        assert_eq!(
            strings(validate_endpoints(&ep, None, &cfg)),
            ["subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]
        );
        let ep = endpoints("169.254.1.1", json!([{"port": 80, "protocol": "TCP"}]));
        assert_eq!(
            strings(validate_endpoints(&ep, None, &cfg)),
            ["subsets[0].addresses[0].ip: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
        );
        let ep = endpoints("10.96.0.10", json!([{"port": 80, "protocol": "TCP"}]));
        assert_eq!(
            strings(validate_endpoints(&ep, None, &cfg)),
            ["subsets[0].addresses[0].ip: Invalid value: \"10.96.0.10\": may not be a Service cluster IP (service IP range 10.96.0.0/16)"]
        );
        let ep = endpoints("not-an-ip", json!([{"port": 80, "protocol": "TCP"}]));
        assert_eq!(
            strings(validate_endpoints(&ep, None, &cfg)),
            [
                "subsets[0].addresses[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].addresses[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address"
            ]
        );
    }

    #[test]
    fn multiple_ports_need_names() {
        let ep = endpoints(
            "192.0.2.42",
            json!([{"port": 80, "protocol": "TCP"}, {"name": "https", "port": 70000, "protocol": "TCP"}]),
        );
        assert_eq!(
            strings(validate_endpoints(&ep, None, &AdmissionConfig::default())),
            [
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
            ]
        );
        let empty: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "default"}, "subsets": [{"ports": [{"port": 1, "protocol": "TCP"}]}]
        }))
        .unwrap_or_default();
        assert_eq!(
            strings(validate_endpoints(&empty, None, &AdmissionConfig::default())),
            ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
        );
    }

    #[test]
    fn endpoint_slices() {
        let cfg = AdmissionConfig::default();
        let mut slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["::1"]}, {"addresses": []}],
            "ports": [{"port": 80}]
        }))
        .unwrap_or_default();
        default_endpoint_slice(&mut slice);
        let ports = slice.ports.clone().unwrap_or_default();
        assert_eq!((ports[0].name.as_deref(), ports[0].protocol.as_deref()), (Some(""), Some("TCP")));
        assert_eq!(
            strings(validate_endpoint_slice(&slice, None, &cfg)),
            [
                "endpoints[1].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address",
                "endpoints[2].addresses: Required value: must contain at least 1 address"
            ]
        );
        slice.address_type = "Bogus".into();
        slice.endpoints.clear();
        assert_eq!(
            strings(validate_endpoint_slice(&slice, None, &cfg)),
            ["addressType: Unsupported value: \"Bogus\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
        slice.address_type = "FQDN".into();
        slice.endpoints = vec![Endpoint { addresses: vec!["example".into()], ..Default::default() }];
        assert_eq!(
            strings(validate_endpoint_slice(&slice, None, &cfg)),
            ["endpoints[0].addresses[0]: Invalid value: \"example\": should be a domain with at least two segments separated by dots"]
        );
        slice.endpoints = vec![Endpoint { addresses: vec!["10.0.0.1".into()], ..Default::default() }; 1001];
        assert_eq!(
            strings(validate_endpoint_slice(&slice, None, &cfg)),
            ["endpoints: Too many: 1001: must have at most 1000 items"]
        );
    }
}
