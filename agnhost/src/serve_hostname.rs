//! `agnhost serve-hostname`: answers every request with the host name over HTTP (default), raw TCP or UDP on
//! `--port` (9376). After SIGTERM it keeps serving for 60 s ("Awaiting pod deletion"), then exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use tokio::io::AsyncWriteExt;

use crate::{listen, log};

#[derive(clap::Args, Debug)]
pub struct Flags {
    /// Serve raw over TCP.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    tcp: bool,
    /// Serve raw over UDP.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    udp: bool,
    /// Serve HTTP.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    http: bool,
    /// Close connection per each HTTP request.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    close: bool,
    /// Port number.
    #[arg(long, default_value_t = 9376)]
    port: u16,
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    if flags.http && (flags.tcp || flags.udp) {
        log::fatal("Can't serve TCP/UDP mode and HTTP mode at the same time");
    }
    let hostname: Arc<str> = log::hostname().into();
    let mut term = listen::sigterm()?;
    if flags.tcp {
        let listener = listen::tcp(flags.port).await?;
        let hostname = hostname.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((mut conn, peer)) => {
                        log::line(format!("TCP request from {}", listen::canonical(peer)));
                        let _ = conn.write_all(hostname.as_bytes()).await;
                        let _ = conn.shutdown().await;
                    }
                    Err(e) => log::fatal(format!("Error from Accept(): {e}")),
                }
            }
        });
    }
    if flags.udp {
        let socket = listen::udp("", flags.port).await?;
        let hostname = hostname.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                match socket.recv_from(&mut buf).await {
                    Ok((_, peer)) => {
                        log::line(format!("UDP request from {}", listen::canonical(peer)));
                        let _ = socket.send_to(hostname.as_bytes(), peer).await;
                    }
                    Err(e) => log::fatal(format!("Error from ReadFrom(): {e}")),
                }
            }
        });
    }
    if flags.http {
        let listener = listen::tcp(flags.port).await?;
        let close = flags.close;
        let hostname = hostname.clone();
        let app = axum::Router::new().fallback(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
            let hostname = hostname.clone();
            async move {
                log::line(format!("HTTP request from {}", listen::canonical(peer)));
                let mut response = hostname.to_string().into_response();
                if close {
                    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                response
            }
        });
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                log::fatal(e);
            }
        });
    }
    log::line(format!("Serving on port {}.", flags.port));
    term.recv().await;
    log::line("Shutting down after receiving signal: terminated.");
    log::line("Awaiting pod deletion.");
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}
