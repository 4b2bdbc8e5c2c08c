//! Deciding, without touching the kernel: from the cluster's Nodes (podCIDR, InternalIP, published VTEP) and
//! this node's devices, the routes, neighbour and FDB entries this node must have. Pure functions, golden-tested.
//!
//! host-gw: `<podCIDR> via <InternalIP> dev <underlay>` per other node.
//! vxlan (flannel's layout): per other node, `<podCIDR> via <podCIDR .0> dev knet.<vni> onlink`, a permanent
//! neighbour `<podCIDR .0> lladdr <its VTEP MAC>` and an FDB entry `<its VTEP MAC> dst <InternalIP>` on
//! `knet.<vni>`; this node's `knet.<vni>` carries `<own podCIDR .0>/32` and the underlay MTU less 50.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;

use super::config::Backend;

/// A link-layer (MAC) address.
pub type Mac = [u8; 6];

/// Bytes VXLAN adds to every packet (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14), as flannel counts.
pub const VXLAN_OVERHEAD: u32 = 50;

/// Annotations a node publishes about its backend (flannel's `flannel.alpha.coreos.com/*`, in knet's prefix).
pub const BACKEND_TYPE_ANNOTATION: &str = "knet.dev/backend-type";
pub const BACKEND_DATA_ANNOTATION: &str = "knet.dev/backend-data";
pub const PUBLIC_IP_ANNOTATION: &str = "knet.dev/public-ip";

/// The MTU pods get on this node: the underlay's, less the overlay's encapsulation.
pub fn pod_mtu(backend: Backend, underlay_mtu: u32) -> u32 {
    match backend {
        Backend::HostGw => underlay_mtu,
        Backend::Vxlan => underlay_mtu.saturating_sub(VXLAN_OVERHEAD),
    }
}

/// What routing needs to know about one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRoute {
    pub name: String,
    pub pod_cidrs: Vec<IpNet>,
    pub internal_ip: Option<IpAddr>,
    /// The VXLAN endpoint the node published, if any.
    pub vtep: Option<Vtep>,
}

/// A node's published VXLAN endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vtep {
    pub vni: u32,
    pub mac: Mac,
}

/// Reads what routing needs from a Node; malformed fields count as absent.
pub fn node_route(node: &Node) -> NodeRoute {
    let name = node.metadata.name.clone().unwrap_or_default();
    let spec = node.spec.as_ref();
    let mut cidrs: Vec<String> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if cidrs.is_empty() {
        cidrs.extend(spec.and_then(|s| s.pod_cidr.clone()));
    }
    let pod_cidrs = cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).map(|n| n.trunc()).collect();
    let internal_ip = node.status.as_ref().and_then(|s| s.addresses.as_ref()).and_then(|addrs| {
        let mut ips = addrs.iter().filter(|a| a.type_ == "InternalIP").filter_map(|a| a.address.parse().ok());
        let all: Vec<IpAddr> = ips.by_ref().collect();
        all.iter().find(|ip| ip.is_ipv4()).or(all.first()).copied()
    });
    let annotations = node.metadata.annotations.as_ref();
    let vtep = annotations
        .filter(|a| a.get(BACKEND_TYPE_ANNOTATION).map(String::as_str) == Some("vxlan"))
        .and_then(|a| a.get(BACKEND_DATA_ANNOTATION))
        .and_then(|data| parse_backend_data(data));
    NodeRoute { name, pod_cidrs, internal_ip, vtep }
}

/// Parses `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}` (flannel's backend-data).
pub fn parse_backend_data(data: &str) -> Option<Vtep> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let vni = u32::try_from(v.get("VNI")?.as_u64()?).ok()?;
    let mac = parse_mac(v.get("VtepMAC")?.as_str()?)?;
    Some(Vtep { vni, mac })
}

/// The backend-data annotation value for `vtep`.
pub fn backend_data(vtep: &Vtep) -> String {
    serde_json::json!({"VNI": vtep.vni, "VtepMAC": format_mac(&vtep.mac)}).to_string()
}

pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn format_mac(mac: &Mac) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// This node's underlay device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    pub ifindex: u32,
    pub name: String,
    /// The node IP with the prefix length of its subnet.
    pub address: Ipv4Net,
    pub mtu: u32,
}

/// The VXLAN device this node must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanDevice {
    pub name: String,
    pub vni: u32,
    pub local: Ipv4Addr,
    pub port: u16,
    pub underlay_ifindex: u32,
    pub mtu: u32,
    /// `<own podCIDR .0>/32`, the source address of node → remote pod traffic.
    pub address: Ipv4Net,
}

/// The name of the VXLAN device for `vni`.
pub fn vxlan_name(vni: u32) -> String {
    format!("knet.{vni}")
}

/// The VXLAN device for this node (its first IPv4 podCIDR gives the device address).
pub fn vxlan_device(vni: u32, port: u16, underlay: &Underlay, pod_cidr: Ipv4Net) -> VxlanDevice {
    VxlanDevice {
        name: vxlan_name(vni),
        vni,
        local: underlay.address.addr(),
        port,
        underlay_ifindex: underlay.ifindex,
        mtu: pod_mtu(Backend::Vxlan, underlay.mtu),
        address: Ipv4Net::new(pod_cidr.network(), 32).unwrap_or(pod_cidr),
    }
}

/// One route this node must have (all in the main table, marked with knet's route protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub dst: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ifindex: u32,
    pub onlink: bool,
}

/// A Node left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub node: String,
    pub reason: String,
}

