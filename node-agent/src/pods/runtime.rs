//! What every pod worker shares: the API client, the node's identity, flags and directory layout, the CNI
//! network, the agent's own executable (the holder and shims are hidden subcommands of it), the image
//! programs, the Service cache (for service environment variables), the event recorder, DNS settings, and the
//! registry of pod views the kubelet API reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::Store;
use kube::Client;

use super::config::PodFlags;
use super::events::Recorder;
use super::files::resolv::NodeDns;
use super::layout::Layout;
use super::metrics::Metrics;
use super::sandbox::ProcessId;
use crate::cni::Network;

/// One container as the kubelet API sees it.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// The running instance's attach socket.
    pub socket: Option<PathBuf>,
    pub running: bool,
    pub log_current: Option<PathBuf>,
    pub log_previous: Option<PathBuf>,
}

/// One pod as the kubelet API sees it.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub holder: Option<ProcessId>,
    pub netns: Option<PathBuf>,
    pub containers: HashMap<String, ContainerView>,
}

/// Pod views by UID.
pub type Registry = Mutex<HashMap<String, PodView>>;

/// The pod runtime's shared context.
pub struct PodRuntime {
    pub client: Client,
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    /// The node's host name (host-network pods' UTS).
    pub node_hostname: String,
    pub layout: Layout,
    pub flags: PodFlags,
    pub network: Arc<Network>,
    /// This executable (`__sandbox`, `__shim`).
    pub exe: PathBuf,
    /// The agnhost binary for the agnhost image.
    pub agnhost: Option<PathBuf>,
    pub services: Store<Service>,
    pub events: Recorder,
    pub dns: NodeDns,
    /// The node's allocatable (cpu cores, memory bytes, ephemeral-storage bytes): default resource limits.
    pub allocatable: (f64, f64, f64),
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
}

impl PodRuntime {
    /// Publishes (or replaces) a pod's view.
    pub fn publish(&self, view: PodView) {
        self.registry.lock().unwrap_or_else(|p| p.into_inner()).insert(view.uid.clone(), view);
    }

    /// Forgets a pod's view.
    pub fn unpublish(&self, uid: &str) {
        self.registry.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    /// The view of `namespace/name` (and `uid`, when given).
    pub fn find(&self, namespace: &str, name: &str, uid: Option<&str>) -> Option<PodView> {
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.values()
            .filter(|v| v.namespace == namespace && v.name == name && uid.is_none_or(|u| u == v.uid))
            .max_by_key(|v| v.holder.is_some())
            .cloned()
    }
}
