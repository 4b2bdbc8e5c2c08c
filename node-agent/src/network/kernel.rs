//! Doing: makes the kernel of this node's network namespace match a rendered [`Desired`] through rtnetlink.
//! Routes knet adds carry [`ROUTE_PROTOCOL`]; only those are ever replaced or removed, so routes, neighbours
//! and FDB entries of anyone else are never touched. Neighbour and FDB entries live on knet's own VXLAN
//! device, so every entry there is knet's.
//!
//! The netlink socket is made by [`Kernel::open`] in the network namespace of the calling thread and keeps
//! it, whichever thread later drives it (tests open it from a thread that entered a node's namespace).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::{IpNet, Ipv4Net};
use knet_cni::net::addr;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::render::{format_mac, Desired, Mac, Route, Underlay, VxlanDevice};

/// The route protocol number (`ip route … proto 77`) marking the routes knet owns.
pub const ROUTE_PROTOCOL: u8 = 77;

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;

/// Why the kernel could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("opening a netlink socket: {0}")]
    Open(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("no device holds the node IP {0} (pass --iface)")]
    NoUnderlay(Ipv4Addr),
    #[error("underlay device {name}: {problem}")]
    BadUnderlay { name: String, problem: String },
    #[error("VXLAN device {0} was created but cannot be found")]
    VxlanMissing(String),
    /// Listing or changing interface addresses (knet-cni's netlink address operations).
    #[error(transparent)]
    Address(#[from] knet_cni::net::NetError),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> KernelError {
    let what = what.into();
    move |source| KernelError::Netlink { what, source }
}

/// The errno of a netlink error, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// What one [`Kernel::apply`] changed, as `ip`-like lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Entries that could not be added because someone else's route holds the destination.
    pub conflicts: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.conflicts.is_empty()
    }
}