/// Everything cross-node routing wants in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub routes: BTreeMap<Ipv4Net, Route>,
    /// Permanent neighbours on the VXLAN device: remote podCIDR `.0` → remote VTEP MAC.
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    /// FDB entries on the VXLAN device: remote VTEP MAC → remote InternalIP.
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
    pub skipped: Vec<Skipped>,
}

impl Desired {
    /// `ip route` / `ip neigh` / `bridge fdb`-like lines, for golden tests and logs.
    pub fn to_text(&self, names: &BTreeMap<u32, String>) -> String {
        let dev = |i: &u32| names.get(i).cloned().unwrap_or_else(|| format!("if{i}"));
        let mut out = String::new();
        for r in self.routes.values() {
            let onlink = if r.onlink { " onlink" } else { "" };
            let _ = writeln!(out, "route {} via {} dev {}{onlink}", r.dst, r.gateway, dev(&r.ifindex));
        }
        for (ip, mac) in &self.neighbours {
            let _ = writeln!(out, "neigh {ip} lladdr {} permanent", format_mac(mac));
        }
        for (mac, ip) in &self.fdb {
            let _ = writeln!(out, "fdb {} dst {ip} self permanent", format_mac(mac));
        }
        for s in &self.skipped {
            let _ = writeln!(out, "skip {}: {}", s.node, s.reason);
        }
        out
    }
}

/// Remote nodes whose IPv4 podCIDRs can be routed, each podCIDR claimed once; the rest in `skipped`.
fn remotes<'a>(local: &str, nodes: &'a [NodeRoute], desired: &mut Desired) -> Vec<(&'a NodeRoute, Ipv4Net, Ipv4Addr)> {
    let mut sorted: Vec<&NodeRoute> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let claimed: Vec<Ipv4Net> = sorted
        .iter()
        .filter(|n| n.name == local)
        .flat_map(|n| n.pod_cidrs.iter())
        .filter_map(|c| match c {
            IpNet::V4(v4) => Some(*v4),
            IpNet::V6(_) => None,
        })
        .collect();
    let mut claimed = claimed;
    let mut out = Vec::new();
    for node in sorted.into_iter().filter(|n| n.name != local) {
        let skip = |reason: String| Skipped { node: node.name.clone(), reason };
        let v4: Vec<Ipv4Net> = node
            .pod_cidrs
            .iter()
            .filter_map(|c| match c {
                IpNet::V4(v4) => Some(*v4),
                IpNet::V6(_) => None,
            })
            .collect();
        if v4.is_empty() {
            let reason = if node.pod_cidrs.is_empty() {
                "no podCIDR yet"
            } else {
                "only IPv6 podCIDRs (IPv6 pod routing is not built yet)"
            };
            desired.skipped.push(skip(reason.into()));
            continue;
        }
        let Some(IpAddr::V4(ip)) = node.internal_ip else {
            desired.skipped.push(skip("no IPv4 InternalIP".into()));
            continue;
        };
        for cidr in v4 {
            if let Some(other) = claimed.iter().find(|c| c.contains(&cidr) || cidr.contains(*c)) {
                desired.skipped.push(skip(format!("podCIDR {cidr} overlaps {other}, already routed")));
                continue;
            }
            claimed.push(cidr);
            out.push((node, cidr, ip));
        }
    }
    out
}

/// host-gw: a route per other node's podCIDR via its InternalIP, which must be on the underlay's subnet.
pub fn host_gw(local: &str, underlay: &Underlay, nodes: &[NodeRoute]) -> Desired {
    let mut desired = Desired::default();
    let subnet = underlay.address.trunc();
    for (node, cidr, ip) in remotes(local, nodes, &mut desired) {
        if !subnet.contains(&ip) {
            desired.skipped.push(Skipped {
                node: node.name.clone(),
                reason: format!(
                    "InternalIP {ip} is not on the underlay subnet {subnet} of {} (host-gw needs one L2 segment; \
                     use --backend vxlan)",
                    underlay.name
                ),
            });
            continue;
        }
        if ip == underlay.address.addr() {
            desired.skipped.push(Skipped {
                node: node.name.clone(),
                reason: format!("InternalIP {ip} is this node's own address"),
            });
            continue;
        }
        desired.routes.insert(cidr, Route { dst: cidr, gateway: ip, ifindex: underlay.ifindex, onlink: false });
    }
    desired
}

/// vxlan: per other node with a published VTEP of the same VNI, a route, a neighbour and an FDB entry.
pub fn vxlan(local: &str, device: &VxlanDevice, ifindex: u32, nodes: &[NodeRoute]) -> Desired {
    let mut desired = Desired::default();
    for (node, cidr, ip) in remotes(local, nodes, &mut desired) {
        let skip = |reason: String| Skipped { node: node.name.clone(), reason };
        let Some(vtep) = node.vtep else {
            desired.skipped.push(skip("no VXLAN endpoint published yet".into()));
            continue;
        };
        if vtep.vni != device.vni {
            desired.skipped.push(skip(format!("its VNI {} is not this node's {}", vtep.vni, device.vni)));
            continue;
        }
        if ip == device.local {
            desired.skipped.push(skip(format!("InternalIP {ip} is this node's own address")));
            continue;
        }
        let gateway = cidr.network();
        desired.routes.insert(cidr, Route { dst: cidr, gateway, ifindex, onlink: true });
        desired.neighbours.insert(gateway, vtep.mac);
        desired.fdb.insert(vtep.mac, ip);
    }
    desired
}

#[cfg(test)]
mod tests;
