//! Printers of endpointslices, networkpolicies, ingresses, ingressclasses and leases.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use serde_json::json;

use super::core::ingress_points;
use super::format::{format_selector, list_with_more, since_time};
use super::{col, typed, Column, Doc, Printer, Row, RowFn, AGE, NAME};

pub(super) fn printer(group: &str, plural: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match (group, plural) {
        ("discovery.k8s.io", "endpointslices") => (ENDPOINT_SLICE, |v, now| typed(v, now, endpoint_slice)),
        ("networking.k8s.io", "networkpolicies") => (NETWORK_POLICY, |v, now| typed(v, now, network_policy)),
        ("networking.k8s.io", "ingresses") => (INGRESS, |v, now| typed(v, now, ingress)),
        ("networking.k8s.io", "ingressclasses") => (INGRESS_CLASS, |v, now| typed(v, now, ingress_class)),
        ("coordination.k8s.io", "leases") => (LEASE, |v, now| typed(v, now, lease)),
        _ => return None,
    };
    Some(Printer { columns, row })
}

const SLICE: &str = "io.k8s.api.discovery.v1.EndpointSlice";

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col("AddressType", "string", 0, Doc::Field(SLICE, "addressType")),
    col("Ports", "string", 0, Doc::Field(SLICE, "ports")),
    col("Endpoints", "string", 0, Doc::Field(SLICE, "endpoints")),
    AGE,
];

const MAX: usize = 3;

