//! The EndpointSlice plan for one Service (upstream's `Reconciler`), without I/O: compares the endpoints
//! its pods should have with the slices that exist and returns the fewest creates, updates and deletes.
//! Slices whose endpoints did not change are left alone; changed ones are filled up before new ones are
//! made; emptied ones are deleted, or reused instead of creating another; a Service without endpoints
//! keeps one empty placeholder slice.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};

use super::render::{
    address_types, endpoint_ports, endpoints_equal_beyond_id, new_slice, owned_by, pod_to_endpoint, port_map_key,
    slice_labels, EndpointId, EndpointSet, PortKey, SliceWrites,
};
use super::trigger_time::format_trigger_time;
use super::util::{should_pod_be_in_endpoints, ANNOTATION_LAST_CHANGE_TRIGGER_TIME};

/// What to reconcile: a Service, its pods, its existing slices (managed by `managed_by`, not being
/// deleted) and how to find a Node.
pub struct Input<'a> {
    pub service: &'a Service,
    pub pods: &'a [Arc<Pod>],
    pub existing: &'a [Arc<EndpointSlice>],
    pub max_endpoints: usize,
    pub managed_by: &'a str,
    pub node: &'a dyn Fn(&str) -> Option<Arc<Node>>,
    /// Annotated on every slice written.
    pub trigger_time: Option<Timestamp>,
}

/// The writes that make a Service's slices right.
#[derive(Debug, Default)]
pub struct Plan {
    pub writes: SliceWrites,
    /// Pods left out because their Node is not known (yet): the Service must be retried.
    pub pods_without_node: Vec<String>,
}

/// Plans the writes for `input`.
pub fn plan(input: &Input<'_>) -> Plan {
    let types = address_types(input.service);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in input.existing {
        match types.get(slice.address_type.as_str()) {
            Some(t) => by_type.entry(t).or_default().push(slice.clone()),
            // The Service no longer has this family.
            None => plan.writes.delete.push(slice.clone()),
        }
    }
    for t in types {
        let existing = by_type.remove(t).unwrap_or_default();
        let mut sub = by_address_type(input, t, &existing);
        // One write instead of two: a slice that goes takes a new one's endpoints (if it is the Service's).
        sub.writes.reuse_deleted(|old| owned_by(old, input.service));
        plan.writes.append(&mut sub.writes);
        plan.pods_without_node.append(&mut sub.pods_without_node);
    }
    if input.service.metadata.deletion_timestamp.is_some() {
        // Creating slices for a Service being deleted would race with the garbage collector.
        plan.writes.create.clear();
    }
    for slice in plan.writes.create.iter_mut().chain(plan.writes.update.iter_mut()) {
        let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match input.trigger_time {
            Some(t) => annotations.insert(ANNOTATION_LAST_CHANGE_TRIGGER_TIME.into(), format_trigger_time(t)),
            None => annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME),
        };
        if annotations.is_empty() {
            slice.metadata.annotations = None;
        }
    }
    plan.pods_without_node.sort();
    plan.pods_without_node.dedup();
    plan
}

fn by_address_type(input: &Input<'_>, address_type: &str, existing: &[Arc<EndpointSlice>]) -> Plan {
    let svc = input.service;
    let publish = svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    let mut out = Plan::default();
    let mut existing_by_ports: BTreeMap<Vec<PortKey>, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, svc) {
            existing_by_ports.entry(port_map_key(slice.ports.as_deref())).or_default().push(slice.clone());
        } else {
            // A slice of an older Service of the same name.
            out.writes.delete.push(slice.clone());
        }
    }
    let mut desired: BTreeMap<Vec<PortKey>, (Vec<EndpointPort>, EndpointSet)> = BTreeMap::new();
    for pod in input.pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let (_, set) = desired.entry(port_map_key(Some(&ports))).or_insert_with(|| (ports, EndpointSet::new()));
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default();
        let node = (input.node)(node_name);
        if node.is_none() && !publish {
            out.pods_without_node.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        }
        let ep = pod_to_endpoint(pod, node.as_deref(), svc, address_type);
        if !ep.addresses.is_empty() {
            set.insert(EndpointId::of(&ep), ep);
        }
    }
    for (key, (ports, set)) in desired.iter_mut() {
        let slices = existing_by_ports.get(key).map(Vec::as_slice).unwrap_or_default();
        by_ports(input, address_type, slices, std::mem::take(set), ports, &mut out);
    }
    for (key, slices) in existing_by_ports {
        if !desired.contains_key(&key) {
            out.writes.delete.extend(slices);
        }
    }
    // A Service without endpoints keeps one empty slice.
    if existing.len() == out.writes.delete.len() && out.writes.create.is_empty() {
        let placeholder = new_slice(svc, &[], address_type, input.managed_by);
        if out.writes.delete.len() == 1 && is_same_placeholder(&out.writes.delete[0], &placeholder) {
            out.writes.delete.clear();
        } else {
            out.writes.create.push(placeholder);
        }
    }
    out
}

