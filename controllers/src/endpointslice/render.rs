//! Building blocks of EndpointSlices, without I/O: a pod's endpoint and ports for a Service, endpoint
//! identity (which endpoint of a slice stands for which pod), port-set keys, slice labels, new slices, and
//! the writes a plan consists of.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::pod_endpoint::{pod_ips_of_family, pod_ports, PodTarget};
use super::util::{
    cluster_ip_is_ipv6, is_pod_terminating, is_service_ip_set, protocol_or_tcp, LABEL_HEADLESS, LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME, LABEL_TOPOLOGY_ZONE,
};
use crate::runtime::conditions::pod_is_ready;

/// Address type of IPv4 slices.
pub const IPV4: &str = "IPv4";
/// Address type of IPv6 slices.
pub const IPV6: &str = "IPv6";

/// The address types a Service's slices have: one per IP family; from its cluster IP when it has no
/// families; both for a headless Service without families.
pub fn address_types(svc: &Service) -> BTreeSet<&'static str> {
    let spec = svc.spec.as_ref();
    let mut out = BTreeSet::new();
    for f in spec.and_then(|s| s.ip_families.as_ref()).into_iter().flatten() {
        match f.as_str() {
            "IPv4" => out.insert(IPV4),
            "IPv6" => out.insert(IPV6),
            _ => false,
        };
    }
    if !out.is_empty() {
        return out;
    }
    match cluster_ip_is_ipv6(svc) {
        Some(true) => [IPV6].into(),
        Some(false) => [IPV4].into(),
        None => [IPV4, IPV6].into(),
    }
}

/// The endpoint of `pod` in `svc`'s slices of `address_type`. Conditions as upstream: `serving` is the
/// pod's readiness, `terminating` whether it is being deleted, and `ready` is serving and not terminating
/// (always true with `publishNotReadyAddresses`).
pub fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, address_type: &str) -> Endpoint {
    let serving = pod_is_ready(pod);
    let terminating = is_pod_terminating(pod);
    let publish = svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
        .filter(|z| !z.is_empty())
        .cloned();
    let target = PodTarget::of(pod, svc);
    Endpoint {
        addresses: pod_ips_of_family(pod, address_type == IPV6),
        conditions: Some(EndpointConditions {
            ready: Some(publish || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: target.hostname,
        node_name: target.node_name,
        target_ref: Some(target.target_ref),
        zone,
        ..Default::default()
    }
}

/// The ports of `pod` for `svc`, in canonical order: one per Service port whose target the pod has.
pub fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let mut out: Vec<EndpointPort> = pod_ports(svc, pod)
        .into_iter()
        .map(|p| EndpointPort {
            name: Some(p.name),
            port: Some(p.port),
            protocol: Some(p.protocol),
            app_protocol: p.app_protocol,
        })
        .collect();
    out.sort_by_cached_key(port_key);
    out
}

/// One port, comparable.
pub type PortKey = (String, i32, String, Option<String>);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port.unwrap_or_default(),
        protocol_or_tcp(p.protocol.as_deref()).to_string(),
        p.app_protocol.clone(),
    )
}

/// The identity of a set of ports (upstream's `PortMapKey`): equal for equal sets in any order.
pub fn port_map_key(ports: Option<&[EndpointPort]>) -> Vec<PortKey> {
    let mut keys: Vec<PortKey> = ports.unwrap_or_default().iter().map(port_key).collect();
    keys.sort();
    keys
}

/// The identity of an endpoint across syncs (upstream's endpoint hash): its addresses, hostname and the
/// object it stands for. Two endpoints with the same identity are the same endpoint, maybe changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointId {
    /// The identity of `ep`.
    pub fn of(ep: &Endpoint) -> Self {
        let mut addresses = ep.addresses.clone();
        addresses.sort();
        let r = ep.target_ref.as_ref();
        EndpointId {
            addresses,
            hostname: ep.hostname.clone().unwrap_or_default(),
            namespace: r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
            name: r.and_then(|r| r.name.clone()).unwrap_or_default(),
        }
    }
}

/// Whether two endpoints of the same identity are equal in everything else that is written (node, zone,
/// conditions, target; a target's resourceVersion does not count).
pub fn endpoints_equal_beyond_id(a: &Endpoint, b: &Endpoint) -> bool {
    let conds = |e: &Endpoint| e.conditions.clone().unwrap_or_default();
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    a.node_name == b.node_name && a.zone == b.zone && conds(a) == conds(b) && target(a) == target(b)
}

/// Desired endpoints keyed by identity; popped in identity order, so results are deterministic.
pub type EndpointSet = BTreeMap<EndpointId, Endpoint>;