fn endpoint_slice(s: &EndpointSlice, now: Timestamp) -> Row {
    let mut ports = Vec::new();
    let mut more = false;
    let mut count = 0;
    for p in s.ports.iter().flatten() {
        if ports.len() < MAX {
            ports.push(match (p.port, &p.name) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => "*".into(),
            });
        } else if ports.len() == MAX {
            more = true;
        }
        count += 1;
    }
    let ports = list_with_more(&ports, more, count, MAX);
    let mut addrs = Vec::new();
    let (mut more, mut count) = (false, 0);
    for a in s.endpoints.iter().flat_map(|e| e.addresses.iter()) {
        if addrs.len() < MAX {
            addrs.push(a.clone());
        } else if addrs.len() == MAX {
            more = true;
        }
        count += 1;
    }
    Row::new(vec![
        json!(s.metadata.name.clone().unwrap_or_default()),
        json!(s.address_type),
        json!(ports),
        json!(list_with_more(&addrs, more, count, MAX)),
        json!(since_time(s.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const NETWORK_POLICY: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", 0, Doc::Field("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector")),
    AGE,
];

fn network_policy(np: &NetworkPolicy, now: Timestamp) -> Row {
    let selector = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
    Row::new(vec![
        json!(np.metadata.name.clone().unwrap_or_default()),
        json!(format_selector(selector)),
        json!(since_time(np.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const INGRESS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        0,
        Doc::Text("The name of the IngressClass resource that should be used for additional configuration"),
    ),
    col("Hosts", "string", 0, Doc::Text("Hosts that incoming requests are matched against before the ingress rule")),
    col("Address", "string", 0, Doc::Text("Address is a list containing ingress points for the load-balancer")),
    col("Ports", "string", 0, Doc::Text("Ports of TLS configurations that open")),
    AGE,
];

fn ingress(ing: &Ingress, now: Timestamp) -> Row {
    let spec = ing.spec.clone().unwrap_or_default();
    let rules = spec.rules.clone().unwrap_or_default();
    let mut hosts: Vec<String> = Vec::new();
    let mut more = false;
    for rule in &rules {
        if hosts.len() == MAX {
            more = true;
        }
        if let Some(h) = rule.host.as_ref().filter(|h| !more && !h.is_empty()) {
            hosts.push(h.clone());
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let lb = ing.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
    let address = ingress_points(lb.into_iter().flatten().map(|i| (i.ip.as_ref(), i.hostname.as_ref())));
    let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) { "80, 443" } else { "80" };
    Row::new(vec![
        json!(ing.metadata.name.clone().unwrap_or_default()),
        json!(spec.ingress_class_name.clone().unwrap_or_else(|| "<none>".into())),
        json!(hosts),
        json!(address),
        json!(ports),
        json!(since_time(ing.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const INGRESS_CLASS: &[Column] = &[
    NAME,
    col("Controller", "string", 0, Doc::Text("Controller that is responsible for handling this class")),
    col("Parameters", "string", 0, Doc::Text("A reference to a resource with additional parameters")),
    AGE,
];

fn ingress_class(ic: &IngressClass, now: Timestamp) -> Row {
    let spec = ic.spec.clone().unwrap_or_default();
    let parameters = match &spec.parameters {
        Some(p) => match &p.api_group {
            Some(g) => format!("{}.{g}/{}", p.kind, p.name),
            None => format!("{}/{}", p.kind, p.name),
        },
        None => "<none>".into(),
    };
    Row::new(vec![
        json!(ic.metadata.name.clone().unwrap_or_default()),
        json!(spec.controller.unwrap_or_default()),
        json!(parameters),
        json!(since_time(ic.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const LEASE: &[Column] =
    &[NAME, col("Holder", "string", 0, Doc::Field("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), AGE];

fn lease(l: &Lease, now: Timestamp) -> Row {
    Row::new(vec![
        json!(l.metadata.name.clone().unwrap_or_default()),
        json!(l.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default()),
        json!(since_time(l.metadata.creation_timestamp.as_ref(), now)),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::{ago, cells, columns};

    fn names(group: &str, plural: &str) -> Vec<String> {
        columns(group, plural).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn endpoint_slices() {
        assert_eq!(names("discovery.k8s.io", "endpointslices"), ["Name", "AddressType", "Ports", "Endpoints", "Age"]);
        let s = json!({
            "metadata": {"name": "my-nginx-abcde", "creationTimestamp": ago(10)}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 9}],
            "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.7", "10.244.2.8"]}, {"addresses": ["10.244.3.1"]}]
        });
        assert_eq!(
            cells("discovery.k8s.io", "endpointslices", s),
            json!([
                "my-nginx-abcde",
                "IPv4",
                "80,named,* + 1 more...",
                "10.244.1.5,10.244.2.7,10.244.2.8 + 1 more...",
                "10s"
            ])
            .as_array()
            .cloned()
            .unwrap_or_default()
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []});
        let c = cells("discovery.k8s.io", "endpointslices", empty);
        assert_eq!((&c[2], &c[3]), (&json!("<unset>"), &json!("<unset>")));
    }

    #[test]
    fn network_policies() {
        let np = json!({"metadata": {"name": "access-nginx", "creationTimestamp": ago(30)}, "spec": {"podSelector": {"matchLabels": {"run": "my-nginx"}}}});
        assert_eq!(
            cells("networking.k8s.io", "networkpolicies", np),
            json!(["access-nginx", "run=my-nginx", "30s"]).as_array().cloned().unwrap_or_default()
        );
        let all = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(cells("networking.k8s.io", "networkpolicies", all)[1], "<none>");
    }

    #[test]
    fn ingresses_and_classes() {
        assert_eq!(names("networking.k8s.io", "ingresses"), ["Name", "Class", "Hosts", "Address", "Ports", "Age"]);
        let ing = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(30)},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example"]}],
                     "rules": [{"host": "a.example"}, {"host": "b.example"}, {}, {"host": "c.example"}, {"host": "d.example"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.56.240"}]}}
        });
        assert_eq!(
            cells("networking.k8s.io", "ingresses", ing),
            json!(["web", "nginx", "a.example,b.example,c.example + 2 more...", "192.168.56.240", "80, 443", "30s"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
        let bare = json!({"metadata": {"name": "b"}, "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}});
        let c = cells("networking.k8s.io", "ingresses", bare);
        assert_eq!((&c[1], &c[2], &c[3], &c[4]), (&json!("<none>"), &json!("*"), &json!(""), &json!("80")));
        let ic = json!({"metadata": {"name": "nginx", "creationTimestamp": ago(30)},
            "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            cells("networking.k8s.io", "ingressclasses", ic),
            json!(["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "30s"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
    }

    #[test]
    fn leases() {
        let l = json!({"metadata": {"name": "worker-1", "creationTimestamp": ago(600)}, "spec": {"holderIdentity": "worker-1", "leaseDurationSeconds": 40}});
        assert_eq!(
            cells("coordination.k8s.io", "leases", l),
            json!(["worker-1", "worker-1", "10m"]).as_array().cloned().unwrap_or_default()
        );
        let c = cells("coordination.k8s.io", "leases", json!({"metadata": {"name": "free"}}));
        assert_eq!((&c[1], &c[2]), (&json!(""), &json!("<unknown>")));
    }
}
