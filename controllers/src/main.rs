//! `knet-controllers`: runs knet's controllers and scheduler against an API server.

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use knet_component_base::health;
use knet_component_base::logs::LogFormat;
use knet_controllers::runtime::leader::{LeaderElectionConfig, LeaderElector};
use knet_controllers::runtime::{client, Metrics};
use knet_controllers::{Config, Context, Informers};
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(name = "knet-controllers", about = "knet's controller manager and scheduler", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "knet-controllers" } else { host };
    format!("{host}_{}", uuid_suffix())
}

fn uuid_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn spawn_controllers(ctx: &Context, tasks: &mut JoinSet<Result<()>>) {
    macro_rules! controller {
        ($name:expr, $($module:ident)::+) => {
            if ctx.config.enabled($name) {
                let c = ctx.clone();
                tasks.spawn(async move {
                    knet_controllers::$($module)::+::run(c).await.with_context(|| format!("controller {}", $name))
                });
            }
        };
    }
    controller!("endpoint", endpoints);
    // One module runs the EndpointSlice and the mirroring controller, each when enabled.
    if ctx.config.enabled("endpointslice") || ctx.config.enabled("endpointslicemirroring") {
        let c = ctx.clone();
        tasks.spawn(async move { knet_controllers::endpointslice::run(c).await.context("controller endpointslice") });
    }
    controller!("deployment", deployment);
    // One module runs both the ReplicaSet and the ReplicationController controller, each when enabled.
    if ctx.config.enabled("replicaset") || ctx.config.enabled("replicationcontroller") {
        let c = ctx.clone();
        tasks.spawn(async move { knet_controllers::replicaset::run(c).await.context("controller replicaset") });
    }
    controller!("scheduler", scheduler);
    controller!("nodeipam", nodeipam);
    controller!("nodelifecycle", nodelifecycle);
    controller!("service-lb", loadbalancer);
    controller!("garbagecollector", garbagecollector);
    controller!("podgc", podgc);
    controller!("namespace", namespace);
    controller!("serviceaccount", serviceaccount);
    controller!("root-ca-cert-publisher", rootcacert);
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    knet_component_base::logs::init(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = cli.config;
    let unknown = cfg.unknown_controllers();
    if !unknown.is_empty() {
        bail!(
            "--controllers: unknown controller(s) {}; known: {}",
            unknown.join(", "),
            knet_controllers::config::CONTROLLERS.join(", ")
        );
    }
    let metrics = Metrics::new();
    let (ready_tx, ready_rx) = watch::channel(Err("informers not synced".to_string()));
    let m = metrics.clone();
    health::serve(cfg.bind_address, Arc::new(move || m.encode()), ready_rx).await?;
    let kube_config = knet_component_base::kubeconfig::load(cfg.kubeconfig.as_deref()).await?;
    let client = client::build(kube_config, metrics.clone()).context("building the API client")?;
    let identity = cfg.identity.clone().unwrap_or_else(default_identity);
    let cfg = Arc::new(cfg);

    let mut elector = None;
    if cfg.leader_elect {
        let mut e = LeaderElector::new(
            client.clone(),
            LeaderElectionConfig {
                namespace: cfg.leader_elect_resource_namespace.clone(),
                name: cfg.leader_elect_resource_name.clone(),
                identity: identity.clone(),
                lease_duration: cfg.leader_elect_lease_duration,
                renew_deadline: cfg.leader_elect_renew_deadline,
                retry_period: cfg.leader_elect_retry_period,
            },
        );
        tracing::info!(identity = %identity, "waiting to become leader");
        e.acquire().await;
        elector = Some(e);
    }
    metrics.set_leader(true);

    let informers = Informers::new();
    let mut informer_tasks = JoinSet::new();
    informers.start(&client, cfg.list_page_size, &mut informer_tasks);
    let ctx = Context { client, informers: informers.clone(), config: cfg.clone(), metrics: metrics.clone(), identity };
    let mut controllers = JoinSet::new();
    spawn_controllers(&ctx, &mut controllers);
    tokio::spawn(async move {
        informers.wait_synced().await;
        let _previous = ready_tx.send_replace(Ok(()));
        tracing::info!("informers synced");
    });

    let lost = async {
        match elector.as_mut() {
            Some(e) => Some(e.keep_leading().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        Some(err) = lost => {
            metrics.set_leader(false);
            bail!("{err}");
        }
        Some(done) = controllers.join_next() => {
            if let Some(e) = elector.as_mut() {
                e.release().await;
            }
            match done {
                Ok(Ok(())) => bail!("a controller stopped"),
                Ok(Err(e)) => Err(e),
                Err(e) => bail!("a controller panicked: {e}"),
            }
        }
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            if let Some(e) = elector.as_mut() {
                e.release().await;
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