/// Labels an EndpointSlice for `svc` must have (the Service's own minus the reserved ones, the headless
/// label, the service name and the manager) and whether the slice's non-reserved labels differ from
/// the Service's.
pub fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    svc: &Service,
    managed_by: &str,
) -> (BTreeMap<String, String>, bool) {
    let reserved = |k: &str| k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == LABEL_HEADLESS;
    let strip = |m: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        m.into_iter().flatten().filter(|(k, _)| !reserved(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let existing = strip(current);
    let mut labels = strip(svc.metadata.labels.as_ref());
    let changed = existing != labels;
    if !is_service_ip_set(svc) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels.insert(LABEL_SERVICE_NAME.into(), svc.metadata.name.clone().unwrap_or_default());
    labels.insert(LABEL_MANAGED_BY.into(), managed_by.into());
    (labels, changed)
}

/// The `generateName` of a Service's slices: `<name>-`, or the bare name when that would be too long.
pub fn slice_prefix(name: &str) -> String {
    if name.len() < 253 {
        format!("{name}-")
    } else {
        name.to_string()
    }
}

/// Whether `slice` is controlled by `svc` (a v1 Service owner reference with its uid).
pub fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == svc.metadata.uid.as_ref() && o.kind == "Service" && o.api_version == "v1")
}

/// A new, empty EndpointSlice for `svc` with `ports` and `address_type`, owned by the Service.
pub fn new_slice(svc: &Service, ports: &[EndpointPort], address_type: &str, managed_by: &str) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_prefix(&name)),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(slice_labels(None, svc, managed_by).0),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports.to_vec()),
    }
}

/// The writes that make a set of EndpointSlices right.
#[derive(Debug, Default)]
pub struct SliceWrites {
    /// Slices to create (with `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Slices to replace (each with the resourceVersion it replaces).
    pub update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub delete: Vec<Arc<EndpointSlice>>,
}

impl SliceWrites {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// Moves every write of `other` into these.
    pub fn append(&mut self, other: &mut SliceWrites) {
        self.create.append(&mut other.create);
        self.update.append(&mut other.update);
        self.delete.append(&mut other.delete);
    }

    /// Turns creates into updates of slices that would be deleted (of the same address type, when
    /// `reusable`): one write instead of two. The latest create goes into the first deleted slice.
    pub fn reuse_deleted(&mut self, reusable: impl Fn(&EndpointSlice) -> bool) {
        let mut i = 0;
        while i < self.delete.len() {
            let old = &self.delete[i];
            let create = self.create.iter().rposition(|c| c.address_type == old.address_type);
            match create.filter(|_| reusable(old)) {
                Some(pos) => {
                    let mut s = self.create.remove(pos);
                    s.metadata.name = old.metadata.name.clone();
                    s.metadata.resource_version = old.metadata.resource_version.clone();
                    self.update.push(s);
                    self.delete.remove(i);
                }
                None => i += 1,
            }
        }
    }
}

