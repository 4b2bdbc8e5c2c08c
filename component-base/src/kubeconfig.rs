//! The API client's configuration: from `--kubeconfig FILE`, or, without one, the in-cluster environment
//! (service-account token and `KUBERNETES_SERVICE_HOST`) or the default kubeconfig, as kube-rs infers it.

use std::path::Path;

/// Why no client configuration could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("reading kubeconfig {path}: {source}")]
    Read { path: String, source: kube::config::KubeconfigError },
    #[error("loading kubeconfig {path}: {source}")]
    Load { path: String, source: kube::config::KubeconfigError },
    #[error("no --kubeconfig and no in-cluster configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
}

/// Loads the configuration from `path`, or infers it when there is none.
pub async fn load(path: Option<&Path>) -> Result<kube::Config, KubeconfigError> {
    match path {
        Some(path) => {
            let shown = path.display().to_string();
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|source| KubeconfigError::Read { path: shown.clone(), source })?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| KubeconfigError::Load { path: shown, source })
        }
        None => Ok(kube::Config::infer().await?),
    }
}
