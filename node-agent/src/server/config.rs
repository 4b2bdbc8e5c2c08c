//! The kubelet API server's flags (kubelet's names).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

/// Flags of the kubelet API server.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// Address the kubelet API listens on (kubelet `--address`).
    #[arg(long = "address", default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// Port of the kubelet API (kubelet `--port`); reported in the Node's `daemonEndpoints`.
    #[arg(long = "port", default_value_t = 10250)]
    pub port: u16,
    /// CA bundle (PEM) that signs the certificates of clients allowed to call the kubelet API (the API server's
    /// kubelet-client certificate). Default: the CA of the kubeconfig.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Serving certificate (PEM, the chain) of the kubelet API; without it (and --tls-private-key-file) a
    /// self-signed one is made in `<root-dir>/pki/` on first start.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
}

impl Default for ServerFlags {
    fn default() -> Self {
        ServerFlags {
            address: IpAddr::from([0, 0, 0, 0]),
            port: 10250,
            client_ca_file: None,
            tls_cert_file: None,
            tls_private_key_file: None,
        }
    }
}
