//! `/etc/hosts` exactly as kubelet writes it: the Kubernetes-managed header, the pod's own entry per pod IP
//! (with its FQDN when it has a subdomain), then the `hostAliases` section; for host-network pods the node's
//! hosts file under its own header.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::HostAlias;

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HOST_NETWORK_HEADER: &str = "# Kubernetes-managed hosts file (host network).\n";
const DEFAULTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
fe00::0\tip6-mcastprefix\n\
fe00::1\tip6-allnodes\n\
fe00::2\tip6-allrouters\n";

/// The hosts file of a pod with its own network.
pub fn managed(pod_ips: &[IpAddr], hostname: &str, domain: Option<&str>, aliases: &[HostAlias]) -> String {
    let mut out = String::from(MANAGED_HEADER);
    out.push_str(DEFAULTS);
    for ip in pod_ips {
        match domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&aliases_section(aliases));
    out
}

/// The hosts file of a host-network pod: the node's own hosts file plus the aliases.
pub fn host_network(node_hosts: &str, aliases: &[HostAlias]) -> String {
    let mut out = String::from(HOST_NETWORK_HEADER);
    out.push_str(node_hosts);
    if !node_hosts.is_empty() && !node_hosts.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&aliases_section(aliases));
    out
}

fn aliases_section(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.as_deref().unwrap_or_default().join("\t")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(ip: &str, names: &[&str]) -> HostAlias {
        HostAlias { ip: ip.into(), hostnames: Some(names.iter().map(|s| s.to_string()).collect()) }
    }

    /// The seed (001, "配置Pod的 /etc/hosts") shows this file for `hostaliases-pod`.
    #[test]
    fn golden_seed_host_aliases() {
        let ips: Vec<IpAddr> = vec!["10.200.0.5".parse().unwrap()];
        let got = managed(
            &ips,
            "hostaliases-pod",
            None,
            &[alias("127.0.0.1", &["foo.local", "bar.local"]), alias("10.1.2.3", &["foo.remote", "bar.remote"])],
        );
        let want = "# Kubernetes-managed hosts file.\n\
127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
fe00::0\tip6-mcastprefix\n\
fe00::1\tip6-allnodes\n\
fe00::2\tip6-allrouters\n\
10.200.0.5\thostaliases-pod\n\
\n\
# Entries added by HostAliases.\n\
127.0.0.1\tfoo.local\tbar.local\n\
10.1.2.3\tfoo.remote\tbar.remote\n";
        assert_eq!(got, want);
    }

    #[test]
    fn golden_seed_default_and_fqdn() {
        let ips: Vec<IpAddr> = vec!["10.200.0.4".parse().unwrap()];
        let got = managed(&ips, "nginx", None, &[]);
        assert!(got.ends_with("fe00::2\tip6-allrouters\n10.200.0.4\tnginx\n"), "{got}");
        let got = managed(&ips, "busybox-1", Some("default-subdomain.default.svc.cluster.local"), &[]);
        assert!(got.ends_with("10.200.0.4\tbusybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1\n"));
    }

    #[test]
    fn host_network_keeps_the_node_file() {
        let got = host_network("127.0.0.1 localhost\n192.168.56.11 worker-1", &[alias("1.2.3.4", &["a"])]);
        assert_eq!(
            got,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.56.11 worker-1\n\
             \n# Entries added by HostAliases.\n1.2.3.4\ta\n"
        );
    }
}
