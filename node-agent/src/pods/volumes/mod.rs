//! Pod volumes as kubelet sets them up under `pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`: secret,
//! configMap (items, defaultMode, optional), downwardAPI, projected (serviceAccountToken through the
//! TokenRequest API bound to the pod, configMap, secret, downwardAPI), emptyDir and hostPath. Contents are
//! rendered by pure functions (`payload`) and written with kubelet's atomic writer (`atomic`); a periodic
//! sync picks up changed Secrets and ConfigMaps and refreshes tokens at 80 % of their lifetime.

pub mod atomic;
pub mod payload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount, Volume};
use kube::api::PostParams;
use kube::{Api, Client};

use self::atomic::Payload;
use super::env::PodContext;

/// Why a volume could not be set up (shown as kubelet's `MountVolume.SetUp failed for volume "X" : …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("failed to fetch token: {0}")]
    Token(String),
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Io(String),
    #[error("hostPath type check failed: {0}")]
    HostPath(String),
    #[error("{0}")]
    Env(String),
    #[error("volume type {0} is not supported by knet")]
    Unsupported(String),
}

/// A volume's failure, with the volume's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFailure {
    pub volume: String,
    pub error: VolumeError,
}

impl std::fmt::Display for MountFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MountVolume.SetUp failed for volume {:?} : {}", self.volume, self.error)
    }
}

/// A token the pod holds: when to refresh it.
#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// The volumes of one pod.
#[derive(Debug, Default)]
pub struct PodVolumes {
    /// Volume name → node path.
    pub paths: HashMap<String, PathBuf>,
    tokens: HashMap<(String, String), CachedToken>,
}

/// The node directory of a volume.
pub fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(format!("kubernetes.io~{plugin}")).join(name)
}

fn plugin_of(v: &Volume) -> Result<&'static str, VolumeError> {
    Ok(if v.secret.is_some() {
        "secret"
    } else if v.config_map.is_some() {
        "configmap"
    } else if v.downward_api.is_some() {
        "downward-api"
    } else if v.projected.is_some() {
        "projected"
    } else if v.empty_dir.is_some() {
        "empty-dir"
    } else if v.host_path.is_some() {
        "host-path"
    } else {
        let j = serde_json::to_value(v).unwrap_or_default();
        let kind =
            j.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned()).unwrap_or_else(|| "unknown".into());
        return Err(VolumeError::Unsupported(kind));
    })
}

