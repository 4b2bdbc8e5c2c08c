//! Links: the bridge (found or created), the veth pair (created with its peer directly in the container's
//! namespace, attached to the bridge and up, in one request), bridge-port flags, lookups and deletion.

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::netns::Netns;
use super::{nl, NetError};

const ENODEV: i32 = nix::libc::ENODEV;
const EEXIST: i32 = nix::libc::EEXIST;

/// What knet-cni needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<InfoKind>,
    pub mac: Vec<u8>,
    /// The bridge this link is a port of.
    pub master: Option<u32>,
    /// For a veth: the peer's index (in the peer's namespace).
    pub peer_index: Option<u32>,
    pub up: bool,
    pub promisc: bool,
    pub mtu: Option<u32>,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mac: Vec::new(),
            master: None,
            peer_index: None,
            up: m.header.flags.contains(LinkFlags::Up),
            promisc: m.header.flags.contains(LinkFlags::Promisc),
            mtu: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::Address(mac) => l.mac = mac.clone(),
                LinkAttribute::Controller(i) => l.master = Some(*i),
                LinkAttribute::Link(i) => l.peer_index = Some(*i),
                LinkAttribute::Mtu(m) => l.mtu = Some(*m),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let NlLinkInfo::Kind(k) = i {
                            l.kind = Some(k.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    pub fn is_bridge(&self) -> bool {
        self.kind == Some(InfoKind::Bridge)
    }

    pub fn is_veth(&self) -> bool {
        self.kind == Some(InfoKind::Veth)
    }
}

/// The link called `name`, if there is one.
pub async fn get(handle: &Handle, name: &str) -> Result<Option<Link>, NetError> {
    let mut stream = handle.link().get().match_name(name).execute();
    match stream.try_next().await {
        Ok(Some(m)) => Ok(Some(Link::from_message(&m))),
        Ok(None) => Ok(None),
        Err(e) if super::errno_of(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up link {name}"))(e)),
    }
}

/// The link with index `index`, if there is one.
pub async fn get_by_index(handle: &Handle, index: u32) -> Result<Option<Link>, NetError> {
    let mut stream = handle.link().get().match_index(index).execute();
    match stream.try_next().await {
        Ok(m) => Ok(m.map(|m| Link::from_message(&m))),
        Err(e) if super::errno_of(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up link #{index}"))(e)),
    }
}

/// How the bridge should be.
#[derive(Debug, Clone)]
pub struct BridgeSpec<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub promisc: bool,
    /// The hardware address a new bridge gets (fixed, so it does not follow its ports).
    pub mac: [u8; 6],
}

/// Finds the bridge, or creates it; makes sure it is up (and promiscuous when asked). Returns it and whether
/// this call created it.
pub async fn ensure_bridge(handle: &Handle, spec: &BridgeSpec<'_>) -> Result<(Link, bool), NetError> {
    let mut created = false;
    let existing = match get(handle, spec.name).await? {
        Some(l) => Some(l),
        None => {
            let mut b = LinkBridge::new(spec.name).address(spec.mac.to_vec()).up();
            if let Some(mtu) = spec.mtu {
                b = b.mtu(mtu);
            }
            if spec.promisc {
                b = b.promiscuous(true);
            }
            match handle.link().add(b.build()).execute().await {
                Ok(()) => created = true,
                Err(e) if super::errno_of(&e) == Some(EEXIST) => {}
                Err(e) => return Err(nl(format!("creating bridge {}", spec.name))(e)),
            }
            if created {
                // We own this bridge's routes: no router advertisements (as the reference bridge does).
                let _ = super::sysctl::write(&format!("net/ipv6/conf/{}/accept_ra", spec.name), "0");
            }
            get(handle, spec.name).await?
        }
    };
    let link =
        existing.ok_or_else(|| NetError::State(format!("bridge {} vanished after it was created", spec.name)))?;
    if !link.is_bridge() {
        return Err(NetError::State(format!("{:?} already exists but is not a bridge", spec.name)));
    }
    if !link.up || (spec.promisc && !link.promisc) {
        let mut m = LinkUnspec::new_with_index(link.index).up();
        if spec.promisc {
            m = m.promiscuous(true);
        }
        handle.link().change(m.build()).execute().await.map_err(nl(format!("setting bridge {} up", spec.name)))?;
    }
    Ok((link, created))
}

/// The veth pair of one attachment.
#[derive(Debug)]
pub struct VethSpec<'a> {
    pub host_name: &'a str,
    pub host_mac: [u8; 6],
    pub bridge_index: u32,
    pub container: &'a Netns,
    pub container_name: &'a str,
    pub container_mac: [u8; 6],
    pub mtu: Option<u32>,
}

/// Creates the pair in one request: the host end attached to the bridge and up, the peer created inside the
/// container's namespace with its name and address. The peer cannot be brought up in the same request (the
/// kernel opens it before the pair is linked, ENOTCONN): see [`set_up`].
pub async fn create_veth(handle: &Handle, spec: &VethSpec<'_>) -> Result<(), NetError> {
    use std::os::fd::AsRawFd;
    let mut peer = LinkUnspec::new_with_name(spec.container_name)
        .address(spec.container_mac.to_vec())
        .setns_by_fd(spec.container.file.as_raw_fd());
    if let Some(mtu) = spec.mtu {
        peer = peer.mtu(mtu);
    }
    let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(spec.host_name)
        .address(spec.host_mac.to_vec())
        .controller(spec.bridge_index)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
    if let Some(mtu) = spec.mtu {
        host = host.mtu(mtu);
    }
    match handle.link().add(host.build()).execute().await {
        Ok(()) => Ok(()),
        Err(e) if super::errno_of(&e) == Some(EEXIST) => {
            if get(handle, spec.host_name).await?.is_some() {
                Err(NetError::Exists(format!(
                    "host veth {} already exists: this attachment was added before and not deleted",
                    spec.host_name
                )))
            } else {
                Err(NetError::Exists(format!(
                    "container {} already has an interface named {}",
                    spec.container.path.display(),
                    spec.container_name
                )))
            }
        }
        Err(e) => Err(nl(format!("creating veth {} <-> {}", spec.host_name, spec.container_name))(e)),
    }
}

/// Brings link `index` up.
pub async fn set_up(handle: &Handle, index: u32) -> Result<(), NetError> {
    let msg = LinkUnspec::new_with_index(index).up().build();
    handle.link().change(msg).execute().await.map_err(nl(format!("setting link #{index} up")))
}

/// Sets the bridge-port flags of `port` (hairpin mode, isolation).
pub async fn set_port_flags(handle: &Handle, port: &str, hairpin: bool, isolated: bool) -> Result<(), NetError> {
    let msg = LinkBridgePort::new(0).hairpin(hairpin).isolated(isolated).name(port.to_string()).build();
    handle.link().set_port(msg).execute().await.map_err(nl(format!("setting bridge-port flags of {port}")))
}

/// Deletes the link called `name`; `false` if there was none.
pub async fn delete(handle: &Handle, name: &str) -> Result<bool, NetError> {
    let Some(link) = get(handle, name).await? else { return Ok(false) };
    match handle.link().del(link.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if super::errno_of(&e) == Some(ENODEV) => Ok(false),
        Err(e) => Err(nl(format!("deleting link {name}"))(e)),
    }
}
