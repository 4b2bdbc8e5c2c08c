//! Kubeconfig files: one cluster (server URL + inline CA), one token user, one context named `knet` that is
//! the current context, as `kubectl config view --raw --minify` would show them.

use std::path::Path;

use base64::Engine;
use serde_json::json;

use super::{files, PkiError};

/// The context every knet kubeconfig selects.
pub const CONTEXT_NAME: &str = "knet";

/// The kubeconfig text for `user` authenticating with `token` to the cluster at `server_url` whose CA is
/// `ca_pem`.
pub fn kubeconfig_yaml(
    cluster_name: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> Result<String, PkiError> {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster_name,
            "cluster": { "server": server_url, "certificate-authority-data": ca_data },
        }],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{
            "name": CONTEXT_NAME,
            "context": { "cluster": cluster_name, "user": user },
        }],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    });
    Ok(serde_yaml::to_string(&config)?)
}

/// Writes a kubeconfig (see [`kubeconfig_yaml`]) to `path` atomically with mode 0600, making its directory.
pub fn write_kubeconfig(
    path: &Path,
    cluster_name: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> Result<(), PkiError> {
    let yaml = kubeconfig_yaml(cluster_name, server_url, ca_pem, user, token)?;
    files::write_atomic(path, yaml.as_bytes(), files::SECRET_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn kube_rs_reads_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/admin.kubeconfig");
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        write_kubeconfig(&path, "knet", "https://127.0.0.1:6443", ca, "admin", "s3cret").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("knet"));
        let ctx = kc.contexts[0].context.as_ref().unwrap();
        assert_eq!(ctx.cluster, "knet");
        assert_eq!(ctx.user.as_deref(), Some("admin"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        let ca_data = cluster.certificate_authority_data.as_deref().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(ca_data).unwrap(), ca.as_bytes());
        assert_eq!(kc.auth_infos[0].name, "admin");
        // kube-rs keeps the token secret; read it back as plain YAML.
        let raw: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(raw["users"][0]["user"]["token"].as_str(), Some("s3cret"));
    }
}
