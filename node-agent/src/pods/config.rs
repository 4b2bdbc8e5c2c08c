//! The `pods` part's flags (kubelet's names).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

/// Flags of the `pods` part of the agent.
#[derive(Debug, Clone, Args)]
pub struct PodFlags {
    /// The cluster DNS server(s) pods with dnsPolicy ClusterFirst use, comma-separated.
    #[arg(long, default_value = "10.96.0.10", value_delimiter = ',')]
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The resolver configuration pods with dnsPolicy Default get (and whose search path ClusterFirst extends).
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// The agnhost binary the agnhost image runs (default: `agnhost` next to this executable).
    #[arg(long)]
    pub agnhost_path: Option<PathBuf>,
    /// The busybox binary whose applets busybox images run (default: `busybox` on PATH).
    #[arg(long)]
    pub busybox_path: Option<PathBuf>,
    /// How often running pods' volumes are refreshed (changed Secrets and ConfigMaps, tokens) — kubelet's
    /// `--sync-frequency`.
    #[arg(long, default_value = "1m", value_parser = crate::node::config::parse_duration)]
    pub sync_frequency: std::time::Duration,
}
