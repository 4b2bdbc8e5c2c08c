//! A container's environment as kubelet builds it: `envFrom` sources, then `env` (values with `$(VAR)`
//! expanded, `valueFrom` resolved from the pod, its resources, ConfigMaps and Secrets), then the service
//! variables of the Services that exist (`services`); `$(VAR)` in `command`/`args` expands against the result.
//! Pure: the caller fetches the referenced ConfigMaps and Secrets first ([`references`]).

pub mod expand;
pub mod quantity;
pub mod services;

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret};

/// Why a container's environment cannot be built (kubelet's CreateContainerConfigError messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey { key: String, namespace: String, name: String },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey { key: String, namespace: String, name: String },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource: {0}")]
    Resource(String),
}

/// Everything about the pod a `fieldRef` or `resourceFieldRef` can read.
#[derive(Debug, Clone, Copy)]
pub struct PodContext<'a> {
    pub pod: &'a Pod,
    pub pod_ips: &'a [IpAddr],
    pub host_ips: &'a [IpAddr],
    /// The node's allocatable cpu (cores), memory and ephemeral-storage (bytes): the default limits.
    pub allocatable: (f64, f64, f64),
}

/// The ConfigMaps and Secrets of the pod's namespace a container refers to (`None`: does not exist).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config_maps: HashMap<String, Option<ConfigMap>>,
    pub secrets: HashMap<String, Option<Secret>>,
}

/// The names of the ConfigMaps and Secrets `container`'s environment refers to.
pub fn references(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else { continue };
        if let Some(r) = &from.config_map_key_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// An ordered variable list where setting a name again replaces its value in place.
#[derive(Debug, Default)]
struct EnvList {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// A usable variable name (kubelet skips others from `envFrom`).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && name.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
}

/// The result of [`container_env`]: the variables, and the `envFrom` keys skipped as invalid names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    pub vars: Vec<(String, String)>,
    pub skipped: Vec<String>,
}

/// Sets an `envFrom` source's `data` as `PREFIX<key>` variables, in key order; names that are not valid
/// variable names are left out and listed in `skipped`.
fn env_from(env: &mut EnvList, skipped: &mut Vec<String>, prefix: &str, mut data: Vec<(String, String)>) {
    data.sort();
    for (k, v) in data {
        let name = format!("{prefix}{k}");
        if valid_name(&name) {
            env.set(name, v);
        } else {
            skipped.push(name);
        }
    }
}

