//! The files kubelet manages for a pod and mounts into its containers: `/etc/hosts` (`hosts`),
//! `/etc/resolv.conf` (`resolv`) and `/etc/hostname`, plus the pod's hostname and domain.

pub mod hosts;
pub mod resolv;

use k8s_openapi::api::core::v1::Pod;

/// The longest hostname the kernel accepts.
const MAX_HOSTNAME: usize = 63;

/// The pod's hostname and, with a subdomain, its domain (`<subdomain>.<ns>.svc.<cluster-domain>`), as kubelet's
/// `GeneratePodHostNameAndDomain` computes them (a name longer than 63 characters is truncated, trailing `-` and
/// `.` trimmed).
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let hostname = spec.and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()).unwrap_or(name);
    let hostname = truncate_hostname(&hostname);
    let domain = spec.and_then(|s| s.subdomain.clone()).filter(|s| !s.is_empty()).map(|sub| {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        format!("{sub}.{ns}.svc.{cluster_domain}")
    });
    (hostname, domain)
}

fn truncate_hostname(hostname: &str) -> String {
    if hostname.len() <= MAX_HOSTNAME {
        return hostname.to_string();
    }
    hostname[..MAX_HOSTNAME].trim_end_matches(['-', '.']).to_string()
}

/// The hostname the pod's UTS namespace gets: the FQDN with `setHostnameAsFQDN` and a domain.
pub fn uts_hostname(pod: &Pod, cluster_domain: &str) -> String {
    let (hostname, domain) = hostname_and_domain(pod, cluster_domain);
    let fqdn = pod.spec.as_ref().and_then(|s| s.set_hostname_as_fqdn).unwrap_or(false);
    match domain {
        Some(d) if fqdn => format!("{hostname}.{d}"),
        _ => hostname,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, hostname: Option<&str>, subdomain: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "my-namespace"},
            "spec": {"containers": [], "hostname": hostname, "subdomain": subdomain}
        }))
        .unwrap()
    }

    #[test]
    fn hostname_defaults_to_the_pod_name_and_takes_the_subdomain() {
        assert_eq!(hostname_and_domain(&pod("web", None, None), "cluster.local"), ("web".into(), None));
        let (h, d) =
            hostname_and_domain(&pod("busybox1", Some("busybox-1"), Some("default-subdomain")), "cluster.local");
        assert_eq!(h, "busybox-1");
        assert_eq!(d.as_deref(), Some("default-subdomain.my-namespace.svc.cluster.local"));
    }

    #[test]
    fn long_names_are_truncated_like_kubelet() {
        let long = format!("{}-{}", "a".repeat(62), "bcd");
        assert_eq!(hostname_and_domain(&pod(&long, None, None), "c").0, "a".repeat(62));
    }

    #[test]
    fn set_hostname_as_fqdn() {
        let mut p = pod("web", Some("h"), Some("s"));
        p.spec.as_mut().unwrap().set_hostname_as_fqdn = Some(true);
        assert_eq!(uts_hostname(&p, "cluster.local"), "h.s.my-namespace.svc.cluster.local");
        assert_eq!(uts_hostname(&pod("web", Some("h"), Some("s")), "cluster.local"), "h");
    }
}