async fn get_secret(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>, VolumeError> {
    Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await.map_err(|e| VolumeError::Api(e.to_string()))
}

async fn get_config_map(client: &Client, ns: &str, name: &str) -> Result<Option<ConfigMap>, VolumeError> {
    Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(name).await.map_err(|e| VolumeError::Api(e.to_string()))
}

impl PodVolumes {
    /// Sets up (or refreshes) every volume of `pod`; the first failure stops and is returned.
    pub async fn sync(&mut self, client: &Client, ctx: &PodContext<'_>, pod_dir: &Path) -> Result<(), MountFailure> {
        let pod = ctx.pod;
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        for v in pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default() {
            let fail = |error| MountFailure { volume: v.name.clone(), error };
            let plugin = plugin_of(&v).map_err(fail)?;
            let dir = volume_dir(pod_dir, plugin, &v.name);
            let path = match self.sync_one(client, ctx, &ns, &v, &dir).await {
                Ok(p) => p,
                Err(error) => return Err(fail(error)),
            };
            self.paths.insert(v.name.clone(), path);
        }
        Ok(())
    }

    async fn sync_one(
        &mut self,
        client: &Client,
        ctx: &PodContext<'_>,
        ns: &str,
        v: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, VolumeError> {
        let io = |e: std::io::Error| VolumeError::Io(e.to_string());
        let payload: Payload = if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let secret = get_secret(client, ns, &name).await?;
            payload::secret(secret.as_ref(), &name, s.items.as_deref(), s.optional, s.default_mode)?
        } else if let Some(c) = &v.config_map {
            let cm = get_config_map(client, ns, &c.name).await?;
            payload::config_map(cm.as_ref(), &c.name, c.items.as_deref(), c.optional, c.default_mode)?
        } else if let Some(d) = &v.downward_api {
            payload::downward_api(ctx, d.items.as_deref().unwrap_or_default(), d.default_mode)?
        } else if let Some(p) = &v.projected {
            let mut out = Payload::new();
            let default_mode = p.default_mode;
            for source in p.sources.iter().flatten() {
                if let Some(s) = &source.secret {
                    let secret = get_secret(client, ns, &s.name).await?;
                    out.extend(payload::secret(
                        secret.as_ref(),
                        &s.name,
                        s.items.as_deref(),
                        s.optional,
                        default_mode,
                    )?);
                }
                if let Some(c) = &source.config_map {
                    let cm = get_config_map(client, ns, &c.name).await?;
                    out.extend(payload::config_map(
                        cm.as_ref(),
                        &c.name,
                        c.items.as_deref(),
                        c.optional,
                        default_mode,
                    )?);
                }
                if let Some(d) = &source.downward_api {
                    out.extend(payload::downward_api(ctx, d.items.as_deref().unwrap_or_default(), default_mode)?);
                }
                if let Some(t) = &source.service_account_token {
                    let token = self.token(client, ctx.pod, &v.name, t).await?;
                    let mode = payload::mode(None, default_mode);
                    out.insert(t.path.clone(), (token.into_bytes(), mode));
                }
                if source.cluster_trust_bundle.is_some() || source.pod_certificate.is_some() {
                    return Err(VolumeError::Unsupported("projected clusterTrustBundle/podCertificate".into()));
                }
            }
            out
        } else if v.empty_dir.is_some() {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
            }
            return Ok(dir.to_path_buf());
        } else if let Some(h) = &v.host_path {
            return host_path(&h.path, h.type_.as_deref().unwrap_or_default());
        } else {
            return Err(VolumeError::Unsupported(v.name.clone()));
        };
        atomic::write(dir, &payload).map_err(io)?;
        Ok(dir.to_path_buf())
    }

    async fn token(
        &mut self,
        client: &Client,
        pod: &Pod,
        volume: &str,
        t: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
    ) -> Result<String, VolumeError> {
        let key = (volume.to_string(), t.path.clone());
        if let Some(c) = self.tokens.get(&key) {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
        let expiration = t.expiration_seconds.unwrap_or(3600);
        let request = TokenRequest {
            metadata: Default::default(),
            spec: TokenRequestSpec {
                audiences: t.audience.iter().filter(|a| !a.is_empty()).cloned().collect(),
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            status: None,
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
        let answer = api
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
            .map_err(|e| VolumeError::Token(e.to_string()))?;
        let status = answer.status.ok_or_else(|| VolumeError::Token("the answer has no status".into()))?;
        let lifetime = status.expiration_timestamp.0.duration_since(jiff::Timestamp::now()).unsigned_abs();
        let refresh_at = Instant::now() + lifetime.mul_f64(0.8).min(Duration::from_secs(24 * 3600));
        self.tokens.insert(key, CachedToken { token: status.token.clone(), refresh_at });
        Ok(status.token)
    }
}

fn host_path(path: &str, type_: &str) -> Result<PathBuf, VolumeError> {
    let p = PathBuf::from(path);
    let fail = |what: &str| Err(VolumeError::HostPath(format!("{path} is not a {what}")));
    match type_ {
        "DirectoryOrCreate" => {
            std::fs::create_dir_all(&p).map_err(|e| VolumeError::Io(e.to_string()))?;
        }
        "Directory" if !p.is_dir() => return fail("directory"),
        "FileOrCreate" if !p.exists() => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| VolumeError::Io(e.to_string()))?;
            }
            std::fs::write(&p, b"").map_err(|e| VolumeError::Io(e.to_string()))?;
        }
        "File" if !p.is_file() => return fail("file"),
        "Socket" | "CharDevice" | "BlockDevice" if !p.exists() => return fail(type_),
        _ if !p.exists() => return Err(VolumeError::HostPath(format!("{path} does not exist"))),
        _ => {}
    }
    Ok(p)
}
