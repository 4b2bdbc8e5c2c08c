//! Deciding a Service's Endpoints, without I/O: which pod addresses go where (ready, not ready, per port),
//! the cap of 1000 addresses, the labels, and whether the current object already says all that.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::repack::repack_subsets;
use crate::endpointslice::pod_endpoint::{pod_ips_of_family, pod_ports, PodTarget};
use crate::endpointslice::trigger_time::format_trigger_time;
use crate::endpointslice::util::{
    cluster_ip_is_ipv6, is_ipv6, is_service_ip_set, pod_ips, should_pod_be_in_endpoints,
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_OVER_CAPACITY, LABEL_HEADLESS,
};
use crate::runtime::conditions::pod_is_ready;

/// The most addresses an Endpoints object holds; beyond it addresses are dropped and the object is
/// annotated `endpoints.kubernetes.io/over-capacity: truncated`.
pub const MAX_CAPACITY: usize = 1000;
const TRUNCATED: &str = "truncated";

/// Whether the Service's endpoints are IPv6: its first IP family, else its cluster IP's family, else (a
/// headless Service without families) the pod's.
fn wants_ipv6(svc: &Service, pod: &Pod) -> bool {
    let first_family = svc.spec.as_ref().and_then(|s| s.ip_families.as_ref()).and_then(|f| f.first());
    match (first_family, cluster_ip_is_ipv6(svc)) {
        (Some(family), _) => family == "IPv6",
        (None, Some(v6)) => v6,
        (None, None) => pod_ips(pod).first().is_some_and(|ip| is_ipv6(ip)),
    }
}

/// The address of `pod` for `svc`: the pod IP of the Service's family, the node, and a reference to the
/// pod. `None` when the pod has no IP of that family.
pub fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let ip = pod_ips_of_family(pod, wants_ipv6(svc, pod)).into_iter().next()?;
    let target = PodTarget::of(pod, svc);
    Some(EndpointAddress {
        ip,
        hostname: target.hostname,
        node_name: target.node_name,
        target_ref: Some(target.target_ref),
    })
}

/// The subsets of `svc`'s Endpoints for `pods` (those its selector matches), in canonical form and not
/// yet truncated.
pub fn render_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let has_ports = spec.ports.as_ref().is_some_and(|p| !p.is_empty());
    let mut subsets = Vec::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else { continue };
        let ready = publish_not_ready || pod_is_ready(pod);
        let subset = |ports: Option<Vec<EndpointPort>>| EndpointSubset {
            addresses: ready.then(|| vec![addr.clone()]),
            not_ready_addresses: (!ready).then(|| vec![addr.clone()]),
            ports,
        };
        if !has_ports {
            // A headless Service may have no ports: its addresses still count.
            if headless {
                subsets.push(subset(None));
            }
            continue;
        }
        for p in pod_ports(svc, pod) {
            let port = EndpointPort {
                name: Some(p.name).filter(|n| !n.is_empty()),
                port: p.port,
                protocol: Some(p.protocol),
                app_protocol: p.app_protocol,
            };
            subsets.push(subset(Some(vec![port])));
        }
    }
    repack_subsets(&subsets)
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), ss| {
        (r + ss.addresses.as_ref().map_or(0, Vec::len), n + ss.not_ready_addresses.as_ref().map_or(0, Vec::len))
    })
}

/// Cuts `subsets` down to [`MAX_CAPACITY`] addresses, ready ones first, each subset keeping its share
/// (upstream's proportional truncation). Returns whether anything was cut.
pub fn truncate(subsets: &mut Vec<EndpointSubset>) -> bool {
    let (ready, not_ready) = count(subsets);
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready { (MAX_CAPACITY, ready) } else { (MAX_CAPACITY - ready, not_ready) };
    let mut room = max;
    for ss in subsets.iter_mut() {
        let list = if truncate_ready { &mut ss.addresses } else { &mut ss.not_ready_addresses };
        let n = list.as_ref().map_or(0, Vec::len);
        // Rounded up, so the last subsets may get fewer than their share.
        let share = (n * max).div_ceil(total.max(1)).min(room);
        if let Some(v) = list.as_mut() {
            v.truncate(share);
        }
        room -= list.as_ref().map_or(0, Vec::len);
        if truncate_ready {
            ss.not_ready_addresses = None;
        }
    }
    for ss in subsets.iter_mut() {
        if ss.addresses.as_ref().is_some_and(Vec::is_empty) {
            ss.addresses = None;
        }
        if ss.not_ready_addresses.as_ref().is_some_and(Vec::is_empty) {
            ss.not_ready_addresses = None;
        }
    }
    subsets.retain(|ss| ss.addresses.is_some() || ss.not_ready_addresses.is_some());
    true
}

/// The labels of the Service's Endpoints: the Service's own, plus `service.kubernetes.io/headless` for a
/// headless Service.
pub fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_service_ip_set(svc) {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels
}

/// What to write for a Service's Endpoints.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// The current object is right: no write.
    UpToDate,
    /// Create this object.
    Create(Box<Endpoints>),
    /// Replace the current object with this one (it carries the current resourceVersion).
    Update(Box<Endpoints>),
}

