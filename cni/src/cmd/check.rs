//! CHECK: verifies against `prevResult` that what ADD made is still there: the bridge, the container's veth
//! and its host end on the bridge, MAC addresses, the container's addresses and routes, the bridge's gateway
//! addresses and the IPAM leases.

use crate::args::{CmdArgs, Command};
use crate::config::{format_mac, NetConf};
use crate::error::{code, CniError};
use crate::ipam::{delegate, hostlocal, Ipam};
use crate::net::netns::connect_host;
use crate::net::{addr, link, route};
use crate::result::Interface;

fn failed(msg: impl Into<String>) -> CniError {
    CniError::new(code::CHECK_FAILED, msg)
}

fn mac_matches(listed: &Interface, actual: &[u8]) -> bool {
    listed.mac.is_empty() || listed.mac.eq_ignore_ascii_case(&format_mac(actual))
}

/// Runs CHECK.
pub async fn check(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<(), CniError> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::new(code::INVALID_NETWORK_CONFIG, "Required prevResult missing"))?;
    let netns = super::add::open_container(&args.netns)?;

    let br_i = prev.interfaces.iter().position(|i| i.name == conf.bridge && i.sandbox.is_empty());
    let ct_i = prev.interfaces.iter().position(|i| i.name == args.ifname && i.sandbox == args.netns);
    let Some(ct_i) = ct_i else {
        return Err(failed(format!("prevResult lists no interface {} in sandbox {}", args.ifname, args.netns)));
    };
    let expected_ips: Vec<_> = prev.ips.iter().filter(|ip| ip.interface == Some(ct_i)).collect();
    match &conf.ipam {
        Ipam::None => {}
        Ipam::HostLocal(c) => {
            let ips: Vec<_> = expected_ips.iter().map(|i| i.address.addr()).collect();
            hostlocal::check(c, &args.container_id, &args.ifname, &ips)?;
        }
        Ipam::Delegate(t) => {
            delegate::exec(t, Command::Check, &args.path, stdin)?;
        }
    }

    let host = connect_host()?;
    let bridge = link::get(&host, &conf.bridge)
        .await?
        .ok_or_else(|| failed(format!("CNI created bridge {} in host namespace was not found", conf.bridge)))?;
    if !bridge.is_bridge() {
        return Err(failed(format!("Interface {} does not have link type of bridge", conf.bridge)));
    }
    if let Some(listed) = br_i.map(|i| &prev.interfaces[i]) {
        if !mac_matches(listed, &bridge.mac) {
            return Err(failed(format!("Bridge interface {} Mac doesn't match: {}", conf.bridge, listed.mac)));
        }
    }
    if bridge.promisc != conf.promisc_mode {
        return Err(failed(format!(
            "Bridge interface {} configured Promisc Mode {} doesn't match current state: {}",
            conf.bridge, conf.promisc_mode, bridge.promisc
        )));
    }

    let container = netns.connect()?;
    let listed = &prev.interfaces[ct_i];
    let iface = link::get(&container, &args.ifname)
        .await?
        .ok_or_else(|| failed(format!("CNI created interface in container {} not found", args.ifname)))?;
    if !iface.is_veth() {
        return Err(failed(format!("Container interface {} not of type veth", args.ifname)));
    }
    if !mac_matches(listed, &iface.mac) {
        return Err(failed(format!(
            "Interface {} Mac {} doesn't match container Mac: {}",
            args.ifname,
            listed.mac,
            format_mac(&iface.mac)
        )));
    }
    let peer = match iface.peer_index {
        Some(i) => link::get_by_index(&host, i).await?,
        None => None,
    };
    let peer = peer
        .filter(|p| p.master == Some(bridge.index) && p.peer_index == Some(iface.index))
        .ok_or_else(|| failed(format!("CNI veth created for bridge {} was not found", conf.bridge)))?;
    if let Some(listed) = prev.interfaces.iter().find(|i| i.name == peer.name && i.sandbox.is_empty()) {
        if !mac_matches(listed, &peer.mac) {
            return Err(failed(format!("Interface {} Mac doesn't match: {} not found", peer.name, listed.mac)));
        }
    } else {
        return Err(failed(format!("the host end {} of {} is not in prevResult", peer.name, args.ifname)));
    }

    let have = addr::list(&container, iface.index).await?;
    for ip in &expected_ips {
        if !have.contains(&ip.address) {
            return Err(failed(format!("Failed to match addr {} on interface {}", ip.address, args.ifname)));
        }
    }
    for family_v4 in [true, false] {
        let wanted: Vec<_> = prev.routes.iter().filter(|r| r.destination().addr().is_ipv4() == family_v4).collect();
        if wanted.is_empty() {
            continue;
        }
        let routes = route::list(&container, family_v4).await?;
        for r in wanted {
            let dst = r.destination().trunc();
            let found = routes.iter().any(|k| k.dst == dst && (r.gw.is_none() || k.gw == r.gw));
            if !found {
                let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
                return Err(failed(format!("Failed to find a route to {dst}{via} in the container")));
            }
        }
    }
    if conf.is_gateway {
        let on_bridge = addr::list(&host, bridge.index).await?;
        for ip in &expected_ips {
            if let Some(gw) = ip.gateway {
                let want = ipnet::IpNet::new(gw, ip.address.prefix_len()).map_err(|e| failed(e.to_string()))?;
                if !on_bridge.contains(&want) {
                    return Err(failed(format!("bridge {} lacks its gateway address {want}", conf.bridge)));
                }
            }
        }
    }
    Ok(())
}
