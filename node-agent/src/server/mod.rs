//! The kubelet API: the HTTPS server the API server forwards `pods/exec`, `pods/attach`, `pods/log` and
//! `pods/portforward` to. Only clients with a certificate from the cluster CA are served.

use std::path::PathBuf;
use std::sync::Arc;

pub mod config;
pub mod runtime;

/// Why the kubelet API server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the kubelet API is not built yet")]
    NotBuilt,
}

/// Serves the kubelet API until the process ends. `root_dir` holds the serving certificate (generated on first
/// start); `client_ca` are the DER certificates of the CA the API server's client certificate must chain to,
/// used when `--client-ca-file` is not given.
pub async fn run(
    _flags: config::ServerFlags,
    _root_dir: PathBuf,
    _client_ca: Vec<Vec<u8>>,
    _runtime: Arc<dyn runtime::StreamingRuntime>,
) -> Result<(), ServerError> {
    Err(ServerError::NotBuilt)
}
