//! `agnhost netexec`: an HTTP server (`--http-port`, 8080) with agnhost's endpoints — `/`, `/clientip`,
//! `/header`, `/dial`, `/echo`, `/exit`, `/healthz`, `/readyz`, `/hostname`, `/hostName`, `/redirect`,
//! `/shell`, `/shutdown` — and a UDP server (`--udp-port`, 8081; -1 disables it) answering `hostname`,
//! `echo MSG` and `clientip`. Answers, status codes and error texts follow upstream's handlers; unknown paths
//! get the root handler's answer, as with Go's `ServeMux`.

mod dial;
mod handlers;
mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::{listen, log};

#[derive(clap::Args, Debug, Clone)]
pub struct Flags {
    /// HTTP Listen Port.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// File containing an x509 certificate for HTTPS (not supported by knet's agnhost).
    #[arg(long, default_value = "")]
    tls_cert_file: String,
    /// File containing an x509 private key matching --tls-cert-file (not supported by knet's agnhost).
    #[arg(long, default_value = "")]
    tls_private_key_file: String,
    /// UDP Listen Port (-1 disables the UDP server).
    #[arg(long, default_value_t = 8081, allow_negative_numbers = true)]
    udp_port: i32,
    /// SCTP Listen Port (-1: none; SCTP is not supported by knet's agnhost).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    sctp_port: i32,
    /// Override the HTTP handler to always respond as if it were a GET with this path & params.
    #[arg(long, default_value = "")]
    http_override: String,
    /// A comma separated list of ip addresses the udp servers listen from.
    #[arg(long, default_value = "")]
    udp_listen_addresses: String,
    /// Number of seconds to delay shutdown when receiving SIGTERM.
    #[arg(long, default_value_t = 0)]
    delay_shutdown: u64,
}

/// What the handlers share.
pub struct State {
    /// The UDP server is up (what `/healthz` and `/readyz` report).
    pub server_ready: AtomicBool,
    /// SIGTERM arrived (`/readyz` answers 503 from then on).
    pub sigterm_received: AtomicBool,
    /// The exit code `/exit` asked for.
    pub exit_code: AtomicI32,
    /// `/exit` with a timeout: a graceful shutdown with that timeout, then exit with `exit_code`.
    pub exit: mpsc::Sender<Duration>,
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    if !flags.tls_cert_file.is_empty() {
        log::fatal("--tls-cert-file: HTTPS is not supported by knet's agnhost");
    }
    if flags.sctp_port != -1 {
        log::fatal("--sctp-port: SCTP is not supported by knet's agnhost");
    }
    let (exit_tx, mut exit_rx) = mpsc::channel(1);
    let state = Arc::new(State {
        server_ready: AtomicBool::new(false),
        sigterm_received: AtomicBool::new(false),
        exit_code: AtomicI32::new(0),
        exit: exit_tx,
    });

    let on_term = state.clone();
    let delay = flags.delay_shutdown;
    let mut term = listen::sigterm()?;
    tokio::spawn(async move {
        if term.recv().await.is_some() {
            on_term.sigterm_received.store(true, Ordering::SeqCst);
            if delay > 0 {
                log::line(format!("Sleeping {delay} seconds before terminating..."));
                tokio::time::sleep(Duration::from_secs(delay)).await;
            }
            std::process::exit(0);
        }
    });

    if flags.udp_port != -1 {
        let port = u16::try_from(flags.udp_port).with_context(|| format!("invalid --udp-port {}", flags.udp_port))?;
        for address in udp::listen_addresses(&flags.udp_listen_addresses)? {
            let socket = listen::udp(&address, port).await?;
            log::line(format!("Started UDP server on port {address} {port}"));
            tokio::spawn(udp::serve(socket, state.clone()));
        }
    }

    let app = handlers::router(state.clone(), &flags.http_override);
    let listener = listen::tcp(flags.http_port).await?;
    log::line(format!("Started HTTP server on port {}", flags.http_port));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let exiting = state.clone();
    let exit_after = tokio::spawn(async move {
        let Some(timeout) = exit_rx.recv().await else { return };
        let _ = shutdown_tx.send(());
        tokio::time::sleep(timeout).await;
        log::line("Graceful shutdown completed with: context deadline exceeded");
        std::process::exit(exiting.exit_code.load(Ordering::SeqCst));
    });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.await;
        })
        .await
        .context("serving HTTP")?;
    // The graceful shutdown finished before its timeout: exit with the code `/exit` asked for.
    exit_after.abort();
    log::line("Graceful shutdown completed with: <nil>");
    std::process::exit(state.exit_code.load(Ordering::SeqCst))
}
