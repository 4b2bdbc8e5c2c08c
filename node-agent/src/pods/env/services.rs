//! The service environment variables kubelet gives a container: for the Services of the pod's namespace that
//! exist when it starts (with `enableServiceLinks`, the default) and always for `kubernetes` in `default`, the
//! Kubernetes-style `{SVC}_SERVICE_HOST`/`_PORT`/`_PORT_{NAME}` and the Docker-link-style `{SVC}_PORT`,
//! `{SVC}_PORT_{port}_{PROTO}` (+ `_PROTO`, `_PORT`, `_ADDR`) variables.

use k8s_openapi::api::core::v1::Service;

/// Services kubelet always exposes from the `default` namespace.
const MASTER_SERVICES: [&str; 1] = ["kubernetes"];

/// `my-nginx` → `MY_NGINX`.
pub fn env_name(service: &str) -> String {
    service.to_uppercase().replace('-', "_")
}

fn has_cluster_ip(s: &Service) -> bool {
    s.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref()).is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// The Services whose variables a pod in `namespace` gets, sorted by name.
pub fn visible<'a>(services: &'a [Service], namespace: &str, enable_service_links: bool) -> Vec<&'a Service> {
    let mut by_name: std::collections::BTreeMap<String, &Service> = std::collections::BTreeMap::new();
    for s in services.iter().filter(|s| has_cluster_ip(s)) {
        let name = s.metadata.name.clone().unwrap_or_default();
        let ns = s.metadata.namespace.as_deref().unwrap_or("default");
        if ns == "default" && MASTER_SERVICES.contains(&name.as_str()) {
            by_name.entry(name).or_insert(s);
        } else if ns == namespace && enable_service_links {
            by_name.insert(name, s);
        }
    }
    by_name.into_values().collect()
}

/// The variables of one Service, in kubelet's order.
pub fn vars_of(service: &Service) -> Vec<(String, String)> {
    let Some(spec) = &service.spec else { return Vec::new() };
    let ports = spec.ports.clone().unwrap_or_default();
    let Some(first) = ports.first() else { return Vec::new() };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.clone()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for p in &ports {
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((format!("{prefix}_SERVICE_PORT_{}", env_name(name)), p.port.to_string()));
        }
    }
    let host_port = |port: i32| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{}", host_port(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((port_prefix.clone(), url));
        out.push((format!("{port_prefix}_PROTO"), lower));
        out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
        out.push((format!("{port_prefix}_ADDR"), ip.clone()));
    }
    out
}

/// All service variables for a pod in `namespace`.
pub fn service_env(services: &[Service], namespace: &str, enable_service_links: bool) -> Vec<(String, String)> {
    visible(services, namespace, enable_service_links).into_iter().flat_map(vars_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}
        }))
        .unwrap()
    }

    fn services() -> Vec<Service> {
        vec![
            svc("default", "kubernetes", "10.96.0.1", json!([{"name": "https", "port": 443, "protocol": "TCP"}])),
            svc("default", "my-nginx", "10.96.162.149", json!([{"port": 80, "protocol": "TCP"}])),
            svc("default", "headless", "None", json!([{"port": 80}])),
            svc("other", "db", "10.96.5.5", json!([{"port": 5432}])),
        ]
    }

    /// The seed's `printenv | grep SERVICE` lines for `kubernetes` and `my-nginx`, and all seven per port.
    #[test]
    fn golden_seed_variables() {
        let got = service_env(&services(), "default", true);
        let want: Vec<(String, String)> = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("MY_NGINX_SERVICE_HOST", "10.96.162.149"),
            ("MY_NGINX_SERVICE_PORT", "80"),
            ("MY_NGINX_PORT", "tcp://10.96.162.149:80"),
            ("MY_NGINX_PORT_80_TCP", "tcp://10.96.162.149:80"),
            ("MY_NGINX_PORT_80_TCP_PROTO", "tcp"),
            ("MY_NGINX_PORT_80_TCP_PORT", "80"),
            ("MY_NGINX_PORT_80_TCP_ADDR", "10.96.162.149"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn links_disabled_and_other_namespaces_keep_only_kubernetes() {
        let names = |env: Vec<(String, String)>| {
            env.into_iter().filter(|(k, _)| k.ends_with("_SERVICE_HOST")).map(|(k, _)| k).collect::<Vec<_>>()
        };
        assert_eq!(names(service_env(&services(), "default", false)), ["KUBERNETES_SERVICE_HOST"]);
        assert_eq!(names(service_env(&services(), "other", true)), ["DB_SERVICE_HOST", "KUBERNETES_SERVICE_HOST"]);
    }

    #[test]
    fn udp_and_named_ports() {
        let s = svc(
            "a",
            "kube-dns",
            "10.96.0.10",
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
        );
        let got = vars_of(&s);
        assert!(got.contains(&("KUBE_DNS_SERVICE_PORT_DNS_TCP".into(), "53".into())));
        assert!(got.contains(&("KUBE_DNS_PORT".into(), "udp://10.96.0.10:53".into())));
        assert!(got.contains(&("KUBE_DNS_PORT_53_TCP_PROTO".into(), "tcp".into())));
        assert_eq!(got.len(), 2 + 2 + 1 + 8);
    }
}
