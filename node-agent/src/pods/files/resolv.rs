//! `/etc/resolv.conf` per `dnsPolicy`, as kubelet's DNS configurer decides it: ClusterFirst (the cluster DNS
//! servers, the `<ns>.svc.<domain> svc.<domain> <domain>` search path followed by the node's, `ndots:5`),
//! Default (the node's `--resolv-conf`), ClusterFirstWithHostNet, None — then `dnsConfig` merged in (servers
//! and searches appended without duplicates, options by name, the pod's winning).

use k8s_openapi::api::core::v1::PodDNSConfig;

/// kubelet's limits.
pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_SEARCHES: usize = 32;

/// A parsed resolver configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Parses a resolv.conf (the node's `--resolv-conf`) the way kubelet does: `nameserver`, `search`, `options`.
pub fn parse(text: &str) -> DnsConfig {
    let mut cfg = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.split_first() {
            Some((&"nameserver", rest)) => cfg.nameservers.extend(rest.first().map(|s| s.to_string())),
            Some((&"search", rest)) => {
                cfg.searches = rest.iter().filter(|s| **s != ".").map(|s| s.trim_end_matches('.').to_string()).collect()
            }
            Some((&"options", rest)) => cfg.options = rest.iter().map(|s| s.to_string()).collect(),
            _ => {}
        }
    }
    cfg
}

/// What the node contributes to pods' DNS.
#[derive(Debug, Clone)]
pub struct NodeDns {
    /// `--cluster-dns`.
    pub cluster_dns: Vec<String>,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// The parsed `--resolv-conf`.
    pub host: DnsConfig,
}

/// The policy kubelet applies: ClusterFirst for a host-network pod falls back to Default.
fn effective_policy(policy: &str, host_network: bool, cluster_dns_set: bool) -> &str {
    match policy {
        "ClusterFirstWithHostNet" => {
            if cluster_dns_set {
                "ClusterFirst"
            } else {
                "Default"
            }
        }
        "ClusterFirst" | "" if host_network || !cluster_dns_set => "Default",
        "" => "ClusterFirst",
        p => p,
    }
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

fn option_name(opt: &str) -> &str {
    opt.split(':').next().unwrap_or(opt)
}

/// The pod's resolver configuration.
pub fn pod_dns(
    node: &NodeDns,
    namespace: &str,
    policy: Option<&str>,
    host_network: bool,
    pod_config: Option<&PodDNSConfig>,
) -> DnsConfig {
    let mut cfg = match effective_policy(policy.unwrap_or("ClusterFirst"), host_network, !node.cluster_dns.is_empty()) {
        "ClusterFirst" => {
            let d = &node.cluster_domain;
            let mut searches = vec![format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.clone()];
            push_unique(&mut searches, node.host.searches.iter().cloned());
            DnsConfig { nameservers: node.cluster_dns.clone(), searches, options: vec!["ndots:5".into()] }
        }
        "None" => DnsConfig::default(),
        // Default (and anything unknown, which validation rejects anyway).
        _ => node.host.clone(),
    };
    if let Some(pc) = pod_config {
        push_unique(&mut cfg.nameservers, pc.nameservers.iter().flatten().cloned());
        push_unique(&mut cfg.searches, pc.searches.iter().flatten().cloned());
        for opt in pc.options.iter().flatten() {
            let Some(name) = opt.name.as_deref() else { continue };
            let rendered = match opt.value.as_deref() {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            match cfg.options.iter_mut().find(|o| option_name(o) == name) {
                Some(existing) => *existing = rendered,
                None => cfg.options.push(rendered),
            }
        }
    }
    cfg.nameservers.truncate(MAX_NAMESERVERS);
    cfg.searches.truncate(MAX_SEARCHES);
    cfg
}

/// The file: `nameserver` lines, then `search`, then `options` (the order the seed shows).
pub fn render(cfg: &DnsConfig) -> String {
    let mut out = String::new();
    for ns in &cfg.nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !cfg.searches.is_empty() {
        out.push_str(&format!("search {}\n", cfg.searches.join(" ")));
    }
    if !cfg.options.is_empty() {
        out.push_str(&format!("options {}\n", cfg.options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeDns {
        NodeDns {
            cluster_dns: vec!["10.96.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host: parse("# host\nnameserver 192.168.56.200\nsearch lab.example.\noptions timeout:2\n"),
        }
    }

    fn dns_config(v: serde_json::Value) -> PodDNSConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cluster_first() {
        let got = render(&pod_dns(&node(), "prod", None, false, None));
        assert_eq!(
            got,
            "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local cluster.local lab.example\n\
             options ndots:5\n"
        );
    }

    #[test]
    fn default_and_host_network() {
        let want = "nameserver 192.168.56.200\nsearch lab.example\noptions timeout:2\n";
        assert_eq!(render(&pod_dns(&node(), "d", Some("Default"), false, None)), want);
        // ClusterFirst on the host network is Default; ClusterFirstWithHostNet is cluster DNS.
        assert_eq!(render(&pod_dns(&node(), "d", Some("ClusterFirst"), true, None)), want);
        assert!(render(&pod_dns(&node(), "d", Some("ClusterFirstWithHostNet"), true, None))
            .starts_with("nameserver 10.96.0.10\nsearch d.svc.cluster.local"));
    }

    /// The seed's `dns-example` (001, "Pod 的 DNS 配置").
    #[test]
    fn golden_seed_dns_example() {
        let pc = dns_config(serde_json::json!({
            "nameservers": ["1.2.3.4"],
            "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
        }));
        let got = render(&pod_dns(&node(), "default", Some("None"), false, Some(&pc)));
        assert_eq!(
            got,
            "nameserver 1.2.3.4\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\noptions ndots:2 edns0\n"
        );
    }

    #[test]
    fn dns_config_merges_into_cluster_first() {
        let pc = dns_config(serde_json::json!({
            "nameservers": ["10.96.0.10", "8.8.8.8"],
            "searches": ["svc.cluster.local", "extra.example"],
            "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]
        }));
        let got = pod_dns(&node(), "a", None, false, Some(&pc));
        assert_eq!(got.nameservers, ["10.96.0.10", "8.8.8.8"]);
        assert_eq!(got.searches.last().unwrap(), "extra.example");
        assert_eq!(got.searches.iter().filter(|s| *s == "svc.cluster.local").count(), 1);
        assert_eq!(got.options, ["ndots:1", "single-request"]);
    }

    #[test]
    fn parses_host_files() {
        let cfg = parse("nameserver 1.1.1.1\nnameserver 8.8.8.8 # x\nsearch a.b. . c\noptions ndots:1 rotate\n");
        assert_eq!(cfg.nameservers, ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(cfg.searches, ["a.b", "c"]);
        assert_eq!(cfg.options, ["ndots:1", "rotate"]);
    }
}
