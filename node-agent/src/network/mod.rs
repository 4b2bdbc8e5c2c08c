//! Cross-node pod routing: every node's podCIDR reachable from every other node, without NAT, through host-gw
//! routes (default) or a VXLAN overlay (flannel's design).
//!
//! - `config`: the flags (`--backend`, `--vxlan-vni`, `--vxlan-port`, `--iface`, `--network-resync-period`).
//! - `render`: deciding — Nodes → desired routes, neighbour and FDB entries, VXLAN device; pure.
//! - `kernel`: doing — an rtnetlink applier that converges the kernel to the rendered state, touching only
//!   what knet owns (routes marked with protocol 77, entries on its own `knet.<vni>` device).
//! - `status`: the Node annotations (VTEP) and the `NetworkUnavailable=False` condition.
//!
//! [`run`] watches Nodes and re-renders and re-applies on every change and every resync period, so a route
//! someone deleted comes back and a removed Node's routes go away.

pub mod config;
pub mod kernel;
pub mod render;
pub mod status;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;

pub use config::{Backend, NetworkFlags};
pub use kernel::{Kernel, KernelError, ROUTE_PROTOCOL};
pub use render::pod_mtu;

/// Why cross-node routing stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cross-node routing: {0}")]
    Kernel(#[from] KernelError),
    #[error("watching Nodes ended")]
    WatchEnded,
}

/// Keeps routes to every other node's podCIDR (and this node's overlay device, with VXLAN) in place until the
/// process ends. `node_name` is this node. The netlink socket is opened in the calling thread's namespace.
pub async fn run(client: kube::Client, node_name: String, flags: NetworkFlags) -> Result<(), NetworkError> {
    Network::open(flags)?.run(client, node_name).await
}

/// The MTU pods should get on this node (for the CNI config): the underlay's (`--iface`, or the device holding
/// `node_ip`), less the VXLAN overhead with `--backend vxlan`.
pub async fn detect_pod_mtu(flags: &NetworkFlags, node_ip: Ipv4Addr) -> Result<u32, NetworkError> {
    let kernel = Kernel::open()?;
    let underlay = kernel.underlay(flags.iface.as_deref(), node_ip).await?;
    Ok(pod_mtu(flags.backend, underlay.mtu))
}

/// Cross-node routing for one node, bound to the network namespace it was opened in.
pub struct Network {
    kernel: Kernel,
    flags: NetworkFlags,
}

/// What the last reconcile reported, to log only changes.
#[derive(Default)]
struct Reported {
    waiting: Option<String>,
    skipped: Vec<String>,
}

impl Network {
    /// Opens the netlink connection in the calling thread's network namespace (inside a tokio runtime context).
    pub fn open(flags: NetworkFlags) -> Result<Network, NetworkError> {
        Ok(Network { kernel: Kernel::open()?, flags })
    }

