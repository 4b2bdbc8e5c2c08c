//! `knet-apiserver`: serves the Kubernetes API over TLS from a sled store.
//!
//! `knet-apiserver --data-dir DIR --bind-address IP --secure-port PORT --admin-kubeconfig FILE`
//! generates the CA, serving certificate and admin token on first start, writes the
//! admin kubeconfig and serves until stopped. `knet-apiserver kubeconfig …` writes a
//! kubeconfig for another user.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::bootstrap::Bootstrap;
use knet_apiserver::event_ttl::EventTtl;
use knet_apiserver::http::{router, AppState};
use knet_apiserver::metrics::Metrics;
use knet_apiserver::registry::Registry;
use knet_apiserver::repair::Repair;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::{auth, pki};

#[derive(Parser, Debug)]
#[command(name = "knet-apiserver", version, about = "knet's Kubernetes API server (kube-apiserver + etcd)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a kubeconfig for a user (creating its token if needed).
    Kubeconfig(KubeconfigArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Where the store, certificates and tokens live.
    #[arg(long, default_value = "/var/lib/knet/apiserver")]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The HTTPS port.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// The address clients and the `kubernetes` Service use (default: the bind address,
    /// or 127.0.0.1 when binding to all addresses).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Where to write the admin kubeconfig.
    #[arg(long)]
    admin_kubeconfig: Option<PathBuf>,
    /// The Service CIDR.
    #[arg(long, default_value = "10.96.0.0/16")]
    service_cluster_ip_range: IpNet,
    /// The NodePort range, `LOW-HIGH`.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// A static token file (`token,user,uid,"group1,group2"`); default DATA_DIR/tokens.csv.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Extra subject alternative names for the serving certificate.
    #[arg(long = "tls-san")]
    tls_sans: Vec<String>,
    /// Watch events kept in memory for watches that resume from a resourceVersion.
    #[arg(long, default_value_t = 100_000)]
    watch_history: usize,
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text")]
    log_format: knet_component_base::logs::LogFormat,
    /// How often the ClusterIP/NodePort allocation repair runs (Go duration: `3m`, `1s`);
    /// `0` runs it only at start-up.
    #[arg(long, default_value = "3m", value_parser = knet_apiserver::repair::parse_duration)]
    repair_interval: std::time::Duration,
    /// How long Events are kept after their last observation (Go duration); `0` keeps them for ever.
    #[arg(long, default_value = "1h", value_parser = knet_apiserver::repair::parse_duration)]
    event_ttl: std::time::Duration,
    /// Client certificate (PEM) shown to kubelets; default DATA_DIR/apiserver-kubelet-client.crt, made on first
    /// start (CN kube-apiserver-kubelet-client, O system:masters, signed by the cluster CA).
    #[arg(long)]
    kubelet_client_certificate: Option<PathBuf>,
    /// Key of --kubelet-client-certificate.
    #[arg(long)]
    kubelet_client_key: Option<PathBuf>,
    /// CA bundle that verifies kubelets' serving certificates; without it they are not verified.
    #[arg(long)]
    kubelet_certificate_authority: Option<PathBuf>,
    /// Node address types to reach kubelets by, most preferred first.
    #[arg(long, value_delimiter = ',', default_value = "InternalIP,Hostname,ExternalIP")]
    kubelet_preferred_address_types: Vec<String>,
    /// Issuer (`iss`) of service-account tokens.
    #[arg(long, default_value = knet_apiserver::serviceaccount::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// Private key (PKCS#8 PEM, ECDSA P-256) that signs service-account tokens; default DATA_DIR/sa.key, made on
    /// first start.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// Public keys (PEM) that verify service-account tokens (repeatable); default the signing key's.
    #[arg(long = "service-account-key-file")]
    service_account_key_files: Vec<PathBuf>,
    /// Audiences the API accepts in service-account tokens (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// Admission plugins to turn off (`ServiceAccount`).
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
}

#[derive(Args, Debug)]
struct KubeconfigArgs {
    #[arg(long, default_value = "/var/lib/knet/apiserver")]
    data_dir: PathBuf,
    /// The user name.
    #[arg(long)]
    user: String,
    /// Groups of the user (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The API server URL, e.g. https://192.168.56.10:6443.
    #[arg(long)]
    server: String,
    /// Where to write the kubeconfig.
    #[arg(long)]
    out: PathBuf,
}

fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = s.split_once('-').with_context(|| format!("node port range {s:?} is not LOW-HIGH"))?;
    let lo: u16 = lo.trim().parse().with_context(|| format!("node port range {s:?}: bad low end"))?;
    let hi: u16 = hi.trim().parse().with_context(|| format!("node port range {s:?}: bad high end"))?;
    if lo == 0 || lo > hi {
        bail!("node port range {s:?} is empty or starts at 0");
    }
    Ok(lo..=hi)
}

fn write_user_kubeconfig(a: &KubeconfigArgs) -> Result<()> {
    let pki = pki::load_or_create(&a.data_dir, &[]).context("loading the cluster CA")?;
    let groups: Vec<&str> = a.groups.iter().map(String::as_str).collect();
    let token = pki::add_user(&a.data_dir, &a.user, &groups).context("creating the user's token")?;
    pki::write_kubeconfig(&a.out, "knet", &a.server, &pki.ca_cert_pem, &a.user, &token)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {} for user {}", a.out.display(), a.user);
    Ok(())
}

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The kubelet client: given credentials, or the kubelet-client certificate made in the data directory.
fn kubelet_client(a: &ServeArgs) -> Result<knet_apiserver::kubelet::KubeletClient> {
    let (cert, key) = match (&a.kubelet_client_certificate, &a.kubelet_client_key) {
        (Some(c), Some(k)) => (read(c)?, read(k)?),
        (None, None) => pki::load_or_create_client_cert(
            &a.data_dir,
            pki::KUBELET_CLIENT_CERT_FILE,
            pki::KUBELET_CLIENT_KEY_FILE,
            pki::KUBELET_CLIENT_COMMON_NAME,
            pki::KUBELET_CLIENT_ORGANIZATION,
        )?,
        _ => bail!("--kubelet-client-certificate and --kubelet-client-key go together"),
    };
    let ca = a.kubelet_certificate_authority.as_deref().map(read).transpose()?;
    Ok(knet_apiserver::kubelet::KubeletClient::new(
        &cert,
        &key,
        ca.as_deref(),
        a.kubelet_preferred_address_types.clone(),
    )?)
}

/// The token issuer and authenticator sharing one key set.
fn service_accounts(
    a: &ServeArgs,
    registry: Arc<Registry>,
) -> Result<(knet_apiserver::serviceaccount::TokenIssuer, knet_apiserver::serviceaccount::ServiceAccountAuthenticator)>
{
    use knet_apiserver::serviceaccount::{keys, ServiceAccountAuthenticator, TokenIssuer};
    let (signing, public) = match &a.service_account_signing_key_file {
        Some(path) => (read(path)?, None),
        None => {
            let (k, p) = keys::load_or_create(&a.data_dir)?;
            (k, Some(p))
        }
    };
    let mut verifying: Vec<String> = a.service_account_key_files.iter().map(|p| read(p)).collect::<Result<_>>()?;
    if verifying.is_empty() {
        match public {
            Some(p) => verifying.push(p),
            None => bail!("--service-account-key-file is required with --service-account-signing-key-file"),
        }
    }
    let keys = keys::from_pem(&signing, &verifying)?;
    let audiences =
        if a.api_audiences.is_empty() { vec![a.service_account_issuer.clone()] } else { a.api_audiences.clone() };
    let issuer =
        TokenIssuer { keys: keys.clone(), issuer: a.service_account_issuer.clone(), audiences: audiences.clone() };
    let authn = ServiceAccountAuthenticator { keys, issuer: a.service_account_issuer.clone(), audiences, registry };
    Ok((issuer, authn))
}

