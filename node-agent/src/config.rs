//! The node agent's command line. Flags keep kubelet's / kube-proxy's / flannel's names where they have one;
//! each part of the agent owns its group of flags (`node`, `pods`, `network`, `server`).

use std::path::PathBuf;

use clap::Args;

/// Everything the agent is configured with.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// The kubeconfig to reach the API server with (without it: in-cluster config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The Node's name (kubelet's `--hostname-override`); default: the host name.
    #[arg(long)]
    pub node_name: Option<String>,
    /// Where the agent keeps its state (pods, CNI IPAM data, certificates); one per node.
    #[arg(long, default_value = "/var/lib/knet")]
    pub root_dir: PathBuf,
    /// Address of the /healthz, /readyz and /metrics server (kubelet's healthz port).
    #[arg(long, default_value = "127.0.0.1:10248")]
    pub healthz_bind_address: std::net::SocketAddr,

    #[command(flatten)]
    pub node: crate::node::config::NodeFlags,
    #[command(flatten)]
    pub pods: crate::pods::config::PodFlags,
    #[command(flatten)]
    pub cni: crate::cni::config::CniFlags,
    #[command(flatten)]
    pub network: crate::network::config::NetworkFlags,
    #[command(flatten)]
    pub server: crate::server::config::ServerFlags,
}
