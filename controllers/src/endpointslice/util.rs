//! What the endpoints, EndpointSlice and mirroring controllers share about pods and Services (upstream
//! `k8s.io/endpointslice/util`): which pods belong in endpoints, Service kinds and IP families, which pod
//! changes matter to endpoints, the API errors they treat alike, and the well-known labels and annotations.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};

use crate::runtime::conditions::pod_is_ready;

/// Label on an EndpointSlice naming its Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label on an EndpointSlice naming the controller that manages it.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Label on an Endpoints object that keeps it from being mirrored into EndpointSlices.
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Label on Endpoints and EndpointSlices of a headless Service.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Node label with the node's zone.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
/// Annotation with the time of the change that caused the last endpoints update.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Annotation set on Endpoints truncated to [`crate::endpoints`]' capacity.
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Annotation of the (old) Endpoints-based leader election records, which are not Service endpoints.
pub const ANNOTATION_LEADER: &str = "control-plane.alpha.kubernetes.io/leader";
/// `kubectl apply`'s annotation, never copied to mirrored slices.
pub const ANNOTATION_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether the pod finished for good (phase Succeeded or Failed).
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether the pod is being deleted.
pub fn is_pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's IPs: `status.podIPs`, or `status.podIP` when the list is empty.
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else { return Vec::new() };
    let list: Vec<&str> = status.pod_ips.iter().flatten().map(|p| p.ip.as_str()).filter(|ip| !ip.is_empty()).collect();
    if !list.is_empty() {
        return list;
    }
    status.pod_ip.as_deref().filter(|ip| !ip.is_empty()).into_iter().collect()
}

/// Whether a pod belongs in Endpoints or EndpointSlices at all: it has an IP, has not finished, and is
/// not terminating unless `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_pod_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !is_pod_terminating(pod)
}

/// The Service's label selector, `None` when it has none. An empty selector is no selector: the API
/// never stores an empty map, so such a Service is selectorless as far as endpoints go.
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether the Service has a cluster IP (it is not headless).
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
    !ip.is_empty() && ip != "None"
}

/// Whether the Service's cluster IP is IPv6; `None` for a headless Service.
pub fn cluster_ip_is_ipv6(svc: &Service) -> Option<bool> {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    is_service_ip_set(svc).then(|| ip.is_some_and(is_ipv6))
}

/// Whether an Endpoints object is an old Endpoints-based leader-election record, not a Service's endpoints.
pub fn is_leader_record(ep: &Endpoints) -> bool {
    ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANNOTATION_LEADER))
}

/// Whether the Service is of type ExternalName (such Services get no endpoints).
pub fn is_external_name(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// The protocol of a port, TCP when unset.
pub fn protocol_or_tcp(p: Option<&str>) -> &str {
    match p {
        None | Some("") => "TCP",
        Some(p) => p,
    }
}

/// Whether an IP string is IPv6 (anything unparsable counts as IPv4, as upstream's checks do).
pub fn is_ipv6(ip: &str) -> bool {
    matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
}

/// How a pod update affects endpoints: `(pod_changed, membership_changed)`. The first is true when the
/// pod's endpoint itself changes (deletion started, readiness, IPs); the second when the Services it
/// belongs to (labels) or its hostname/subdomain may differ.
pub fn pod_endpoints_changed(old: &Pod, new: &Pod) -> (bool, bool) {
    let spec_names = |p: &Pod| {
        let s = p.spec.as_ref();
        (s.and_then(|s| s.hostname.clone()), s.and_then(|s| s.subdomain.clone()))
    };
    let labels_changed = old.metadata.labels.clone().unwrap_or_default()
        != new.metadata.labels.clone().unwrap_or_default()
        || spec_names(old) != spec_names(new);
    let pod_changed = old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || pod_is_ready(old) != pod_is_ready(new)
        || pod_ips(old) != pod_ips(new)
        || is_pod_terminal(old) != is_pod_terminal(new);
    (pod_changed, labels_changed)
}

/// Whether a write failed because its namespace is being deleted: creates keep failing there, so the
/// key is dropped rather than retried.
pub fn is_namespace_terminating(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => {
            s.is_forbidden()
                && s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
        }
        _ => false,
    }
}

/// Whether a request failed because the object is not there (a delete of something already gone).
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.is_not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("test pod")
    }

    #[test]
    fn pods_in_endpoints() {
        let running = pod(json!({"status": {"phase": "Running", "podIP": "10.0.0.1"}}));
        assert!(should_pod_be_in_endpoints(&running, false));
        let no_ip = pod(json!({"status": {"phase": "Running"}}));
        assert!(!should_pod_be_in_endpoints(&no_ip, true));
        let done = pod(json!({"status": {"phase": "Succeeded", "podIPs": [{"ip": "10.0.0.1"}]}}));
        assert!(!should_pod_be_in_endpoints(&done, true));
        let terminating = pod(json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}));
        assert!(!should_pod_be_in_endpoints(&terminating, false));
        assert!(should_pod_be_in_endpoints(&terminating, true));
    }

    #[test]
    fn only_endpoint_relevant_pod_changes_count() {
        let base = json!({"metadata": {"labels": {"app": "a"}, "resourceVersion": "1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}});
        let old = pod(base.clone());
        let mut v = base.clone();
        v["metadata"]["annotations"] = json!({"x": "y"});
        assert_eq!(pod_endpoints_changed(&old, &pod(v)), (false, false));
        let mut v = base.clone();
        v["status"]["conditions"][0]["status"] = json!("False");
        assert_eq!(pod_endpoints_changed(&old, &pod(v)), (true, false));
        let mut v = base.clone();
        v["metadata"]["labels"]["app"] = json!("b");
        assert_eq!(pod_endpoints_changed(&old, &pod(v)), (false, true));
        let mut v = base;
        v["status"]["podIP"] = json!("10.0.0.2");
        assert_eq!(pod_endpoints_changed(&old, &pod(v)), (true, false));
    }

    fn api_error(status: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(status).expect("status")))
    }

    #[test]
    fn api_errors_are_told_apart() {
        let terminating = api_error(json!({"status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "namespace d is being terminated",
            "details": {"causes": [{"reason": "NamespaceTerminating", "message": "d", "field": "metadata.namespace"}]}}));
        assert!(is_namespace_terminating(&terminating));
        assert!(!is_not_found(&terminating));
        let forbidden = api_error(json!({"status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"}));
        assert!(!is_namespace_terminating(&forbidden));
        let gone = api_error(json!({"status": "Failure", "code": 404, "reason": "NotFound", "message": "gone"}));
        assert!(is_not_found(&gone));
        assert!(!is_namespace_terminating(&gone));
    }
}
