//! `knet-node-agent`: knet's kubelet, kube-proxy and flannel for one node.

use anyhow::Result;
use clap::Parser;
use knet_component_base::logs::LogFormat;
use knet_node_agent::Config;

#[derive(Parser, Debug)]
#[command(name = "knet-node-agent", about = "knet's node agent (kubelet + kube-proxy + flannel)", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    knet_component_base::logs::init(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Wiring (owned by the pods/node part): health server, API client, node registration, pod runtime,
    // `knet_node_agent::network::run`, `knet_node_agent::server::run` with the pod runtime.
    anyhow::bail!("knet-node-agent is not built yet (config: {:?})", cli.config.node_name)
}
