//! `knet-node-agent`: knet's kubelet, kube-proxy and flannel for one node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use k8s_openapi::api::core::v1::Service;
use knet_component_base::logs::LogFormat;
use knet_node_agent::cni::Network;
use knet_node_agent::node::{machine, status::NETWORK_NOT_READY, NodeAgent};
use knet_node_agent::pods::{
    self,
    events::{EventType, Recorder},
    files::resolv,
    layout::Layout,
    metrics::Metrics,
    runtime::PodRuntime,
};
use knet_node_agent::Config;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio::sync::watch;

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
        Some("__sandbox") => std::process::exit(pods::sandbox::holder::main(&args[2..])),
        Some("__shim") => std::process::exit(pods::shim::process::main(&args[2..])),
        _ => {}
    }
    let cli = Cli::parse();
    knet_component_base::logs::init(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli.config))
}

async fn run(cfg: Config) -> Result<()> {
    let machine_info = machine::read(&cfg.root_dir);
    let node_name = cfg.node_name.clone().unwrap_or_else(|| machine_info.hostname.clone()).to_lowercase();
    std::fs::create_dir_all(&cfg.root_dir).with_context(|| format!("creating {}", cfg.root_dir.display()))?;
    let root_dir = cfg.root_dir.canonicalize().unwrap_or_else(|_| cfg.root_dir.clone());

    let metrics = Arc::new(Metrics::new());
    let (health_tx, health_rx) = watch::channel::<Result<(), String>>(Err("starting".into()));
    let m = metrics.clone();
    let bound =
        knet_component_base::health::serve(cfg.healthz_bind_address, Arc::new(move || m.render()), health_rx).await?;
    tracing::info!(node = %node_name, address = %bound, "health and metrics server listening");

    let kube_config = knet_component_base::kubeconfig::load(cfg.kubeconfig.as_deref()).await?;
    let client_ca: Vec<Vec<u8>> = kube_config.root_cert.clone().unwrap_or_default();
    let client = kube::Client::try_from(kube_config).context("making the API client")?;

    let network = Arc::new(Network::new(&cfg.cni, &root_dir));
    let (ready_tx, ready_rx) = watch::channel::<Result<(), String>>(Err(NETWORK_NOT_READY.into()));
    let events = Recorder::start(client.clone(), node_name.clone());
    events.node(&node_name, EventType::Normal, "Starting", "Starting kubelet.");
    // NodeReady / NodeNotReady as the Ready condition flips.
    let (ev, n, mut rx) = (events.clone(), node_name.clone(), ready_rx.clone());
    tokio::spawn(async move {
        let mut last: Option<bool> = None;
        loop {
            let ready = rx.borrow_and_update().is_ok();
            if last != Some(ready) {
                if last.is_some() || ready {
                    let (reason, status) =
                        if ready { ("NodeReady", "NodeReady") } else { ("NodeNotReady", "NodeNotReady") };
                    ev.node(&n, EventType::Normal, reason, format!("Node {n} status is now: {status}"));
                }
                last = Some(ready);
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    let node = Arc::new(NodeAgent::new(
        client.clone(),
        node_name.clone(),
        cfg.node.clone(),
        root_dir.clone(),
        cfg.server.port,
        ready_rx,
    )?);
    // A restarted agent finds the network config its previous run wrote: the node is Ready from its first status
    // on (like kubelet over a runtime whose CNI is initialized), so a restart does not flip Ready to False and
    // make the node lifecycle controller mark the running pods NotReady (they would leave their Endpoints).
    if network.reload().await.is_ok() {
        ready_tx.send_modify(|r| *r = Ok(()));
    }
    let mut delay = Duration::from_millis(200);
    loop {
        match node.register().await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(node = %node_name, error = %e, "registration failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(7));
            }
        }
    }
    tokio::spawn(node.clone().heartbeat());

    // Cross-node routing and the kubelet API are other parts of the agent; until they are built they report an
    // error, which must not stop the pod runtime.
    let (c, n, f) = (client.clone(), node_name.clone(), cfg.network.clone());
    tokio::spawn(async move {
        if let Err(e) = knet_node_agent::network::run(c, n.clone(), f).await {
            tracing::error!(node = %n, error = %e, "CROSS-NODE ROUTING IS NOT RUNNING: pods on other nodes are unreachable");
        }
    });

    // The Service cache for service environment variables.
    let (services, writer) = reflector::store::<Service>();
    let svc_stream = reflector(writer, watcher(kube::Api::<Service>::all(client.clone()), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(svc_stream);
        while let Some(ev) = futures::StreamExt::next(&mut svc_stream).await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "service watch");
            }
        }
    });

    let layout = Layout::new(&root_dir);
    for dir in pods::layout::transient_dirs(&layout, cfg.cni.cni_cache_dir.is_none()) {
        match pods::layout::mount_state_tmpfs(&dir) {
            Ok(state) => tracing::info!(node = %node_name, dir = %dir.display(), ?state, "pod state directory"),
            Err(e) => tracing::warn!(node = %node_name, dir = %dir.display(), error = %e,
                "mounting a tmpfs for pod state failed; it stays on disk"),
        }
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    let agnhost =
        cfg.pods.agnhost_path.clone().or_else(|| exe.parent().map(|d| d.join("agnhost")).filter(|p| p.is_file()));
    if agnhost.is_none() {
        tracing::warn!("no agnhost binary next to the agent and no --agnhost-path: agnhost images cannot run");
    }
    match cfg.pods.busybox_path.clone().or_else(|| pods::images::which("busybox")) {
        Some(bb) => {
            if let Err(e) = pods::images::prepare_busybox(&layout.images_dir().join("busybox"), &bb) {
                tracing::warn!(error = %e, "preparing busybox applets failed: busybox images fall back to the node's tools");
            }
        }
        None => tracing::warn!("no busybox on PATH and no --busybox-path: busybox images use the node's tools"),
    }
    let host_dns = resolv::parse(&std::fs::read_to_string(&cfg.pods.resolv_conf).unwrap_or_default());
    let dns = resolv::NodeDns {
        cluster_dns: cfg.pods.cluster_dns.iter().map(|ip| ip.to_string()).collect(),
        cluster_domain: cfg.pods.cluster_domain.clone(),
        host: host_dns,
    };
    let mi = node.machine();
    let allocatable = (
        f64::from(mi.cpus),
        mi.memory_bytes.saturating_sub(100 * 1024 * 1024) as f64,
        mi.ephemeral_storage_bytes as f64 * 0.9,
    );
    let rt = Arc::new(PodRuntime {
        client: client.clone(),
        node_name: node_name.clone(),
        node_ips: node.node_ips().to_vec(),
        node_hostname: mi.hostname.clone(),
        layout,
        flags: cfg.pods.clone(),
        network: network.clone(),
        exe,
        agnhost,
        services,
        events,
        dns,
        allocatable,
        registry: Mutex::new(Default::default()),
        metrics,
    });

    let streaming = Arc::new(pods::streaming::Streaming(rt.clone()));
    let (sf, rd, n) = (cfg.server.clone(), root_dir.clone(), node_name.clone());
    tokio::spawn(async move {
        if let Err(e) = knet_node_agent::server::run(sf, rd, client_ca, streaming).await {
            tracing::error!(node = %n, error = %e, "THE KUBELET API IS NOT RUNNING: kubectl exec, logs and attach will fail");
        }
    });

    // The pod network: wait for the podCIDR, write the config when the dir has none, keep it loaded.
    let node_ip = node.node_ips().first().copied();
    let (net, nd, n, nf) = (network.clone(), node.clone(), node_name.clone(), cfg.network.clone());
    tokio::spawn(async move {
        let cidrs = match nd.wait_for_pod_cidrs().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(node = %n, error = %e, "no podCIDR: the pod network stays down");
                return;
            }
        };
        tracing::info!(node = %n, pod_cidrs = ?cidrs, "podCIDR assigned");
        // The underlay's MTU less the overlay's overhead (VXLAN), so pods never send what the underlay drops.
        let mtu = match node_ip {
            Some(std::net::IpAddr::V4(ip)) => match knet_node_agent::network::detect_pod_mtu(&nf, ip).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(node = %n, error = %e, "finding the pod MTU failed; using the node IP's device's");
                    node_ip.and_then(machine::mtu_of).unwrap_or(1500)
                }
            },
            _ => node_ip.and_then(machine::mtu_of).unwrap_or(1500),
        };
        loop {
            if let Err(e) = net.ensure_default_config(&cidrs, mtu) {
                tracing::warn!(node = %n, error = %e, "writing the network config failed");
            }
            let state = match net.reload().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::debug!(node = %n, error = %e, "network config not ready");
                    Err(NETWORK_NOT_READY.to_string())
                }
            };
            ready_tx.send_if_modified(|cur| {
                if *cur != state {
                    *cur = state.clone();
                    true
                } else {
                    false
                }
            });
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });

    let _ = health_tx.send(Ok(()));
    tracing::info!(node = %node_name, root_dir = %root_dir.display(), "node agent running");
    let manager = tokio::spawn(pods::manager::run(rt));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        r = manager => { r.context("the pod manager stopped")?; }
    }
    // Pods keep running: a restarted agent adopts them.
    tracing::info!(node = %node_name, "stopping; pods keep running");
    Ok(())
}
