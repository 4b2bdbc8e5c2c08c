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

fn main() -> Result<()> {
    // The sandbox holder and container shims are this binary too; they must start before any thread exists.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__sandbox") => std::process::exit(knet_node_agent::pods::sandbox::holder::main(&args[2..])),
        Some("__shim") => std::process::exit(knet_node_agent::pods::shim::process::main(&args[2..])),
        _ => {}
    }
    let cli = Cli::parse();
    knet_component_base::logs::init(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move { anyhow::bail!("knet-node-agent is not built yet (config: {:?})", cli.config.node_name) })
}
