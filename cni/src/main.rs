//! `knet-cni`: the CNI plugin executable, driven by `CNI_*` environment variables and the network
//! configuration on stdin; prints a result or a spec error on stdout. Logs go to stderr (`KNET_CNI_LOG`,
//! default `warn`).

use std::io::{IsTerminal, Read, Write};

fn main() {
    let started = std::time::Instant::now();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KNET_CNI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let mut stdin = Vec::new();
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    if command.is_empty() {
        eprintln!(
            "knet-cni {}: CNI plugin (bridge + host-local IPAM); CNI protocol versions supported: {}",
            env!("CARGO_PKG_VERSION"),
            knet_cni::version::SUPPORTED.join(", ")
        );
    }
    // VERSION may come without input; never wait on a terminal.
    if !std::io::stdin().is_terminal() {
        if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
            let err = knet_cni::error::CniError::with_details(
                knet_cni::error::code::IO_FAILURE,
                "error reading from stdin",
                e.to_string(),
            );
            println!("{}", err.to_json(knet_cni::version::LATEST));
            std::process::exit(1);
        }
    }
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "started");
    let out = knet_cni::run(|k| std::env::var(k).ok(), &stdin);
    let mut stdout = std::io::stdout().lock();
    if !out.stdout.is_empty() {
        let _ = writeln!(stdout, "{}", out.stdout);
    }
    let _ = stdout.flush();
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "finished");
    std::process::exit(out.exit_code);
}