/// A netlink connection to one network namespace's kernel.
#[derive(Clone)]
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens the connection in the calling thread's network namespace. Must be called inside a tokio runtime
    /// context; the connection task is spawned on it.
    pub fn open() -> Result<Kernel, KernelError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(KernelError::Open)?;
        tokio::spawn(connection);
        Ok(Kernel { handle })
    }

    async fn links(&self) -> Result<Vec<LinkMessage>, KernelError> {
        self.handle.link().get().execute().try_collect().await.map_err(nl("listing links"))
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>, KernelError> {
        match self.handle.link().get().match_name(name).execute().try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(nl(format!("looking up device {name}"))(e)),
        }
    }

    /// Device names by index (for logs).
    pub async fn link_names(&self) -> Result<BTreeMap<u32, String>, KernelError> {
        Ok(self.links().await?.iter().map(|l| (l.header.index, link_name(l))).collect())
    }

    /// The underlay: `iface` if given, else the device holding `node_ip`; with the node IP's prefix and MTU.
    pub async fn underlay(&self, iface: Option<&str>, node_ip: Ipv4Addr) -> Result<Underlay, KernelError> {
        let addrs = addr::list_all(&self.handle).await?;
        let holding = addrs.iter().find(|(_, a)| a.addr() == IpAddr::V4(node_ip));
        let link = match iface {
            Some(name) => self
                .link_by_name(name)
                .await?
                .ok_or_else(|| KernelError::BadUnderlay { name: name.to_string(), problem: "no such device".into() })?,
            None => {
                let index = holding.ok_or(KernelError::NoUnderlay(node_ip))?.0;
                self.links()
                    .await?
                    .into_iter()
                    .find(|l| l.header.index == index)
                    .ok_or(KernelError::NoUnderlay(node_ip))?
            }
        };
        let name = link_name(&link);
        // The node IP's prefix, from its address on this device (a /32 if it is elsewhere, e.g. a loopback).
        let prefix = holding.filter(|(i, _)| *i == link.header.index).map(|(_, a)| a.prefix_len()).unwrap_or(32);
        let address = Ipv4Net::new(node_ip, prefix)
            .map_err(|e| KernelError::BadUnderlay { name: name.clone(), problem: e.to_string() })?;
        let mtu = link
            .attributes
            .iter()
            .find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None })
            .unwrap_or(1500);
        Ok(Underlay { ifindex: link.header.index, name, address, mtu })
    }

    /// Makes the VXLAN device exist as `dev` says (recreated when its VNI, local address, port or underlay
    /// differ), up, with its MTU and only its one address. Returns its index and MAC (the VTEP MAC).
    pub async fn ensure_vxlan(&self, dev: &VxlanDevice) -> Result<(u32, Mac), KernelError> {
        if let Some(link) = self.link_by_name(&dev.name).await? {
            if !vxlan_matches(&link, dev) {
                tracing::info!(device = %dev.name, "VXLAN device differs from the wanted one; recreating it");
                self.handle
                    .link()
                    .del(link.header.index)
                    .execute()
                    .await
                    .map_err(nl(format!("deleting device {}", dev.name)))?;
            }
        }
        if self.link_by_name(&dev.name).await?.is_none() {
            let msg = LinkVxlan::new(&dev.name, dev.vni)
                .dev(dev.underlay_ifindex)
                .local(dev.local)
                .port(dev.port)
                .learning(false)
                .mtu(dev.mtu)
                .up()
                .build();
            self.handle.link().add(msg).execute().await.map_err(nl(format!("creating VXLAN device {}", dev.name)))?;
        }
        let link = self.link_by_name(&dev.name).await?.ok_or_else(|| KernelError::VxlanMissing(dev.name.clone()))?;
        let index = link.header.index;
        let mtu = link.attributes.iter().find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None });
        let up = link.header.flags.contains(netlink_packet_route::link::LinkFlags::Up);
        if mtu != Some(dev.mtu) || !up {
            let msg = LinkUnspec::new_with_index(index).mtu(dev.mtu).up().build();
            self.handle.link().set(msg).execute().await.map_err(nl(format!("setting {} up", dev.name)))?;
        }
        self.ensure_only_address(index, dev.address).await?;
        let mac = link
            .attributes
            .iter()
            .find_map(|a| if let LinkAttribute::Address(m) = a { <[u8; 6]>::try_from(m.as_slice()).ok() } else { None })
            .ok_or_else(|| KernelError::VxlanMissing(dev.name.clone()))?;
        Ok((index, mac))
    }

    async fn ensure_only_address(&self, index: u32, want: Ipv4Net) -> Result<(), KernelError> {
        let want = IpNet::V4(want);
        let has = addr::list(&self.handle, index).await?;
        for old in has.iter().filter(|a| a.addr().is_ipv4() && **a != want) {
            addr::delete(&self.handle, index, *old).await?;
        }
        if !has.contains(&want) {
            addr::add(&self.handle, index, want, false).await?;
        }
        Ok(())
    }

    /// Deletes knet's VXLAN devices (`knet.*` of kind vxlan) other than `keep`; returns the deleted names.
    pub async fn remove_vxlan_devices(&self, keep: Option<&str>) -> Result<Vec<String>, KernelError> {
        let mut removed = Vec::new();
        for link in self.links().await? {
            let name = link_name(&link);
            if name.starts_with("knet.") && Some(name.as_str()) != keep && is_vxlan(&link) {
                match self.handle.link().del(link.header.index).execute().await {
                    Ok(()) => removed.push(name),
                    Err(e) if errno(&e) == Some(ENODEV) => {}
                    Err(e) => return Err(nl(format!("deleting device {name}"))(e)),
                }
            }
        }
        Ok(removed)
    }

    /// knet's routes (marked with [`ROUTE_PROTOCOL`]) in the main table.
    pub async fn owned_routes(&self) -> Result<BTreeMap<Ipv4Net, (Route, RouteMessage)>, KernelError> {
        let dump: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(nl("listing routes"))?;
        Ok(dump
            .into_iter()
            .filter(|m| {
                m.header.protocol == RouteProtocol::from(ROUTE_PROTOCOL)
                    && route_table(m) == u32::from(RouteHeader::RT_TABLE_MAIN)
            })
            .filter_map(|m| parse_route(&m).map(|r| (r.dst, (r, m))))
            .collect())
    }

    async fn neighbours(&self, family: AddressFamily, ifindex: u32) -> Result<Vec<NeighbourMessage>, KernelError> {
        let dump: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute()
            .try_collect()
            .await
            .map_err(nl("listing neighbours"))?;
        Ok(dump.into_iter().filter(|n| n.header.ifindex == ifindex && n.header.family == family).collect())
    }

    /// Makes routes, neighbours and FDB entries match `desired`: adds what is missing, replaces what differs,
    /// removes stale entries knet owns. `overlay` is the VXLAN device's index (none with host-gw).
    pub async fn apply(&self, desired: &Desired, overlay: Option<u32>) -> Result<Changes, KernelError> {
        let mut changes = Changes::default();
        let current = self.owned_routes().await?;
        for (dst, (route, msg)) in &current {
            if desired.routes.get(dst) != Some(route) {
                match self.handle.route().del(msg.clone()).execute().await {
                    Ok(()) => changes.removed.push(route_line(route)),
                    Err(e) if matches!(errno(&e), Some(ESRCH) | Some(ENOENT)) => {}
                    Err(e) => return Err(nl(format!("removing route {}", route_line(route)))(e)),
                }
            }
        }
        for (dst, route) in &desired.routes {
            if current.get(dst).map(|(r, _)| r) == Some(route) {
                continue;
            }
            let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(route.dst.network(), route.dst.prefix_len())
                .gateway(route.gateway)
                .output_interface(route.ifindex)
                .protocol(RouteProtocol::from(ROUTE_PROTOCOL));
            if route.onlink {
                builder = builder.onlink();
            }
            match self.handle.route().add(builder.build()).execute().await {
                Ok(()) => changes.added.push(route_line(route)),
                Err(e) if errno(&e) == Some(EEXIST) => changes
                    .conflicts
                    .push(format!("route {} is held by a route knet does not own; leaving it", route.dst)),
                Err(e) => return Err(nl(format!("adding route {}", route_line(route)))(e)),
            }
        }
        if let Some(index) = overlay {
            self.apply_neighbours(desired, index, &mut changes).await?;
            self.apply_fdb(desired, index, &mut changes).await?;
        }
        Ok(changes)
    }

    async fn apply_neighbours(&self, desired: &Desired, index: u32, changes: &mut Changes) -> Result<(), KernelError> {
        let mut current: BTreeMap<Ipv4Addr, Mac> = BTreeMap::new();
        for n in self.neighbours(AddressFamily::Inet, index).await? {
            let ip = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let mac = lladdr(&n);
            let permanent = n.header.state == netlink_packet_route::neighbour::NeighbourState::Permanent;
            match (ip, mac) {
                (Some(ip), Some(mac)) if permanent && desired.neighbours.get(&ip) == Some(&mac) => {
                    current.insert(ip, mac);
                }
                (ip, mac) => {
                    let line = format!(
                        "neigh {} lladdr {}",
                        ip.map(|i| i.to_string()).unwrap_or_default(),
                        mac.map(|m| format_mac(&m)).unwrap_or_default()
                    );
                    match self.handle.neighbours().del(n).execute().await {
                        Ok(()) => changes.removed.push(line),
                        Err(e) if matches!(errno(&e), Some(ENOENT)) => {}
                        Err(e) => return Err(nl(format!("removing {line}"))(e)),
                    }
                }
            }
        }
        for (ip, mac) in &desired.neighbours {
            if current.get(ip) == Some(mac) {
                continue;
            }
            self.handle
                .neighbours()
                .add(index, IpAddr::V4(*ip))
                .link_layer_address(mac)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("adding neighbour {ip}")))?;
            changes.added.push(format!("neigh {ip} lladdr {} permanent", format_mac(mac)));
        }
        Ok(())
    }

    async fn apply_fdb(&self, desired: &Desired, index: u32, changes: &mut Changes) -> Result<(), KernelError> {
        let mut current: BTreeMap<Mac, Ipv4Addr> = BTreeMap::new();
        for n in self.neighbours(AddressFamily::Bridge, index).await? {
            let dst = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let Some(mac) = lladdr(&n) else { continue };
            match dst {
                Some(ip) if desired.fdb.get(&mac) == Some(&ip) => {
                    current.insert(mac, ip);
                }
                _ => {
                    let line = format!(
                        "fdb {} dst {}",
                        format_mac(&mac),
                        dst.map(|i| i.to_string()).unwrap_or_else(|| "-".into())
                    );
                    match self.handle.neighbours().del(n).execute().await {
                        Ok(()) => changes.removed.push(line),
                        Err(e) if matches!(errno(&e), Some(ENOENT)) => {}
                        Err(e) => return Err(nl(format!("removing {line}"))(e)),
                    }
                }
            }
        }
        for (mac, ip) in &desired.fdb {
            if current.get(mac) == Some(ip) {
                continue;
            }
            self.handle
                .neighbours()
                .add_bridge(index, mac)
                .destination(IpAddr::V4(*ip))
                .flags(NeighbourFlags::Own)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("adding fdb entry {}", format_mac(mac))))?;
            changes.added.push(format!("fdb {} dst {ip} self permanent", format_mac(mac)));
        }
        Ok(())
    }

    /// Removes every route knet owns (when the agent is told to stop routing, and in tests).
    pub async fn remove_owned_routes(&self) -> Result<usize, KernelError> {
        let current = self.owned_routes().await?;
        let n = current.len();
        for (_, (route, msg)) in current {
            match self.handle.route().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if matches!(errno(&e), Some(ESRCH) | Some(ENOENT)) => {}
                Err(e) => return Err(nl(format!("removing route {}", route_line(&route)))(e)),
            }
        }
        Ok(n)
    }
}