/// Compares what `svc`'s Endpoints should hold (`subsets` from [`render_subsets`]) with `current` and
/// decides the write. `trigger` is the last-change trigger time to annotate a written object with.
pub fn decide(
    svc: &Service,
    mut subsets: Vec<EndpointSubset>,
    current: Option<&Endpoints>,
    trigger: Option<Timestamp>,
) -> Decision {
    let truncated = truncate(&mut subsets);
    if truncated {
        subsets = repack_subsets(&subsets);
    }
    let labels = desired_labels(svc);
    if let Some(cur) = current {
        let cur_subsets = repack_subsets(cur.subsets.as_deref().unwrap_or_default());
        let cur_truncated = cur.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY));
        if cur_subsets == subsets
            && cur.metadata.labels.clone().unwrap_or_default() == labels
            && cur_truncated == truncated
        {
            return Decision::UpToDate;
        }
    }
    let mut ep = match current {
        Some(cur) => cur.clone(),
        None => Endpoints {
            metadata: ObjectMeta {
                name: svc.metadata.name.clone(),
                namespace: svc.metadata.namespace.clone(),
                ..Default::default()
            },
            subsets: None,
        },
    };
    ep.subsets = Some(subsets).filter(|s| !s.is_empty());
    ep.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    let mut annotations = ep.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(t) => annotations.insert(ANNOTATION_LAST_CHANGE_TRIGGER_TIME.into(), format_trigger_time(t)),
        None => annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME),
    };
    if truncated {
        annotations.insert(ANNOTATION_OVER_CAPACITY.into(), TRUNCATED.into());
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    ep.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
    match current {
        Some(_) => Decision::Update(Box::new(ep)),
        None => Decision::Create(Box::new(ep)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "d", "labels": {"app": "web"}}, "spec": spec}),
        )
        .expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool, extra_spec: serde_json::Value) -> Arc<Pod> {
        let mut spec = json!({"nodeName": "node-a", "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080}]}]});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(extra.clone());
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}")},
                "spec": spec,
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .expect("pod"),
        )
    }

    fn as_json(subsets: &[EndpointSubset]) -> serde_json::Value {
        serde_json::to_value(subsets).expect("json")
    }

    fn target(name: &str) -> serde_json::Value {
        json!({"kind": "Pod", "namespace": "d", "name": name, "uid": format!("uid-{name}")})
    }

    #[test]
    fn golden_ready_and_not_ready_pods_with_named_ports_that_differ() {
        let s = svc(json!({"clusterIP": "10.96.0.5", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}));
        let other_port = json!({"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 9090}]}]});
        let no_port = json!({"containers": [{"name": "c"}]});
        let pods = vec![
            pod("a", "10.0.0.1", true, json!({})),
            pod("b", "10.0.0.2", false, json!({})),
            pod("c", "10.0.0.3", true, other_port),
            pod("d", "10.0.0.4", true, no_port),
        ];
        let got = render_subsets(&s, &pods);
        assert_eq!(
            as_json(&got),
            json!([
                {"addresses": [{"ip": "10.0.0.1", "nodeName": "node-a", "targetRef": target("a")}],
                 "notReadyAddresses": [{"ip": "10.0.0.2", "nodeName": "node-a", "targetRef": target("b")}],
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.0.0.3", "nodeName": "node-a", "targetRef": target("c")}],
                 "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}]},
            ])
        );
    }

    #[test]
    fn publish_not_ready_terminating_hostname_and_multi_port() {
        let s = svc(json!({"clusterIP": "None", "selector": {"app": "web"}, "publishNotReadyAddresses": true,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "dns"}]}));
        let mut terminating = (*pod("t", "10.0.0.9", false, json!({}))).clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH));
        let pods = vec![
            pod("a", "10.0.0.1", false, json!({"hostname": "a-host", "subdomain": "web"})),
            pod("b", "10.0.0.2", true, json!({"hostname": "b-host", "subdomain": "other"})),
            Arc::new(terminating),
        ];
        let got = render_subsets(&s, &pods);
        assert_eq!(
            as_json(&got),
            json!([
                {"addresses": [
                    {"ip": "10.0.0.1", "hostname": "a-host", "nodeName": "node-a", "targetRef": target("a")},
                    {"ip": "10.0.0.2", "nodeName": "node-a", "targetRef": target("b")},
                    {"ip": "10.0.0.9", "nodeName": "node-a", "targetRef": target("t")}],
                 "ports": [{"appProtocol": "dns", "name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "http", "port": 8080, "protocol": "TCP"}]},
            ])
        );
        // Without publishNotReadyAddresses the terminating pod goes and readiness counts.
        let s = svc(json!({"clusterIP": "10.96.0.5", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}));
        let got = render_subsets(&s, &pods);
        assert_eq!(
            as_json(&got),
            json!([{"addresses": [{"ip": "10.0.0.2", "nodeName": "node-a", "targetRef": target("b")}],
                    "notReadyAddresses": [{"ip": "10.0.0.1", "hostname": "a-host", "nodeName": "node-a",
                        "targetRef": target("a")}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}])
        );
    }

    #[test]
    fn portless_services_only_when_headless() {
        let pods = vec![pod("a", "10.0.0.1", true, json!({}))];
        let headless = svc(json!({"clusterIP": "None", "selector": {"app": "web"}}));
        assert_eq!(
            as_json(&render_subsets(&headless, &pods)),
            json!([{"addresses": [{"ip": "10.0.0.1", "nodeName": "node-a", "targetRef": target("a")}]}])
        );
        let normal = svc(json!({"clusterIP": "10.96.0.5", "selector": {"app": "web"}}));
        assert!(render_subsets(&normal, &pods).is_empty());
    }

    #[test]
    fn ip_family_picks_the_address() {
        let s = svc(json!({"clusterIP": "fd00::5", "ipFamilies": ["IPv6"], "selector": {"app": "web"},
            "ports": [{"port": 80}]}));
        let mut p = (*pod("a", "10.0.0.1", true, json!({}))).clone();
        if let Some(st) = p.status.as_mut() {
            st.pod_ips = Some(vec![
                k8s_openapi::api::core::v1::PodIP { ip: "10.0.0.1".into() },
                k8s_openapi::api::core::v1::PodIP { ip: "fd00::1".into() },
            ]);
        }
        let got = render_subsets(&s, &[Arc::new(p)]);
        assert_eq!(got[0].addresses.as_ref().map(|a| a[0].ip.as_str()), Some("fd00::1"));
    }

    #[test]
    fn decide_writes_only_differences() {
        let s = svc(json!({"clusterIP": "10.96.0.5", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}));
        let pods = vec![pod("a", "10.0.0.1", true, json!({}))];
        let t = Timestamp::UNIX_EPOCH;
        let Decision::Create(created) = decide(&s, render_subsets(&s, &pods), None, Some(t)) else {
            panic!("expected a create")
        };
        assert_eq!(created.metadata.name.as_deref(), Some("web"));
        assert_eq!(created.metadata.labels, Some([("app".to_string(), "web".to_string())].into()));
        assert_eq!(
            created.metadata.annotations,
            Some([(ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_string(), "1970-01-01T00:00:00Z".to_string())].into())
        );
        // What the server stores (with a resourceVersion) is up to date, whatever the trigger time.
        let mut stored = (*created).clone();
        stored.metadata.resource_version = Some("5".into());
        assert_eq!(decide(&s, render_subsets(&s, &pods), Some(&stored), None), Decision::UpToDate);
        // Readiness flips: an update of the stored object.
        let pods = vec![pod("a", "10.0.0.1", false, json!({}))];
        let Decision::Update(updated) = decide(&s, render_subsets(&s, &pods), Some(&stored), None) else {
            panic!("expected an update")
        };
        assert_eq!(updated.metadata.resource_version.as_deref(), Some("5"));
        assert!(updated.subsets.as_ref().is_some_and(|ss| ss[0].not_ready_addresses.is_some()));
        assert_eq!(updated.metadata.annotations, None, "no trigger time: the old one is cleared");
        // No pods: an object without subsets.
        let Decision::Update(empty) = decide(&s, render_subsets(&s, &[]), Some(&stored), None) else {
            panic!("expected an update")
        };
        assert_eq!(empty.subsets, None);
        // Label changes of the Service are followed; headless Services are labelled.
        let mut relabelled = svc(json!({"clusterIP": "None", "selector": {"app": "web"}}));
        relabelled.metadata.labels = None;
        let Decision::Update(u) = decide(&relabelled, Vec::new(), Some(&stored), None) else { panic!("update") };
        assert_eq!(u.metadata.labels, Some([(LABEL_HEADLESS.to_string(), String::new())].into()));
    }

    #[test]
    fn truncation_keeps_ready_first_and_annotates() {
        let s = svc(json!({"clusterIP": "10.96.0.5", "selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Arc<Pod>> = (0..1100u32)
            .map(|i| pod(&format!("p{i}"), &format!("10.1.{}.{}", i / 250, i % 250 + 1), i % 2 == 0, json!({})))
            .collect();
        let Decision::Create(ep) = decide(&s, render_subsets(&s, &pods), None, None) else { panic!("create") };
        let subsets = ep.subsets.clone().unwrap_or_default();
        let (ready, not_ready) = count(&subsets);
        assert_eq!((ready, not_ready), (550, 450));
        assert_eq!(
            ep.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_OVER_CAPACITY)).map(String::as_str),
            Some("truncated")
        );
        let mut stored = (*ep).clone();
        stored.metadata.resource_version = Some("1".into());
        assert_eq!(decide(&s, render_subsets(&s, &pods), Some(&stored), None), Decision::UpToDate);
        // Back under capacity: the annotation goes.
        let Decision::Update(u) = decide(&s, render_subsets(&s, &pods[..10]), Some(&stored), None) else {
            panic!("update")
        };
        assert!(u.metadata.annotations.is_none());
    }
}
