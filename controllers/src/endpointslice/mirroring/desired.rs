//! The mirrored EndpointSlices of a user-written Endpoints object (upstream endpointslicemirroring's
//! reconciler), without I/O: one slice per address type and port set, with the Endpoints' labels and
//! annotations, owned by the Endpoints; written only when it differs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort as CorePort, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::endpointslice::render::{
    endpoints_equal_beyond_id, port_map_key, slice_prefix, EndpointId, EndpointSet, PortKey, SliceWrites, IPV4, IPV6,
};
use crate::endpointslice::util::{
    protocol_or_tcp, ANNOTATION_LAST_APPLIED, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME,
};

/// The `endpointslice.kubernetes.io/managed-by` value of mirrored slices.
pub const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";

/// The writes that make an Endpoints object's mirrored slices right, and what was left out.
#[derive(Debug, Default)]
pub struct MirrorPlan {
    pub writes: SliceWrites,
    /// Addresses that are not IPs (not mirrored).
    pub invalid_addresses: usize,
    /// Addresses beyond the per-subset maximum (not mirrored).
    pub over_capacity: usize,
}

type Key = (&'static str, Vec<PortKey>);

fn slice_ports(ports: Option<&[CorePort]>) -> Vec<EndpointPort> {
    ports
        .unwrap_or_default()
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(protocol_or_tcp(p.protocol.as_deref()).to_string()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// The endpoint for an address and its address type; `None` when the address is not an IP.
fn address_to_endpoint(addr: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip: IpAddr = addr.ip.parse().ok()?;
    let ep = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions { ready: Some(ready), ..Default::default() }),
        hostname: addr.hostname.clone().filter(|h| !h.is_empty()),
        node_name: addr.node_name.clone(),
        target_ref: addr.target_ref.clone(),
        ..Default::default()
    };
    Some((ep, if ip.is_ipv6() { IPV6 } else { IPV4 }))
}

/// Metadata of a mirrored slice of `endpoints`.
fn slice_meta(endpoints: &Endpoints) -> ObjectMeta {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.into(), name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    let annotations: BTreeMap<String, String> = endpoints
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != ANNOTATION_LAST_CHANGE_TRIGGER_TIME && k.as_str() != ANNOTATION_LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ObjectMeta {
        generate_name: Some(slice_prefix(&name)),
        namespace: endpoints.metadata.namespace.clone(),
        labels: Some(labels),
        annotations: Some(annotations).filter(|a| !a.is_empty()),
        owner_references: Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Endpoints".into(),
            name,
            uid: endpoints.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..Default::default()
    }
}

/// Whether `slice` already holds exactly `desired` with the right labels and annotations.
fn matches(slice: &EndpointSlice, desired: &EndpointSet, meta: &ObjectMeta) -> bool {
    slice.endpoints.len() == desired.len()
        && slice
            .endpoints
            .iter()
            .all(|ep| desired.get(&EndpointId::of(ep)).is_some_and(|d| endpoints_equal_beyond_id(d, ep)))
        && slice.metadata.labels.clone().unwrap_or_default() == meta.labels.clone().unwrap_or_default()
        && slice.metadata.annotations.clone().unwrap_or_default() == meta.annotations.clone().unwrap_or_default()
}

/// Plans the mirrored slices of `endpoints` given the `existing` ones; at most `max_per_subset`
/// addresses of each subset are mirrored.
pub fn plan(endpoints: &Endpoints, existing: &[Arc<EndpointSlice>], max_per_subset: usize) -> MirrorPlan {
    let mut out = MirrorPlan::default();
    let mut desired: BTreeMap<Key, (Vec<EndpointPort>, EndpointSet)> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports = slice_ports(subset.ports.as_deref());
        let pkey = port_map_key(Some(&ports));
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        let mut added = 0;
        for (addr, is_ready) in ready.chain(not_ready) {
            if added >= max_per_subset {
                out.over_capacity += 1;
                continue;
            }
            let Some((ep, address_type)) = address_to_endpoint(addr, is_ready) else {
                out.invalid_addresses += 1;
                continue;
            };
            added += 1;
            let (_, set) =
                desired.entry((address_type, pkey.clone())).or_insert_with(|| (ports.clone(), EndpointSet::new()));
            set.insert(EndpointId::of(&ep), ep);
        }
    }
    let mut existing_by_key: BTreeMap<(String, Vec<PortKey>), Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        existing_by_key.entry((s.address_type.clone(), port_map_key(s.ports.as_deref()))).or_default().push(s.clone());
    }
    for v in existing_by_key.values_mut() {
        v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    let meta = slice_meta(endpoints);
    for ((address_type, pkey), (ports, mut set)) in desired {
        let slices = existing_by_key.remove(&(address_type.to_string(), pkey)).unwrap_or_default();
        let mut rest = slices.iter();
        let first = rest.next();
        out.writes.delete.extend(rest.cloned());
        if first.is_some_and(|f| matches(f, &set, &meta)) {
            continue;
        }
        let mut slice = EndpointSlice {
            metadata: meta.clone(),
            address_type: address_type.to_string(),
            endpoints: Vec::new(),
            ports: Some(ports),
        };
        while slice.endpoints.len() < max_per_subset {
            let Some((_, ep)) = set.pop_first() else { break };
            slice.endpoints.push(ep);
        }
        match first {
            Some(f) => {
                slice.metadata.name = f.metadata.name.clone();
                slice.metadata.resource_version = f.metadata.resource_version.clone();
                out.writes.update.push(slice);
            }
            None => out.writes.create.push(slice),
        }
    }
    out.writes.delete.extend(existing_by_key.into_values().flatten());
    // Reuse slices that would be deleted instead of creating new ones.
    out.writes.reuse_deleted(|_| true);
    if endpoints.metadata.deletion_timestamp.is_some() {
        // Creating slices for Endpoints being deleted would race with the garbage collector.
        out.writes.create.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(subsets: serde_json::Value) -> Endpoints {
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "d", "uid": "ep-uid",
            "labels": {"team": "a"}, "annotations": {"note": "x", ANNOTATION_LAST_APPLIED: "{}"}},
            "subsets": subsets}))
        .expect("endpoints")
    }

    #[test]
    fn golden_mirrored_slice_then_no_write() {
        let ep = endpoints(json!([{"addresses": [{"ip": "192.0.2.10", "hostname": "h"}],
            "notReadyAddresses": [{"ip": "192.0.2.11"}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]));
        let p = plan(&ep, &[], 1000);
        assert_eq!(p.writes.counts(), (1, 0, 0));
        assert_eq!(
            serde_json::to_value(&p.writes.create[0]).expect("json"),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": true}, "hostname": "h"},
                              {"addresses": ["192.0.2.11"], "conditions": {"ready": false}}],
                "metadata": {"generateName": "ext-", "namespace": "d", "annotations": {"note": "x"},
                    "labels": {"team": "a", LABEL_MANAGED_BY: MANAGED_BY, LABEL_SERVICE_NAME: "ext"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": "ext", "uid": "ep-uid",
                        "controller": true, "blockOwnerDeletion": true}]},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        );
        let stored = p.writes.applied_to(&[], &mut 0);
        assert!(plan(&ep, &stored, 1000).writes.is_empty());
    }

    #[test]
    fn families_ports_changes_and_limits() {
        let ep = endpoints(json!([
            {"addresses": [{"ip": "not-an-ip"}, {"ip": "192.0.2.10"}, {"ip": "2001:db8::1"}], "ports": [{"port": 80}]},
            {"addresses": [{"ip": "192.0.2.20"}, {"ip": "192.0.2.21"}, {"ip": "192.0.2.22"}], "ports": [{"port": 81}]},
        ]));
        let p = plan(&ep, &[], 2);
        assert_eq!(p.writes.create.len(), 3, "v4:80, v6:80, v4:81");
        assert_eq!(p.invalid_addresses, 1);
        assert_eq!(p.over_capacity, 1, "the third address of the second subset");
        let stored = p.writes.applied_to(&[], &mut 0);
        // The second subset's port changes: its slice is reused.
        let ep2 = endpoints(json!([
            {"addresses": [{"ip": "192.0.2.10"}, {"ip": "2001:db8::1"}], "ports": [{"port": 80}]},
            {"addresses": [{"ip": "192.0.2.20"}], "ports": [{"port": 82}]},
        ]));
        let p = plan(&ep2, &stored, 2);
        assert_eq!(p.writes.counts(), (0, 1, 0));
        // Everything goes: the slices are deleted.
        let p = plan(&endpoints(json!(null)), &stored, 2);
        assert_eq!(p.writes.counts(), (0, 0, 3));
    }

    #[test]
    fn endpoints_being_deleted_get_no_new_slices() {
        let mut ep = endpoints(json!([{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]));
        let stored = plan(&ep, &[], 10).writes.applied_to(&[], &mut 0);
        ep.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(plan(&ep, &[], 10).writes.counts(), (0, 0, 0), "no create");
        ep.subsets = Some(serde_json::from_value(json!([{"addresses": [{"ip": "192.0.2.11"}]}])).expect("subsets"));
        assert_eq!(plan(&ep, &stored, 10).writes.counts(), (0, 1, 0), "an existing slice is still updated");
    }
}