fn link_name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.clone()) } else { None })
        .unwrap_or_default()
}

fn link_info(link: &LinkMessage) -> &[LinkInfo] {
    link.attributes
        .iter()
        .find_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i.as_slice()) } else { None })
        .unwrap_or(&[])
}

fn is_vxlan(link: &LinkMessage) -> bool {
    link_info(link).iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)))
}

fn vxlan_matches(link: &LinkMessage, dev: &VxlanDevice) -> bool {
    let Some(data) = link_info(link).iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
        _ => None,
    }) else {
        return false;
    };
    let has = |want: &InfoVxlan| data.iter().any(|d| d == want);
    is_vxlan(link)
        && has(&InfoVxlan::Id(dev.vni))
        && has(&InfoVxlan::Local(dev.local))
        && has(&InfoVxlan::Port(dev.port))
        && has(&InfoVxlan::Link(dev.underlay_ifindex))
}

fn lladdr(n: &NeighbourMessage) -> Option<Mac> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
        _ => None,
    })
}

fn route_table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None })
        .unwrap_or(u32::from(m.header.table))
}

fn parse_route(m: &RouteMessage) -> Option<Route> {
    let dst = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    let gateway = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    let ifindex = m.attributes.iter().find_map(|a| if let RouteAttribute::Oif(i) = a { Some(*i) } else { None })?;
    Some(Route {
        dst: Ipv4Net::new(dst, m.header.destination_prefix_length).ok()?,
        gateway,
        ifindex,
        onlink: m.header.flags.contains(RouteFlags::Onlink),
    })
}

fn route_line(r: &Route) -> String {
    format!("route {} via {} if{}{}", r.dst, r.gateway, r.ifindex, if r.onlink { " onlink" } else { "" })
}
