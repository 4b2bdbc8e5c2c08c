//! The agent as a CNI runtime: network configuration from the config dir (`conf`), plugin execution (`exec`)
//! with libcni semantics and cached results (`runtime`), results (`result`), and the configuration the agent
//! writes for its podCIDR when the dir has none (`default_conf`). [`Network`] ties them to one node.

pub mod conf;
pub mod config;
pub mod default_conf;
pub mod exec;
pub mod result;
pub mod runtime;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ipnet::IpNet;

use self::conf::{ConfError, NetworkConfList};
use self::runtime::{Attachment, CniError, CniRuntime};
use crate::pods::layout::Layout;

/// The interface name of the pod's network inside the sandbox.
pub const POD_IFNAME: &str = "eth0";

/// Why the node's network could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error(transparent)]
    Cni(#[from] CniError),
    #[error("writing the network config {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cni plugin not initialized")]
    NotInitialized,
}

/// The pod network of this node: the config dir, the plugin path and the result cache.
#[derive(Debug)]
pub struct Network {
    conf_dir: PathBuf,
    plugin: config::CniPlugin,
    data_dir: PathBuf,
    runtime: CniRuntime,
    current: RwLock<Option<NetworkConfList>>,
}

/// What a sandbox got from ADD.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    /// The pod's addresses, IPv4 first.
    pub ips: Vec<IpAddr>,
}

impl Network {
    /// `root_dir` holds the IPAM state and (without `--cni-cache-dir`) the result cache.
    pub fn new(flags: &config::CniFlags, root_dir: &Path) -> Self {
        let layout = Layout::new(root_dir);
        let cache_dir = flags.cni_cache_dir.clone().unwrap_or_else(|| layout.cni_cache_dir());
        Network {
            conf_dir: flags.cni_conf_dir.clone(),
            plugin: flags.cni_plugin,
            data_dir: layout.cni_data_dir(),
            runtime: CniRuntime::new(flags.cni_bin_dir.clone(), cache_dir),
            current: RwLock::new(None),
        }
    }

    pub fn runtime(&self) -> &CniRuntime {
        &self.runtime
    }

    /// Writes `10-knet.conflist` for `pod_cidrs` unless the dir holds a configuration of someone else (which
    /// is then used as is). Returns whether the agent's file was (re)written.
    pub fn ensure_default_config(&self, pod_cidrs: &[IpNet], mtu: u32) -> Result<bool, NetworkError> {
        let names = conf::dir_names(&self.conf_dir)?;
        if conf::config_files(&names).iter().any(|n| n != default_conf::FILE_NAME) {
            return Ok(false);
        }
        let text = default_conf::render(self.plugin, pod_cidrs, mtu, &self.data_dir);
        let path = self.conf_dir.join(default_conf::FILE_NAME);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let err = |source| NetworkError::Write { path: path.display().to_string(), source };
        std::fs::create_dir_all(&self.conf_dir).map_err(err)?;
        let tmp = self.conf_dir.join(format!(".{}.tmp", default_conf::FILE_NAME));
        std::fs::write(&tmp, &text).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(true)
    }

    /// Loads the config dir's network again (it may have changed) and checks the plugins' STATUS.
    pub async fn reload(&self) -> Result<NetworkConfList, NetworkError> {
        let list = conf::load_dir(&self.conf_dir)?;
        self.runtime.status(&list).await?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Some(list.clone());
        Ok(list)
    }

    /// The loaded network, if any.
    pub fn current(&self) -> Option<NetworkConfList> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether a network config is loaded (the node's NetworkReady).
    pub fn ready(&self) -> bool {
        self.current().is_some()
    }

    /// ADD for a pod sandbox; on failure the half-made attachment is deleted again.
    pub async fn setup_pod(&self, att: &Attachment) -> Result<PodNetwork, NetworkError> {
        let list = self.current().ok_or(NetworkError::NotInitialized)?;
        match self.runtime.add(&list, att).await {
            Ok(result) => {
                let ips = result::sandbox_ips(&result, &att.ifname).into_iter().map(|r| r.ip).collect();
                Ok(PodNetwork { ips })
            }
            Err(e) => {
                if let Err(del) = self.runtime.del(&list, att).await {
                    tracing::warn!(sandbox = %att.container_id, error = %del, "cleaning up after a failed CNI ADD");
                }
                Err(e.into())
            }
        }
    }

    /// CHECK for a pod sandbox (used when adopting).
    pub async fn check_pod(&self, att: &Attachment) -> Result<(), NetworkError> {
        let list = self.current().ok_or(NetworkError::NotInitialized)?;
        Ok(self.runtime.check(&list, att).await?)
    }

    /// The addresses the cached result of a sandbox gives it (adoption, without running any plugin).
    pub fn cached_ips(&self, container_id: &str) -> Vec<IpAddr> {
        let Some(list) = self.current() else { return Vec::new() };
        match self.runtime.read_cache(&list.name, container_id, POD_IFNAME) {
            Ok(Some(c)) => result::sandbox_ips(&c.result, POD_IFNAME).into_iter().map(|r| r.ip).collect(),
            _ => Vec::new(),
        }
    }

    /// DEL for a pod sandbox, with the configuration it was set up with when it is cached.
    pub async fn teardown_pod(&self, att: &Attachment) -> Result<(), NetworkError> {
        let current = self.current();
        let cached = self
            .runtime
            .cached_attachments()?
            .into_iter()
            .find(|c| c.container_id == att.container_id && c.ifname == att.ifname);
        let list = match (&cached, current) {
            (Some(c), cur) => match self.made_with(c) {
                Some(l) => l,
                None => cur.ok_or(NetworkError::NotInitialized)?,
            },
            (None, Some(cur)) => cur,
            (None, None) => return Ok(()),
        };
        Ok(self.runtime.del(&list, att).await?)
    }

    fn made_with(&self, cached: &runtime::CachedAttachment) -> Option<NetworkConfList> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&cached.config).ok()?;
        conf::parse(Path::new("cached.conflist"), &bytes).ok()
    }

    /// GC: every cached attachment not in `valid` sandboxes is deleted, then plugins free what is left over.
    pub async fn gc(&self, valid_sandboxes: &[String]) -> Result<Vec<Attachment>, NetworkError> {
        let list = self.current().ok_or(NetworkError::NotInitialized)?;
        let valid: Vec<(String, String)> =
            valid_sandboxes.iter().map(|id| (id.clone(), POD_IFNAME.to_string())).collect();
        Ok(self.runtime.gc(&list, &valid).await?)
    }
}