    /// The kernel connection (tests inspect through it).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    pub async fn run(self, client: kube::Client, node_name: String) -> Result<(), NetworkError> {
        let api: Api<Node> = Api::all(client);
        let (reader, writer) = reflector::store::<Node>();
        let changed = Arc::new(tokio::sync::Notify::new());
        let notify = changed.clone();
        let watch_api = api.clone();
        let watch = tokio::spawn(async move {
            let stream = reflector(writer, watcher(watch_api, watcher::Config::default())).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => notify.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "watching Nodes"),
                }
            }
        });
        let _stop_watch = AbortOnDrop(watch);
        if reader.wait_until_ready().await.is_err() {
            return Err(NetworkError::WatchEnded);
        }
        tracing::info!(node = %node_name, backend = %self.flags.backend, "cross-node routing started");
        let mut reported = Reported::default();
        let mut tick = tokio::time::interval(self.flags.network_resync_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let nodes: Vec<Arc<Node>> = reader.state();
            if let Err(e) = self.reconcile(&api, &node_name, &nodes, &mut reported).await {
                tracing::warn!(node = %node_name, error = %e, "cross-node routing: reconcile failed; retrying");
            }
            tokio::select! {
                _ = changed.notified() => {}
                _ = tick.tick() => {}
            }
        }
    }

    async fn reconcile(
        &self,
        api: &Api<Node>,
        node_name: &str,
        nodes: &[Arc<Node>],
        reported: &mut Reported,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(own) = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node_name)) else {
            return wait(reported, node_name, "its Node object".into());
        };
        let routes: Vec<render::NodeRoute> = nodes.iter().map(|n| render::node_route(n)).collect();
        let Some(me) = routes.iter().find(|r| r.name == node_name) else { return Ok(()) };
        let Some(IpAddr::V4(node_ip)) = me.internal_ip else {
            return wait(reported, node_name, "an IPv4 InternalIP in its Node status".into());
        };
        let Some(pod_cidr) = me.pod_cidrs.iter().find_map(|c| if let IpNet::V4(v4) = c { Some(*v4) } else { None })
        else {
            return wait(reported, node_name, "spec.podCIDR (from the node IPAM controller)".into());
        };
        if reported.waiting.take().is_some() {
            tracing::info!(node = %node_name, %node_ip, %pod_cidr, "node has its podCIDR and InternalIP");
        }
        let underlay = self.kernel.underlay(self.flags.iface.as_deref(), node_ip).await?;
        let (desired, overlay, vtep) = match self.flags.backend {
            Backend::HostGw => {
                let removed = self.kernel.remove_vxlan_devices(None).await?;
                if !removed.is_empty() {
                    tracing::info!(node = %node_name, devices = ?removed, "removed VXLAN devices of an earlier backend");
                }
                (render::host_gw(node_name, &underlay, &routes), None, None)
            }
            Backend::Vxlan => {
                let device = render::vxlan_device(self.flags.vxlan_vni, self.flags.vxlan_port, &underlay, pod_cidr);
                let removed = self.kernel.remove_vxlan_devices(Some(&device.name)).await?;
                if !removed.is_empty() {
                    tracing::info!(node = %node_name, devices = ?removed, "removed other VXLAN devices");
                }
                let (index, mac) = self.kernel.ensure_vxlan(&device).await?;
                let vtep = render::Vtep { vni: device.vni, mac };
                (render::vxlan(node_name, &device, index, &routes), Some(index), Some(vtep))
            }
        };
        let wanted = status::wanted_annotations(self.flags.backend, vtep.as_ref(), node_ip);
        if status::publish(api, own, &wanted).await? {
            tracing::info!(node = %node_name, vtep = ?vtep.map(|v| render::format_mac(&v.mac)), "published the node's backend annotations");
        }
        let changes = self.kernel.apply(&desired, overlay).await?;
        if !changes.is_empty() {
            tracing::info!(
                node = %node_name,
                added = ?changes.added,
                removed = ?changes.removed,
                conflicts = ?changes.conflicts,
                "cross-node routes updated"
            );
        }
        let skipped: Vec<String> = desired.skipped.iter().map(|s| format!("{}: {}", s.node, s.reason)).collect();
        if skipped != reported.skipped {
            for s in &skipped {
                tracing::info!(node = %node_name, "not routed: {s}");
            }
            reported.skipped = skipped;
        }
        if changes.conflicts.is_empty() && status::set_network_available(api, own, self.flags.backend).await? {
            tracing::info!(node = %node_name, "NetworkUnavailable=False");
        }
        Ok(())
    }

    /// The names of this namespace's devices by index (for logs and tests).
    pub async fn link_names(&self) -> Result<BTreeMap<u32, String>, NetworkError> {
        Ok(self.kernel.link_names().await?)
    }
}

fn wait(reported: &mut Reported, node: &str, what: String) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if reported.waiting.as_ref() != Some(&what) {
        tracing::info!(node = %node, "cross-node routing waits for {what}");
        reported.waiting = Some(what);
    }
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
