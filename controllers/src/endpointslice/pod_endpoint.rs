//! A pod as an endpoint of a Service, the part the Endpoints and the EndpointSlice renderings share
//! (upstream `podToEndpointAddressForService` and `podToEndpoint`): the pod's IPs of one family, the
//! hostname it publishes, its node, the reference to it, and the port it serves each Service port on.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::util::{pod_ips, protocol_or_tcp};

/// The pod's IPs of one family (IPv6 when `ipv6`) in canonical text form; what does not parse is no IP.
pub fn pod_ips_of_family(pod: &Pod, ipv6: bool) -> Vec<String> {
    pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == ipv6)
        .map(|ip| ip.to_string())
        .collect()
}

/// Whether the endpoint of `pod` carries its `spec.hostname`: only when its `spec.subdomain` names this
/// Service (in the pod's namespace).
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let hostname = spec.hostname.as_deref().unwrap_or_default();
    !hostname.is_empty()
        && spec.subdomain.as_deref().unwrap_or_default() == svc.metadata.name.as_deref().unwrap_or_default()
        && pod.metadata.namespace == svc.metadata.namespace
}

/// What an endpoint says about the pod it stands for, besides its addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct PodTarget {
    /// The pod's `spec.hostname` when [`should_set_hostname`].
    pub hostname: Option<String>,
    /// The pod's node, when it is bound.
    pub node_name: Option<String>,
    /// A reference to the pod.
    pub target_ref: ObjectReference,
}

impl PodTarget {
    /// The target of `pod` in `svc`'s endpoints.
    pub fn of(pod: &Pod, svc: &Service) -> Self {
        let spec = pod.spec.as_ref();
        PodTarget {
            hostname: spec.and_then(|s| s.hostname.clone()).filter(|_| should_set_hostname(pod, svc)),
            node_name: spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
            target_ref: ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
        }
    }
}

/// A Service port as one pod serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPort {
    /// The Service port's name, empty when it has none.
    pub name: String,
    /// The pod's port number.
    pub port: i32,
    /// The protocol, TCP when the Service port names none.
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// The ports `pod` serves `svc`'s ports on, in the Service's order; a Service port whose named target
/// the pod does not have is left out.
pub fn pod_ports(svc: &Service, pod: &Pod) -> Vec<PodPort> {
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            Some(PodPort {
                port: find_port(pod, sp)?,
                name: sp.name.clone().unwrap_or_default(),
                protocol: protocol_or_tcp(sp.protocol.as_deref()).to_string(),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The pod's port number for a Service port: a numeric targetPort as is (the Service port when unset);
/// a named one looked up among the pod's container ports (and sidecars') with the same protocol.
/// `None` when the pod has no such named port.
pub fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    match &svc_port.target_port {
        None => Some(svc_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let proto = protocol_or_tcp(svc_port.protocol.as_deref());
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                .flat_map(|c| c.ports.iter().flatten());
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .chain(sidecars)
                .find(|p| p.name.as_deref() == Some(name.as_str()) && protocol_or_tcp(p.protocol.as_deref()) == proto)
                .map(|p| p.container_port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("test pod")
    }

    fn svc_port(v: serde_json::Value) -> ServicePort {
        serde_json::from_value(v).expect("test port")
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("test service")
    }

    #[test]
    fn named_ports_are_found_per_pod_and_protocol() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}
        ], "initContainers": [
            {"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9090}]},
            {"name": "init", "ports": [{"name": "setup", "containerPort": 7070}]}
        ]}}));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 80, "targetPort": "http"}))), Some(8080));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))), Some(53));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 53, "targetPort": "dns", "protocol": "TCP"}))), None);
        assert_eq!(find_port(&p, &svc_port(json!({"port": 9, "targetPort": "metrics"}))), Some(9090));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 9, "targetPort": "setup"}))), None, "not a sidecar");
        assert_eq!(find_port(&p, &svc_port(json!({"port": 80, "targetPort": 9376}))), Some(9376));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 80}))), Some(80));
        assert_eq!(find_port(&p, &svc_port(json!({"port": 80, "targetPort": "missing"}))), None);
    }

    #[test]
    fn pod_ports_follow_the_service_order_and_skip_missing_targets() {
        let p =
            pod(json!({"spec": {"containers": [{"name": "a", "ports": [{"name": "http", "containerPort": 8080}]}]}}));
        let s = svc(json!({"spec": {"ports": [
            {"name": "z", "port": 81, "targetPort": 9000, "protocol": "UDP", "appProtocol": "x"},
            {"port": 80, "targetPort": "http"},
            {"name": "missing", "port": 82, "targetPort": "nope"}]}}));
        let port = |name: &str, port, protocol: &str, app: Option<&str>| PodPort {
            name: name.into(),
            port,
            protocol: protocol.into(),
            app_protocol: app.map(Into::into),
        };
        assert_eq!(pod_ports(&s, &p), [port("z", 9000, "UDP", Some("x")), port("", 8080, "TCP", None)]);
        assert!(pod_ports(&svc(json!({"spec": {}})), &p).is_empty());
    }

    #[test]
    fn hostname_only_with_matching_subdomain() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "d"}}));
        let p = |sub: &str, ns: &str| {
            pod(json!({"metadata": {"namespace": ns, "name": "p", "uid": "u"},
                "spec": {"hostname": "h", "subdomain": sub, "nodeName": "n1", "containers": []}}))
        };
        assert!(should_set_hostname(&p("web", "d"), &s));
        assert!(!should_set_hostname(&p("other", "d"), &s));
        assert!(!should_set_hostname(&p("web", "e"), &s));
        let t = PodTarget::of(&p("web", "d"), &s);
        assert_eq!((t.hostname.as_deref(), t.node_name.as_deref()), (Some("h"), Some("n1")));
        assert_eq!(
            serde_json::to_value(&t.target_ref).expect("json"),
            json!({"kind": "Pod", "namespace": "d", "name": "p", "uid": "u"})
        );
        assert_eq!(PodTarget::of(&p("other", "d"), &s).hostname, None);
    }

    #[test]
    fn ips_of_a_family_are_canonical() {
        let p = pod(json!({"status": {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::0001"}, {"ip": "junk"}]}}));
        assert_eq!(pod_ips_of_family(&p, false), ["10.0.0.1"]);
        assert_eq!(pod_ips_of_family(&p, true), ["fd00::1"]);
    }
}
