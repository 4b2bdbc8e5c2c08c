//! `agnhost`: knet's subset of Kubernetes' agnhost test image — `netexec`, `serve-hostname`, `connect` and
//! `pause` with agnhost's flags, defaults, endpoints, output and exit codes, so pod specs written for
//! `registry.k8s.io/e2e-test-images/agnhost` run unchanged.

mod connect;
mod duration;
mod listen;
mod log;
mod netexec;
mod pause;
mod serve_hostname;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "agnhost",
    about = "agnhost: the Kubernetes e2e test image's multi-tool (knet's subset: netexec, serve-hostname, connect, pause)",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates HTTP and UDP servers with various endpoints.
    Netexec(netexec::Flags),
    /// Serves the hostname through HTTP / TCP / UDP on the given port.
    ServeHostname(serve_hostname::Flags),
    /// Attempts a TCP or UDP connection and returns useful errors.
    Connect(connect::Flags),
    /// Pauses the execution.
    Pause,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Connect(flags) => std::process::exit(connect::run(&flags)),
        Command::Pause => pause::run(),
        Command::Netexec(flags) => serve(netexec::run(flags)),
        Command::ServeHostname(flags) => serve(serve_hostname::run(flags)),
    }
}

/// Runs a server subcommand on a multi-threaded runtime; a failure to serve is fatal, as in agnhost.
fn serve(server: impl std::future::Future<Output = anyhow::Result<()>>) {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => log::fatal(format!("starting the async runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(server) {
        log::fatal(format!("{e:#}"));
    }
}