fn is_same_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    existing.metadata.namespace == placeholder.metadata.namespace
        && existing.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && existing.address_type == placeholder.address_type
        && existing.endpoints.is_empty()
        && existing.ports.as_deref().unwrap_or_default().is_empty()
}

/// The slices of one port set: keep what is unchanged, rewrite what changed (filling it up), then put
/// the rest in an unchanged slice that fits, or in new slices.
fn by_ports(
    input: &Input<'_>,
    address_type: &str,
    existing: &[Arc<EndpointSlice>],
    mut desired: EndpointSet,
    ports: &[EndpointPort],
    out: &mut Plan,
) {
    let max = input.max_endpoints.max(1);
    let mut unchanged: Vec<Arc<EndpointSlice>> = Vec::new();
    let mut to_update: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut sorted: Vec<&Arc<EndpointSlice>> = existing.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    // 1. Drop endpoints no longer desired and update the ones that changed.
    for slice in sorted {
        let mut kept = Vec::with_capacity(slice.endpoints.len());
        let mut changed = false;
        for ep in &slice.endpoints {
            if let Some(want) = desired.remove(&EndpointId::of(ep)) {
                changed |= !endpoints_equal_beyond_id(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(slice.metadata.labels.as_ref(), input.service, input.managed_by);
        let name = slice.metadata.name.clone().unwrap_or_default();
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                out.writes.delete.push(slice.clone());
            } else {
                let mut s = (**slice).clone();
                s.endpoints = kept;
                s.metadata.labels = Some(labels);
                to_update.insert(name, s);
            }
        } else if labels_changed {
            let mut s = (**slice).clone();
            s.metadata.labels = Some(labels);
            to_update.insert(name, s);
        } else {
            unchanged.push(slice.clone());
        }
    }
    // 2. Fill the slices being updated anyway, fullest first.
    if !desired.is_empty() && !to_update.is_empty() {
        let mut names: Vec<(usize, String)> = to_update.iter().map(|(n, s)| (s.endpoints.len(), n.clone())).collect();
        names.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, name) in names {
            let Some(s) = to_update.get_mut(&name) else { continue };
            while s.endpoints.len() < max {
                let Some((_, ep)) = desired.pop_first() else { break };
                s.endpoints.push(ep);
            }
        }
    }
    // 3. The rest: into the unchanged slice closest to full that takes them all, else new slices.
    while !desired.is_empty() {
        let mut slice = None;
        if desired.len() < max {
            let fit = unchanged
                .iter()
                .enumerate()
                .filter(|(_, s)| s.endpoints.len() + desired.len() <= max)
                .min_by_key(|(_, s)| max - (s.endpoints.len() + desired.len()))
                .map(|(i, _)| i);
            if let Some(i) = fit {
                slice = Some((*unchanged.remove(i)).clone());
            }
        }
        let mut s = slice.unwrap_or_else(|| new_slice(input.service, ports, address_type, input.managed_by));
        while s.endpoints.len() < max {
            let Some((_, ep)) = desired.pop_first() else { break };
            s.endpoints.push(ep);
        }
        match s.metadata.name.clone() {
            Some(name) => {
                to_update.insert(name, s);
            }
            None => out.writes.create.push(s),
        }
    }
    out.writes.update.extend(to_update.into_values());
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
