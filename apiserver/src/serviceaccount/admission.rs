//! The ServiceAccount admission plugin on pod creation, as kube-apiserver's: `spec.serviceAccountName`
//! defaults to `default`; the account must exist (the `default` one is looked for a few times, since the
//! controller makes it right after its namespace); unless `automountServiceAccountToken` is false on the pod
//! (or, when the pod says nothing, on the account), every container and init container without a mount at
//! `/var/run/secrets/kubernetes.io/serviceaccount` gets the projected `kube-api-access-<5 chars>` volume there
//! (token, `kube-root-ca.crt`'s `ca.crt`, the namespace); the account's imagePullSecrets are copied to a pod
//! that has none. Mirror pods are left alone.
//!
//! Unlike kube-apiserver, knet-apiserver also makes the `default` account when it creates a namespace
//! ([`ensure_default_account`]), so pods can be created before knet-controllers runs; the serviceaccount
//! controller still makes it again when it is deleted.

use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use super::TOKEN_MOUNT_PATH;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::resources;

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The prefix of the generated volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// The ConfigMap every namespace gets with the cluster CA.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Tries and pause for the `default` account, which the controller may still be making.
const DEFAULT_LOOKUPS: usize = 10;
const LOOKUP_PAUSE: Duration = Duration::from_millis(150);

/// The 5 random characters of a generated name (kube's `SimpleNameGenerator` alphabet).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The projected volume of the service-account token, CA and namespace.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": super::issuer::WARN_ONLY_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
            ]
        }
    })
}

/// Whether the token is mounted: the pod's choice wins, then the account's, else yes.
pub fn should_automount(pod: &Value, sa: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| sa.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// Adds the token volume and its mounts to `pod` (`suffix` names a new volume).
pub fn mount_token(pod: &mut Value, suffix: &str) {
    let existing = pod.pointer("/spec/volumes").and_then(Value::as_array).and_then(|vs| {
        vs.iter()
            .filter_map(|v| v.get("name").and_then(Value::as_str))
            .find(|n| n.starts_with(VOLUME_PREFIX))
            .map(String::from)
    });
    let volume_name = existing.clone().unwrap_or_else(|| format!("{VOLUME_PREFIX}{suffix}"));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod.pointer_mut(&format!("/spec/{list}")).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let has = c.get("volumeMounts").and_then(Value::as_array).is_some_and(|ms| {
                ms.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH))
            });
            if has {
                continue;
            }
            if !c.get("volumeMounts").is_some_and(Value::is_array) {
                c["volumeMounts"] = json!([]);
            }
            if let Some(ms) = c["volumeMounts"].as_array_mut() {
                ms.push(mount.clone());
                needed = true;
            }
        }
    }
    if needed && existing.is_none() {
        if !pod["spec"].get("volumes").is_some_and(Value::is_array) {
            pod["spec"]["volumes"] = json!([]);
        }
        if let Some(vs) = pod["spec"]["volumes"].as_array_mut() {
            vs.push(token_volume(&volume_name));
        }
    }
}

/// Applies the plugin's changes for account `sa` (pure part).
pub fn mutate(pod: &mut Value, sa: &Value, suffix: &str) {
    if should_automount(pod, sa) {
        mount_token(pod, suffix);
    }
    let has_pull_secrets =
        pod.pointer("/spec/imagePullSecrets").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if !has_pull_secrets {
        if let Some(secrets) = sa.get("imagePullSecrets").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let names: Vec<Value> = secrets.iter().filter_map(|s| s.get("name")).map(|n| json!({"name": n})).collect();
            pod["spec"]["imagePullSecrets"] = Value::Array(names);
        }
    }
}

/// Creates the `default` ServiceAccount of a new namespace (an existing one is left alone).
pub async fn ensure_default_account(reg: &Registry, namespace: &str) {
    let Some(res) = resources::find("", "v1", "serviceaccounts") else { return };
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}});
    match Box::pin(reg.create(res, Some(namespace), sa, &crate::registry::WriteOptions::default())).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
        Err(e) => tracing::warn!(namespace, error = %e, "could not create the default service account"),
    }
}

/// Runs the plugin on a pod being created in `namespace`.
pub async fn admit(reg: &Registry, namespace: &str, pod: &mut Value) -> Result<(), ApiError> {
    let annotations = pod.pointer("/metadata/annotations").and_then(Value::as_object);
    if annotations.is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION)) {
        return Ok(());
    }
    if !pod.get("spec").is_some_and(Value::is_object) {
        return Ok(());
    }
    let name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(name);
    let res = resources::find("", "v1", "serviceaccounts").ok_or(ApiError::NoSuchPath)?;
    let tries = if name == DEFAULT_SERVICE_ACCOUNT { DEFAULT_LOOKUPS } else { 1 };
    let mut found = None;
    let mut last_err = None;
    for i in 0..tries {
        if i > 0 {
            tokio::time::sleep(LOOKUP_PAUSE).await;
        }
        match reg.get(res, Some(namespace), &name).await {
            Ok(sa) => {
                found = Some(sa);
                break;
            }
            Err(e @ ApiError::NotFound { .. }) => last_err = Some(e),
            Err(e) => {
                last_err = Some(e);
                break;
            }
        }
    }
    let Some(sa) = found else {
        let pod_name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .or_else(|| pod.pointer("/metadata/generateName").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let cause = match last_err {
            Some(ApiError::NotFound { .. }) | None => format!("serviceaccount {name:?} not found"),
            Some(e) => e.to_string(),
        };
        return Err(ApiError::Forbidden(format!(
            "pods {pod_name:?} is forbidden: error looking up service account {namespace}/{name}: {cause}"
        )));
    };
    mutate(pod, &sa, &random_suffix());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
        "serviceAccountName": "default",
        "initContainers": [{"name": "i", "image": "busybox"}],
        "containers": [
            {"name": "a", "image": "busybox"},
            {"name": "b", "image": "busybox", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}
        ]}})
    }

    #[test]
    fn mounts_the_projected_volume_in_every_container_without_one() {
        let mut p = pod();
        mutate(&mut p, &json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "reg"}]}), "x2b4z");
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0]["name"], "kube-api-access-x2b4z");
        assert_eq!(vols[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3607);
        assert_eq!(vols[0]["projected"]["sources"][1]["configMap"]["name"], "kube-root-ca.crt");
        let mount = json!({"name": "kube-api-access-x2b4z", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(p["spec"]["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(p["spec"]["containers"][1]["volumeMounts"].as_array().unwrap().len(), 1);
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        assert!(random_suffix().chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn automount_false_on_the_pod_or_the_account_mounts_nothing() {
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(false);
        mutate(&mut p, &json!({}), "aaaaa");
        assert!(p["spec"].get("volumes").is_none());
        let mut p = pod();
        mutate(&mut p, &json!({"automountServiceAccountToken": false}), "aaaaa");
        assert!(p["spec"].get("volumes").is_none());
        // The pod's own choice wins over the account's.
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(true);
        mutate(&mut p, &json!({"automountServiceAccountToken": false}), "aaaaa");
        assert!(p["spec"]["volumes"].is_array());
    }
}
