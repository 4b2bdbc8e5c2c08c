//! Interface addresses: listing, adding (IPv6 without duplicate address detection unless asked), and the
//! bridge's gateway addresses with the reference plugin's `forceAddress` rule.

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::{AddressGetRequest, Handle};

use super::{nl, NetError};

/// Every address of every link: the link's index and the address with its prefix length.
pub async fn list_all(handle: &Handle) -> Result<Vec<(u32, IpNet)>, NetError> {
    dump(handle.address().get(), "listing addresses".into()).await
}

/// The addresses on link `index`, with their prefix lengths.
pub async fn list(handle: &Handle, index: u32) -> Result<Vec<IpNet>, NetError> {
    let req = handle.address().get().set_link_index_filter(index);
    let all = dump(req, format!("listing the addresses of link #{index}")).await?;
    Ok(all.into_iter().map(|(_, net)| net).collect())
}

async fn dump(req: AddressGetRequest, what: String) -> Result<Vec<(u32, IpNet)>, NetError> {
    let msgs: Vec<AddressMessage> = req.execute().try_collect().await.map_err(nl(what))?;
    Ok(msgs.iter().filter_map(|m| Some((m.header.index, address_of(m)?))).collect())
}

fn address_of(m: &AddressMessage) -> Option<IpNet> {
    let mut addr = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => return IpNet::new(*ip, m.header.prefix_len).ok(),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    addr.and_then(|ip| IpNet::new(ip, m.header.prefix_len).ok())
}

/// Adds `net` to link `index`. IPv6 addresses skip duplicate address detection unless `dad` is set, so they
/// are usable at once.
pub async fn add(handle: &Handle, index: u32, net: IpNet, dad: bool) -> Result<(), NetError> {
    let mut req = handle.address().add(index, net.addr(), net.prefix_len());
    if net.addr().is_ipv6() && !dad {
        req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    }
    req.execute().await.map_err(nl(format!("adding address {net} to link #{index}")))
}

/// Removes `net` from link `index`.
pub async fn delete(handle: &Handle, index: u32, net: IpNet) -> Result<(), NetError> {
    let mut msg = AddressMessage::default();
    msg.header.family = match net.addr() {
        IpAddr::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
        IpAddr::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
    };
    msg.header.prefix_len = net.prefix_len();
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(net.addr()));
    msg.attributes.push(AddressAttribute::Address(net.addr()));
    handle.address().del(msg).execute().await.map_err(nl(format!("removing address {net} from link #{index}")))
}

/// What to do to give the bridge `want`, knowing the addresses it `has`: nothing, add it (after removing
/// `remove`), or refuse. An IPv4 bridge has one address; IPv6 addresses may coexist unless their subnets overlap.
pub fn bridge_address_change(
    bridge: &str,
    has: &[IpNet],
    want: IpNet,
    force: bool,
) -> Result<Option<Vec<IpNet>>, String> {
    if has.contains(&want) {
        return Ok(None);
    }
    let conflicting: Vec<IpNet> = has
        .iter()
        .filter(|a| a.addr().is_ipv4() == want.addr().is_ipv4())
        .filter(|a| {
            if want.addr().is_ipv4() {
                true
            } else {
                // Link-local addresses never conflict with a pod subnet.
                !is_link_local(a) && (a.contains(&want.addr()) || want.contains(&a.addr()))
            }
        })
        .copied()
        .collect();
    if !conflicting.is_empty() && !force {
        return Err(format!("{bridge:?} already has an IP address different from {want}"));
    }
    Ok(Some(conflicting))
}

fn is_link_local(a: &IpNet) -> bool {
    match a.addr() {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}

/// Gives the bridge `want` (see [`bridge_address_change`]).
pub async fn ensure_bridge_address(
    handle: &Handle,
    bridge: &str,
    index: u32,
    want: IpNet,
    force: bool,
) -> Result<(), NetError> {
    let has = list(handle, index).await?;
    let Some(remove) = bridge_address_change(bridge, &has, want, force).map_err(NetError::State)? else {
        return Ok(());
    };
    for old in remove {
        delete(handle, index, old).await?;
    }
    match add(handle, index, want, false).await {
        Err(e) if e.errno() == Some(nix::libc::EEXIST) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn bridge_address_rules_match_the_reference() {
        let want: IpNet = "10.244.1.1/24".parse().unwrap();
        assert_eq!(bridge_address_change("b", &nets(&["10.244.1.1/24"]), want, false), Ok(None));
        assert_eq!(bridge_address_change("b", &nets(&["fe80::1/64"]), want, false), Ok(Some(vec![])));
        let e = bridge_address_change("b", &nets(&["10.9.0.1/24"]), want, false).unwrap_err();
        assert_eq!(e, "\"b\" already has an IP address different from 10.244.1.1/24");
        assert_eq!(bridge_address_change("b", &nets(&["10.9.0.1/24"]), want, true), Ok(Some(nets(&["10.9.0.1/24"]))));
        let v6: IpNet = "fd00:1::1/64".parse().unwrap();
        assert_eq!(bridge_address_change("b", &nets(&["fd00:2::1/64", "fe80::1/64"]), v6, false), Ok(Some(vec![])));
        assert!(bridge_address_change("b", &nets(&["fd00:1::9/64"]), v6, false).is_err());
    }
}