/// Builds `container`'s environment (without the runtime's own HOSTNAME/PATH/HOME).
pub fn container_env(
    ctx: &PodContext,
    container: &Container,
    sources: &Sources,
    service_env: &[(String, String)],
) -> Result<ContainerEnv, EnvError> {
    let ns = ctx.pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let mut env = EnvList::default();
    let mut skipped = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name).cloned().flatten() {
                Some(cm) => {
                    env_from(&mut env, &mut skipped, &prefix, cm.data.unwrap_or_default().into_iter().collect())
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name).cloned().flatten() {
                Some(s) => {
                    let data = s.data.unwrap_or_default().into_iter();
                    let data = data.map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect();
                    env_from(&mut env, &mut skipped, &prefix, data)
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    let service: HashMap<&str, &str> = service_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) if !v.is_empty() => {
                let lookup =
                    |name: &str| env.get(name).map(str::to_string).or_else(|| service.get(name).map(|s| s.to_string()));
                expand::expand(v, &lookup)
            }
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_value(ctx, f)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_value(ctx, container, r)?
                } else if let Some(r) = &from.config_map_key_ref {
                    match sources.config_maps.get(&r.name).cloned().flatten() {
                        Some(cm) => match cm.data.unwrap_or_default().get(&r.key) {
                            Some(v) => v.clone(),
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(EnvError::ConfigMapKey {
                                    key: r.key.clone(),
                                    namespace: ns.clone(),
                                    name: r.name.clone(),
                                })
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match sources.secrets.get(&r.name).cloned().flatten() {
                        Some(s) => match s.data.unwrap_or_default().get(&r.key) {
                            Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(EnvError::SecretKey {
                                    key: r.key.clone(),
                                    namespace: ns.clone(),
                                    name: r.name.clone(),
                                })
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(EnvError::SecretNotFound(r.name.clone())),
                    }
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        env.set(var.name.clone(), value);
    }
    let mut vars = env.vars;
    let declared: std::collections::HashSet<String> = vars.iter().map(|(k, _)| k.clone()).collect();
    vars.extend(service_env.iter().filter(|(k, _)| !declared.contains(k)).cloned());
    Ok(ContainerEnv { vars, skipped })
}

/// `command` + `args` with `$(VAR)` expanded against `env`.
pub fn expand_all(items: &[String], env: &[(String, String)]) -> Vec<String> {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |name: &str| map.get(name).map(|s| s.to_string());
    items.iter().map(|i| expand::expand(i, &lookup)).collect()
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")
}

/// A map as the downward API prints it: `key="value"` lines, sorted by key.
pub fn format_map(map: &std::collections::BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
}

/// The value of a `fieldRef` (env and downwardAPI volumes).
pub fn field_value(ctx: &PodContext, f: &ObjectFieldSelector) -> Result<String, EnvError> {
    let pod = ctx.pod;
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = f.field_path.as_str();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(&meta.labels.clone().unwrap_or_default()),
        "metadata.annotations" => format_map(&meta.annotations.clone().unwrap_or_default()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => ctx.host_ips.first().map(IpAddr::to_string).unwrap_or_default(),
        "status.hostIPs" => join_ips(ctx.host_ips),
        "status.podIP" => ctx.pod_ips.first().map(IpAddr::to_string).unwrap_or_default(),
        "status.podIPs" => join_ips(ctx.pod_ips),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels.as_ref().and_then(|l| l.get(&key).cloned()).unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations.as_ref().and_then(|l| l.get(&key).cloned()).unwrap_or_default()
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// The value of a `resourceFieldRef`: the container's limit (the node's allocatable when unset) or request,
/// divided by the divisor and rounded up.
pub fn resource_value(ctx: &PodContext, container: &Container, r: &ResourceFieldSelector) -> Result<String, EnvError> {
    let target = match &r.container_name {
        Some(name) if !name.is_empty() => {
            ctx.pod.spec.as_ref().and_then(|s| s.containers.iter().find(|c| &c.name == name)).unwrap_or(container)
        }
        _ => container,
    };
    let resources = target.resources.clone().unwrap_or_default();
    let (kind, resource) = r.resource.split_once('.').ok_or_else(|| EnvError::Resource(r.resource.clone()))?;
    let list = match kind {
        "limits" => resources.limits.unwrap_or_default(),
        "requests" => resources.requests.unwrap_or_default(),
        _ => return Err(EnvError::Resource(r.resource.clone())),
    };
    let given = list.get(resource).and_then(|q| quantity::parse(&q.0));
    let value = match (kind, resource, given) {
        (_, _, Some(v)) => v,
        ("limits", "cpu", None) => ctx.allocatable.0,
        ("limits", "memory", None) => ctx.allocatable.1,
        ("limits", "ephemeral-storage", None) => ctx.allocatable.2,
        (_, "cpu" | "memory" | "ephemeral-storage", None) => 0.0,
        (_, res, None) if res.starts_with("hugepages-") => 0.0,
        _ => return Err(EnvError::Resource(r.resource.clone())),
    };
    let divisor = r.divisor.as_ref().and_then(|d| quantity::parse(&d.0)).filter(|d| *d > 0.0).unwrap_or(1.0);
    // Round the quotient up; a tiny epsilon keeps exact divisions (e.g. 1Gi / 1Mi) exact.
    let quotient = value / divisor;
    let rounded = if (quotient - quotient.round()).abs() < 1e-9 { quotient.round() } else { quotient.ceil() };
    Ok(format!("{}", rounded as i64))
}

#[cfg(test)]
mod tests;
