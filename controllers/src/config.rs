//! Command-line configuration, named after kube-controller-manager's and kube-scheduler's flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

/// Every controller knet-controllers runs, by the name `--controllers` uses (upstream's names).
pub const CONTROLLERS: &[&str] = &[
    "endpoint",
    "endpointslice",
    "endpointslicemirroring",
    "deployment",
    "replicaset",
    "replicationcontroller",
    "scheduler",
    "nodeipam",
    "nodelifecycle",
    "service-lb",
    "garbagecollector",
    "podgc",
    "namespace",
    "serviceaccount",
    "root-ca-cert-publisher",
];

/// The flags of `knet-controllers`.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Kubeconfig of the API server to use (in-cluster config when omitted).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, default_value = "127.0.0.1:10257")]
    pub bind_address: SocketAddr,

    /// Controllers to run: `*` for all, `name` to enable, `-name` to disable (comma-separated). Known:
    /// endpoint, endpointslice, endpointslicemirroring, deployment, replicaset, replicationcontroller,
    /// scheduler, nodeipam, nodelifecycle, service-lb, garbagecollector, podgc, namespace, serviceaccount,
    /// root-ca-cert-publisher.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// Elect a leader through a Lease before acting, so several instances can run for HA.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a standby waits after the leader's last renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader tries to renew before it stops leading (and exits).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try to acquire or renew the lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Namespace of the leader Lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "knet-controllers")]
    pub leader_elect_resource_name: String,

    /// The pod network, from which each Node gets a `spec.podCIDR`.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: IpNet,
    /// Prefix length of each Node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Give Nodes a pod CIDR (node IPAM).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub allocate_node_cidrs: bool,

    /// Addresses for Services of type LoadBalancer: ranges `A-B` or CIDRs, comma-separated. Empty: such
    /// Services get a Warning event and no address.
    #[arg(long, value_delimiter = ',')]
    pub load_balancer_ip_pool: Vec<String>,

    /// How long a Node may go without renewing its Lease before it is marked NotReady (Unknown).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,

    /// Workers of the endpoints controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    /// Workers of the EndpointSlice controllers.
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    /// Workers of the Deployment controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    /// Workers of the ReplicaSet and ReplicationController controllers.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    /// Workers of the garbage collector.
    #[arg(long, default_value_t = 10)]
    pub concurrent_gc_syncs: usize,
    /// Workers of the namespace controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_namespace_syncs: usize,

    /// Every key of every controller is reconciled again this often, to repair drift.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync_period: Duration,
    /// How often allocations (LoadBalancer IPs, pod CIDRs) are checked against the objects that hold them.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub repair_interval: Duration,
    /// Page size of the informers' initial lists.
    #[arg(long, default_value_t = 500)]
    pub list_page_size: u32,

    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every namespace (default: the kubeconfig's CA).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,

    /// This instance's identity in the leader Lease and its events (default: hostname + random suffix).
    #[arg(long)]
    pub identity: Option<String>,

    // --- nodelifecycle, podgc ---
    /// How long a Node that has never posted its status may take before it is marked NotReady (Unknown).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// How many terminated pods may exist before pod GC deletes the oldest (0: no limit).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,

    // --- endpoint, endpointslice and endpointslicemirroring controllers ---
    /// How long the endpoints controller waits after a pod change to batch more (0: none).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpoint_updates_batch_period: Duration,
    /// How long the EndpointSlice controller waits after a pod change to batch more (0: none).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpointslice_updates_batch_period: Duration,
    /// The most endpoints an EndpointSlice holds (1-1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_endpoints_per_slice: u16,
    /// The most addresses of one Endpoints subset mirrored into EndpointSlices (1-1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub mirroring_max_endpoints_per_subset: u16,
    /// Workers of the EndpointSlice mirroring controller.
    #[arg(long, default_value_t = 5)]
    pub mirroring_concurrent_service_endpoint_syncs: usize,
}

impl Config {
    /// Whether the controller `name` is enabled by `--controllers`.
    pub fn enabled(&self, name: &str) -> bool {
        let mut on = false;
        for c in &self.controllers {
            let c = c.trim();
            if c == "*" {
                on = true;
            } else if c == name {
                return true;
            } else if c.strip_prefix('-') == Some(name) {
                return false;
            }
        }
        on
    }

    /// Names in `--controllers` that no controller has, for a clear error.
    pub fn unknown_controllers(&self) -> Vec<String> {
        self.controllers
            .iter()
            .map(|c| c.trim())
            .filter(|c| *c != "*")
            .filter(|c| !CONTROLLERS.contains(&c.trim_start_matches('-')))
            .map(str::to_string)
            .collect()
    }
}

/// Parses a Go-style duration: `500ms`, `2s`, `5m`, `1h`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: f64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "" => return Err(format!("invalid duration {s:?}: missing unit (ms, s, m, h)")),
            u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        c: Config,
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn controllers_flag_enables_and_disables() {
        let c = Cli::parse_from(["x", "--controllers", "*,-scheduler"]).c;
        assert!(c.enabled("endpoint"));
        assert!(!c.enabled("scheduler"));
        let c = Cli::parse_from(["x", "--controllers", "endpoint"]).c;
        assert!(c.enabled("endpoint"));
        assert!(!c.enabled("deployment"));
        let c = Cli::parse_from(["x", "--controllers", "endpoint,bogus"]).c;
        assert_eq!(c.unknown_controllers(), ["bogus"]);
        let c = Cli::parse_from(["x"]).c;
        assert!(CONTROLLERS.iter().all(|n| c.enabled(n)));
    }
}
