//! The files of secret, configMap and downwardAPI volumes (and projections), from the objects (pure).

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Secret};

use super::atomic::Payload;
use super::VolumeError;
use crate::pods::env::{field_value, resource_value, PodContext};

/// kubelet's default file mode (0644).
pub const DEFAULT_MODE: i32 = 0o644;

/// An item's mode, else the volume's default, else 0644.
pub fn mode(item: Option<i32>, default_mode: Option<i32>) -> u32 {
    item.or(default_mode).unwrap_or(DEFAULT_MODE) as u32 & 0o7777
}

/// The files of a secret or configMap source (`data`, `None` when the object is missing): nothing for a
/// missing optional source, `not_found` for a missing required one, else the `items` (every key without them).
fn select(
    data: Option<Vec<(String, Vec<u8>)>>,
    not_found: impl FnOnce() -> VolumeError,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    missing: impl Fn(String) -> VolumeError,
    optional: Option<bool>,
) -> Result<Payload, VolumeError> {
    let optional = optional.unwrap_or(false);
    let Some(data) = data else {
        return if optional { Ok(Payload::new()) } else { Err(not_found()) };
    };
    let mut out = Payload::new();
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.iter().find(|(k, _)| *k == it.key) {
                    Some((_, v)) => {
                        out.insert(it.path.clone(), (v.clone(), mode(it.mode, default_mode)));
                    }
                    None if optional => {}
                    None => return Err(missing(it.key.clone())),
                }
            }
        }
        _ => {
            for (k, v) in data {
                out.insert(k, (v, mode(None, default_mode)));
            }
        }
    }
    Ok(out)
}

/// A secret volume's files.
pub fn secret(
    secret: Option<&Secret>,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: Option<i32>,
) -> Result<Payload, VolumeError> {
    let data = secret.map(|s| {
        let mut data: Vec<(String, Vec<u8>)> =
            s.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        data.extend(s.string_data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        data
    });
    select(data, || VolumeError::SecretNotFound(name.into()), items, default_mode, VolumeError::SecretKey, optional)
}

/// A configMap volume's files (`data` and `binaryData`).
pub fn config_map(
    cm: Option<&ConfigMap>,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: Option<i32>,
) -> Result<Payload, VolumeError> {
    let data = cm.map(|cm| {
        let mut data: Vec<(String, Vec<u8>)> =
            cm.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        data.extend(cm.binary_data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        data
    });
    let not_found = || VolumeError::ConfigMapNotFound(name.into());
    select(data, not_found, items, default_mode, VolumeError::ConfigMapKey, optional)
}

/// A downwardAPI volume's files.
pub fn downward_api(
    ctx: &PodContext,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            field_value(ctx, f).map_err(|e| VolumeError::Env(e.to_string()))?
        } else if let Some(r) = &it.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let container = ctx
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == name).or(s.containers.first()))
                .cloned()
                .unwrap_or_default();
            resource_value(ctx, &container, r).map_err(|e| VolumeError::Env(e.to_string()))?
        } else {
            String::new()
        };
        out.insert(it.path.clone(), (value.into_bytes(), mode(it.mode, default_mode)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn secret_obj() -> Secret {
        Secret {
            data: Some(
                [
                    ("nginx.crt".to_string(), ByteString(b"CERT".to_vec())),
                    ("nginx.key".to_string(), ByteString(b"KEY".to_vec())),
                ]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn secret_files_with_items_and_modes() {
        let all = secret(Some(&secret_obj()), "s", None, None, None).unwrap();
        assert_eq!(all["nginx.crt"], (b"CERT".to_vec(), 0o644));
        assert_eq!(all.len(), 2);
        let items: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "nginx.key", "path": "tls/key", "mode": 0o400}])).unwrap();
        let some = secret(Some(&secret_obj()), "s", Some(&items), None, Some(0o440)).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some["tls/key"].1, 0o400);
        assert_eq!(
            secret(None, "nginxsecret", None, None, None).unwrap_err().to_string(),
            "secret \"nginxsecret\" not found"
        );
        assert!(secret(None, "s", None, Some(true), None).unwrap().is_empty());
        let bad: Vec<KeyToPath> = serde_json::from_value(json!([{"key": "nope", "path": "x"}])).unwrap();
        assert_eq!(
            secret(Some(&secret_obj()), "s", Some(&bad), None, None).unwrap_err().to_string(),
            "references non-existent secret key: nope"
        );
    }

    #[test]
    fn config_map_files_include_binary_data() {
        let cm: ConfigMap =
            serde_json::from_value(json!({"data": {"ca.crt": "PEM"}, "binaryData": {"b": "AAE="}})).unwrap();
        let p = config_map(Some(&cm), "kube-root-ca.crt", None, None, Some(0o600)).unwrap();
        assert_eq!(p["ca.crt"], (b"PEM".to_vec(), 0o600));
        assert_eq!(p["b"].0, vec![0u8, 1]);
        assert_eq!(config_map(None, "x", None, None, None).unwrap_err().to_string(), "configmap \"x\" not found");
    }

    #[test]
    fn downward_files() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        let ctx = PodContext { pod: &pod, pod_ips: &[], host_ips: &[], allocatable: (1.0, 1.0, 1.0) };
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
        ]))
        .unwrap();
        let p = downward_api(&ctx, &items, None).unwrap();
        assert_eq!(p["namespace"].0, b"ns");
        assert_eq!(p["labels"].0, b"a=\"1\"");
    }
}