#[cfg(test)]
impl SliceWrites {
    /// What the API server would hold after these writes to `existing`; `counter` numbers the names of
    /// created slices and the resourceVersions written.
    pub fn applied_to(&self, existing: &[Arc<EndpointSlice>], counter: &mut u32) -> Vec<Arc<EndpointSlice>> {
        let deleted: BTreeSet<_> = self.delete.iter().map(|s| s.metadata.name.clone()).collect();
        let mut by_name: BTreeMap<String, Arc<EndpointSlice>> = existing
            .iter()
            .filter(|s| !deleted.contains(&s.metadata.name))
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), s.clone()))
            .collect();
        for u in &self.update {
            let mut s = u.clone();
            *counter += 1;
            s.metadata.resource_version = Some(counter.to_string());
            by_name.insert(s.metadata.name.clone().unwrap_or_default(), Arc::new(s));
        }
        for c in &self.create {
            let mut s = c.clone();
            *counter += 1;
            let name = format!("{}{counter:05}", s.metadata.generate_name.clone().unwrap_or_default());
            s.metadata.name = Some(name.clone());
            s.metadata.resource_version = Some(counter.to_string());
            by_name.insert(name, Arc::new(s));
        }
        by_name.into_values().collect()
    }

    /// How many creates, updates and deletes.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.create.len(), self.update.len(), self.delete.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "d", "uid": "svc-uid",
            "labels": {"app": "web", "kubernetes.io/service-name": "spoof"}}, "spec": spec}))
        .expect("service")
    }

    fn pod(ready: bool, terminating: bool) -> Pod {
        let mut v = json!({"metadata": {"name": "p", "namespace": "d", "uid": "pod-uid"},
            "spec": {"nodeName": "n1", "hostname": "h", "subdomain": "web",
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::0001"}],
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        if terminating {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn golden_endpoint_with_zone_hostname_and_conditions() {
        let s = svc(json!({"clusterIP": "10.96.0.1", "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1",
            "labels": {"topology.kubernetes.io/zone": "z1"}}}))
        .expect("node");
        let ep = pod_to_endpoint(&pod(true, false), Some(&node), &s, IPV4);
        assert_eq!(
            serde_json::to_value(&ep).expect("json"),
            json!({"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                "hostname": "h", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "d", "name": "p", "uid": "pod-uid"},
                "zone": "z1"})
        );
        let v6 = pod_to_endpoint(&pod(true, false), None, &s, IPV6);
        assert_eq!(v6.addresses, ["fd00::1"]);
        assert_eq!(v6.zone, None);
        let c = pod_to_endpoint(&pod(true, true), None, &s, IPV4).conditions.unwrap_or_default();
        assert_eq!((c.ready, c.serving, c.terminating), (Some(false), Some(true), Some(true)));
        let c = pod_to_endpoint(&pod(false, false), None, &s, IPV4).conditions.unwrap_or_default();
        assert_eq!((c.ready, c.serving, c.terminating), (Some(false), Some(false), Some(false)));
        let publish = svc(json!({"clusterIP": "10.96.0.1", "publishNotReadyAddresses": true}));
        let c = pod_to_endpoint(&pod(false, true), None, &publish, IPV4).conditions.unwrap_or_default();
        assert_eq!(c.ready, Some(true));
    }

    #[test]
    fn ports_and_their_keys() {
        let s = svc(json!({"clusterIP": "10.96.0.1", "ports": [
            {"name": "z", "port": 81, "targetPort": 9000},
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "missing", "port": 82, "targetPort": "nope"}]}));
        let ports = endpoint_ports(&s, &pod(true, false));
        assert_eq!(
            serde_json::to_value(&ports).expect("json"),
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "z", "port": 9000, "protocol": "TCP"}])
        );
        let mut rev = ports.clone();
        rev.reverse();
        assert_eq!(port_map_key(Some(&rev)), port_map_key(Some(&ports)));
        assert_ne!(port_map_key(Some(&ports[..1])), port_map_key(Some(&ports)));
        assert_eq!(port_map_key(None), port_map_key(Some(&[])));
    }

    #[test]
    fn address_types_follow_families() {
        assert_eq!(address_types(&svc(json!({"clusterIP": "10.96.0.1", "ipFamilies": ["IPv4"]}))), [IPV4].into());
        assert_eq!(address_types(&svc(json!({"clusterIP": "fd00::1"}))), [IPV6].into());
        assert_eq!(address_types(&svc(json!({"clusterIP": "None"}))), [IPV4, IPV6].into());
        assert_eq!(
            address_types(&svc(json!({"clusterIP": "None", "ipFamilies": ["IPv6", "IPv4"]}))),
            [IPV4, IPV6].into()
        );
    }

    #[test]
    fn labels_follow_the_service_but_keep_reserved_ones() {
        let s = svc(json!({"clusterIP": "None"}));
        let (labels, changed) = slice_labels(None, &s, "mgr");
        assert!(changed);
        assert_eq!(
            labels,
            [
                ("app".to_string(), "web".to_string()),
                (LABEL_HEADLESS.to_string(), String::new()),
                (LABEL_MANAGED_BY.to_string(), "mgr".to_string()),
                (LABEL_SERVICE_NAME.to_string(), "web".to_string()),
            ]
            .into()
        );
        let (_, changed) = slice_labels(Some(&labels), &s, "mgr");
        assert!(!changed);
        let slice = new_slice(&s, &[], IPV4, "mgr");
        assert!(owned_by(&slice, &s));
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    }

    #[test]
    fn identity_ignores_conditions_and_order() {
        let s = svc(json!({"clusterIP": "10.96.0.1"}));
        let a = pod_to_endpoint(&pod(true, false), None, &s, IPV4);
        let b = pod_to_endpoint(&pod(false, false), None, &s, IPV4);
        assert_eq!(EndpointId::of(&a), EndpointId::of(&b));
        assert!(!endpoints_equal_beyond_id(&a, &b));
        let mut c = a.clone();
        if let Some(r) = c.target_ref.as_mut() {
            r.resource_version = Some("9".into());
        }
        assert!(endpoints_equal_beyond_id(&a, &c));
    }

    #[test]
    fn deleted_slices_are_reused_for_creates_of_their_address_type() {
        let s = svc(json!({"clusterIP": "None"}));
        let existing = |name: &str, address_type: &str| {
            let mut e = new_slice(&s, &[], address_type, "mgr");
            e.metadata.name = Some(name.into());
            e.metadata.resource_version = Some(format!("rv-{name}"));
            Arc::new(e)
        };
        let mut w = SliceWrites {
            create: vec![new_slice(&s, &[], IPV4, "mgr"), new_slice(&s, &[], IPV6, "mgr")],
            update: Vec::new(),
            delete: vec![existing("keep", IPV4), existing("v4", IPV4), existing("v6", IPV6)],
        };
        w.reuse_deleted(|old| old.metadata.name.as_deref() != Some("keep"));
        assert!(w.create.is_empty());
        let updated: Vec<_> =
            w.update.iter().map(|u| (u.metadata.name.as_deref(), u.metadata.resource_version.as_deref())).collect();
        assert_eq!(updated, [(Some("v4"), Some("rv-v4")), (Some("v6"), Some("rv-v6"))]);
        assert_eq!(w.delete.len(), 1, "the slice that may not be reused is still deleted");
        assert!(!w.is_empty());
        assert!(SliceWrites::default().is_empty());
    }
}
