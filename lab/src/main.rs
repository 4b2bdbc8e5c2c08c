//! `knet-lab`: builds and tears down a single-host lab cluster in network namespaces (`up`, `down`, `status`,
//! `exec`, `kubeconfig`), plus the outside host's servers as hidden subcommands.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ipnet::Ipv4Net;
use knet_lab::config::{LabConfig, DEFAULT_STATE_DIR};

#[derive(Parser, Debug)]
#[command(name = "knet-lab", about = "knet's single-host lab: a cluster of network namespaces (like kind)", version)]
struct Cli {
    /// Where the lab keeps every file it makes.
    #[arg(long, global = true, env = "KNET_LAB_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build the lab: control-plane, N workers and the outside host on an underlay bridge.
    Up(UpArgs),
    /// Remove everything the lab made (processes, namespaces, links, mounts, files), even after a crash.
    Down,
    /// Show the hosts, their processes and addresses, and `kubectl get nodes`.
    Status,
    /// Run a command on a lab host (in its network namespace), like ssh to a node.
    Exec {
        /// control-plane, worker-N or outside.
        host: String,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Print the path of the lab's admin kubeconfig.
    Kubeconfig,
    /// The outside host's HTTP server answering the client's source IP.
    #[command(hide = true)]
    ServeHttp {
        #[arg(long, default_value = "0.0.0.0:80")]
        listen: SocketAddr,
    },
    /// The outside host's DNS server.
    #[command(hide = true)]
    ServeDns {
        #[arg(long, default_value = "0.0.0.0:53")]
        listen: SocketAddr,
        /// The address every known name resolves to.
        #[arg(long)]
        address: Ipv4Addr,
        /// A name to answer (repeatable; default example.com and a few others).
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct UpArgs {
    /// Number of worker hosts.
    #[arg(long, default_value_t = 2)]
    nodes: u32,
    /// Cross-node routing: host-gw or vxlan.
    #[arg(long, default_value = "host-gw")]
    backend: String,
    /// CNI plugin: knet-cni or bridge (Debian's containernetworking-plugins).
    #[arg(long, default_value = "knet-cni")]
    cni: String,
    /// The underlay subnet.
    #[arg(long, default_value = "192.168.56.0/24")]
    underlay: Ipv4Net,
    /// This machine's address on the underlay.
    #[arg(long, default_value = "192.168.56.1")]
    host_ip: Ipv4Addr,
    #[arg(long, default_value = "192.168.56.10")]
    control_plane_ip: Ipv4Addr,
    /// The first worker's address (the others follow).
    #[arg(long, default_value = "192.168.56.11")]
    first_worker_ip: Ipv4Addr,
    #[arg(long, default_value = "192.168.56.200")]
    outside_ip: Ipv4Addr,
    /// The LoadBalancer address pool.
    #[arg(long, default_value = "192.168.56.240-192.168.56.250")]
    lb_pool: String,
    /// How long to wait for the Nodes to be Ready (seconds).
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Do not wait for the Nodes (bring the hosts up and return).
    #[arg(long)]
    no_wait: bool,
    /// How host processes are supervised: background or systemd.
    #[arg(long, env = "KNET_SUPERVISOR", default_value = "background")]
    supervisor: String,
}

fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding knet-lab's own executable")?;
    Ok(exe.parent().context("knet-lab's executable has no directory")?.to_path_buf())
}

fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("knet-lab needs root (it creates network namespaces and links)");
    }
    Ok(())
}

fn load(state_dir: &std::path::Path) -> Result<LabConfig> {
    LabConfig::load(state_dir)?.with_context(|| format!("no lab in {} (run `knet-lab up`)", state_dir.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    knet_component_base::logs::init(knet_component_base::logs::LogFormat::Text);
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Up(a) => {
            require_root()?;
            let config = LabConfig {
                state_dir: cli.state_dir,
                workers: a.nodes,
                backend: a.backend,
                cni: a.cni,
                underlay: a.underlay,
                host_ip: a.host_ip,
                control_plane_ip: a.control_plane_ip,
                first_worker_ip: a.first_worker_ip,
                outside_ip: a.outside_ip,
                lb_pool: a.lb_pool,
                ..LabConfig::default()
            };
            let opts = knet_lab::up::UpOptions {
                config: config.clone(),
                bin_dir: bin_dir()?,
                wait: Duration::from_secs(a.wait),
                wait_ready: !a.no_wait,
                supervisor: a.supervisor,
            };
            if let Err(e) = knet_lab::up::up(&opts).await {
                bail!("{e}\n(`knet-lab status` shows what is there; `knet-lab down` removes it)");
            }
            print!("{}", knet_lab::up::usage(&config));
        }
        Command::Down => {
            require_root()?;
            let report = knet_lab::down::down(&cli.state_dir, &LabConfig::default())?;
            eprintln!(
                "knet-lab: down — killed {} processes, unmounted {} mounts, deleted namespaces [{}]{}",
                report.killed.len(),
                report.unmounted.len(),
                report.namespaces.join(", "),
                if report.removed_state { ", removed the state dir" } else { "" }
            );
        }
        Command::Status => {
            let config = load(&cli.state_dir)?;
            print!("{}", knet_lab::status::status(&config, &bin_dir()?));
        }
        Command::Exec { host, command } => {
            let config = load(&cli.state_dir)?;
            let Some(h) = config.find_host(&host) else {
                let names: Vec<String> = config.hosts().into_iter().map(|h| h.name).collect();
                bail!("no lab host {host:?} (hosts: {})", names.join(", "));
            };
            let (program, args) = command.split_first().context("no command given")?;
            let status = knet_lab::netns::Netns::named(&h.netns)
                .command(program)?
                .args(args)
                .status()
                .with_context(|| format!("running {program} on {host}"))?;
            std::process::exit(
                status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
            );
        }
        Command::Kubeconfig => {
            let config = load(&cli.state_dir)?;
            println!("{}", config.admin_kubeconfig().display());
        }
        Command::ServeHttp { listen } => knet_lab::outside::serve_http(listen).await?,
        Command::ServeDns { listen, address, names } => {
            let names = if names.is_empty() {
                knet_lab::outside::DEFAULT_NAMES.iter().map(|s| s.to_string()).collect()
            } else {
                names
            };
            knet_lab::outside::serve_dns(listen, names, address).await?
        }
    }
    Ok(())
}