async fn serve(a: ServeArgs) -> Result<()> {
    knet_component_base::logs::init(a.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&a.data_dir).with_context(|| format!("creating {}", a.data_dir.display()))?;
    let advertise = a.advertise_address.unwrap_or(if a.bind_address.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        a.bind_address
    });
    let service_ip = match a.service_cluster_ip_range {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + 1)),
        IpNet::V6(n) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(n.network()) + 1)),
    };

    let mut sans: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        service_ip.to_string(),
        advertise.to_string(),
    ];
    if !a.bind_address.is_unspecified() {
        sans.push(a.bind_address.to_string());
    }
    sans.extend(a.tls_sans.iter().cloned());
    sans.sort();
    sans.dedup();
    let pki = pki::load_or_create(&a.data_dir, &sans).context("setting up certificates")?;
    let tls = pki::server_tls_config(&pki).context("building the TLS configuration")?;
    let tokens = Arc::new(
        pki::TokenAuthenticator::load_or_create(&a.data_dir, a.token_auth_file.as_deref()).context("loading tokens")?,
    );

    let store = SledStore::open(
        &a.data_dir.join("store"),
        SledOptions { history_len: a.watch_history, ..SledOptions::default() },
    )
    .context("opening the store")?;
    knet_apiserver::admission::configure(knet_apiserver::admission::AdmissionConfig {
        service_cidrs: vec![a.service_cluster_ip_range],
    });
    let alloc = Allocator::new(AllocConfig {
        service_cidr: a.service_cluster_ip_range,
        node_ports: parse_port_range(&a.service_node_port_range)?,
    });
    alloc.load(store.as_ref()).await.context("loading allocations")?;
    let mut registry = Registry::with_watch_cache(store.clone(), alloc).await.context("starting the watch cache")?;
    registry.service_account_admission = !a.disable_admission_plugins.iter().any(|p| p == "ServiceAccount");
    let registry = Arc::new(registry);
    // Build the OpenAPI documents now rather than on kubectl's first request.
    tokio::task::spawn_blocking(knet_apiserver::openapi::prepare);

    let url_host = if advertise.is_ipv6() { format!("[{advertise}]") } else { advertise.to_string() };
    let server_url = format!("https://{url_host}:{}", a.secure_port);
    if let Some(path) = &a.admin_kubeconfig {
        let token = pki::add_user(&a.data_dir, "admin", &["system:masters"]).context("creating the admin token")?;
        pki::write_kubeconfig(path, "knet", &server_url, &pki.ca_cert_pem, "admin", &token)
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let kubelet = kubelet_client(&a).context("setting up the kubelet client")?;
    let (issuer, sa_authenticator) =
        service_accounts(&a, registry.clone()).context("setting up service-account tokens")?;
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState {
        registry: registry.clone(),
        server_address: format!("{url_host}:{}", a.secure_port),
        metrics: metrics.clone(),
        ready: Default::default(),
        kubelet: Some(Arc::new(kubelet)),
        token_issuer: Some(Arc::new(issuer)),
    });
    let authenticator = Arc::new(auth::Authenticator { tokens, service_accounts: Some(sa_authenticator) });
    let app = router(state.clone()).layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate));

    let addr = SocketAddr::new(a.bind_address, a.secure_port);
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    // Bind now, so that a taken port fails the start instead of a background task.
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true).context("setting the listener non-blocking")?;
    let server = tokio::spawn(
        axum_server::from_tcp_rustls(listener, tls)
            .context("setting up the TLS listener")?
            // Watch events are small writes: without TCP_NODELAY, Nagle's algorithm and the
            // client's delayed ACKs hold them back ~40 ms.
            .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );

    Bootstrap { advertise_address: advertise, secure_port: a.secure_port, service_ip }
        .run(&registry)
        .await
        .context("creating the bootstrap objects")?;
    // Repair allocations before serving writes, so that a value whose key was lost is not handed out again.
    let mut repair = Repair::new(registry.clone(), metrics.clone());
    let report = repair.run_once().await.context("repairing the ClusterIP/NodePort allocations")?;
    tracing::info!(?report, "allocation repair done");
    if !a.repair_interval.is_zero() {
        tokio::spawn(repair.run(a.repair_interval));
    }
    if !a.event_ttl.is_zero() {
        tokio::spawn(EventTtl::new(registry.store.clone(), metrics, a.event_ttl).run());
    }
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, data_dir = %a.data_dir.display(), "knet-apiserver serving");

    server.await.context("server task")?.context("serving")?;
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Kubeconfig(k)) => write_user_kubeconfig(&k),
        None => serve(cli.serve).await,
    }
}
