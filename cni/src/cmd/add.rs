//! ADD: bridge, veth pair, addresses from IPAM, routes and the bridge's gateway address, all or nothing: a
//! failure at any step deletes the veth and releases the addresses before the error is returned.

use crate::args::{CmdArgs, Command};
use crate::config::{format_mac, NetConf};
use crate::error::{code, CniError};
use crate::fault;
use crate::ipam::{delegate, hostlocal, Ipam};
use crate::net::netns::{connect_host, Netns};
use crate::net::{addr, link, route, sysctl};
use crate::plan::{host_veth_name, plan_add, Addressing, Attachment};
use crate::result::CniResult;

use super::random_mac;

/// Opens `CNI_NETNS`: code 3 when it does not exist, code 4 when it is the plugin's own namespace.
pub fn open_container(path: &str) -> Result<Netns, CniError> {
    let ns = Netns::open(std::path::Path::new(path))?.ok_or_else(|| {
        CniError::new(code::UNKNOWN_CONTAINER, format!("container network namespace {path} does not exist"))
    })?;
    if ns.is_current()? {
        return Err(CniError::new(
            code::INVALID_ENVIRONMENT,
            format!("CNI_NETNS {path} is the plugin's own network namespace, not a container's"),
        ));
    }
    Ok(ns)
}

/// What a failed ADD must take back.
struct Undo {
    veth: bool,
    ipam: bool,
}

/// Runs ADD; on failure everything made so far is removed again.
pub async fn add(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<CniResult, CniError> {
    let netns = open_container(&args.netns)?;
    let host = connect_host()?;
    let host_veth = host_veth_name(&args.container_id, &args.ifname);
    let mut undo = Undo { veth: false, ipam: false };
    let outcome = steps(conf, args, stdin, &netns, &host, &host_veth, &mut undo).await;
    if outcome.is_err() {
        if undo.veth {
            if let Err(e) = link::delete(&host, &host_veth).await {
                tracing::warn!(container_id = %args.container_id, veth = %host_veth, error = %e, "rollback: deleting the veth failed");
            }
        }
        if undo.ipam {
            if let Err(e) = release(conf, args, stdin) {
                tracing::warn!(container_id = %args.container_id, error = %e, "rollback: releasing the addresses failed");
            }
        }
    }
    outcome
}

/// Gives back the attachment's addresses (host-local in-process, or the delegated plugin's DEL).
pub fn release(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<(), CniError> {
    match &conf.ipam {
        Ipam::None => Ok(()),
        Ipam::HostLocal(c) => hostlocal::release(c, &args.container_id, &args.ifname).map(|_| ()),
        Ipam::Delegate(t) => delegate::exec(t, Command::Del, &args.path, stdin).map(|_| ()),
    }
}

async fn steps(
    conf: &NetConf,
    args: &CmdArgs,
    stdin: &[u8],
    netns: &Netns,
    host: &rtnetlink::Handle,
    host_veth: &str,
    undo: &mut Undo,
) -> Result<CniResult, CniError> {
    // host-local's file work runs on its own thread while the links are made (it needs nothing from them).
    let allocation = match &conf.ipam {
        Ipam::HostLocal(c) => {
            let (c, id, ifname) = (c.clone(), args.container_id.clone(), args.ifname.clone());
            Some(std::thread::spawn(move || hostlocal::allocate(&c, &id, &ifname)))
        }
        _ => None,
    };
    let links = make_links(conf, args, netns, host, host_veth, undo).await;
    // Join the allocation before looking at the links' outcome, so a failed ADD still releases what it got.
    let allocated = allocation.map(|t| {
        t.join().unwrap_or_else(|_| Err(CniError::new(code::IO_FAILURE, "the host-local allocation thread panicked")))
    });
    if let Some(Ok(_)) = &allocated {
        undo.ipam = true;
    }
    let (container, bridge, host_mac, container_mac) = links?;
    let addressing = match &conf.ipam {
        Ipam::None => None,
        Ipam::HostLocal(_) => {
            let a = allocated.unwrap_or_else(|| Err(CniError::new(code::IO_FAILURE, "no host-local allocation")))?;
            Some(Addressing { ips: a.ips, routes: a.routes, dns: a.dns })
        }
        Ipam::Delegate(t) => {
            delegate::find(t, &args.path)?;
            // A delegated ADD that fails is followed by its DEL (SPEC.md section 4).
            undo.ipam = true;
            let r = delegate::exec(t, Command::Add, &args.path, stdin)?
                .ok_or_else(|| CniError::new(code::DECODING_FAILURE, format!("IPAM plugin {t} returned no result")))?;
            Some(Addressing { ips: r.ips, routes: r.routes, dns: r.dns })
        }
    };
    if addressing.as_ref().is_some_and(|a| a.ips.is_empty()) {
        return Err(CniError::new(code::INVALID_NETWORK_CONFIG, "IPAM plugin returned missing IP config"));
    }
    fault::after("ipam")?;
    tracing::debug!(step = "ipam", "done");
    configure(conf, args, host, host_veth, &container, &bridge, host_mac, container_mac, addressing).await
}

/// The bridge and the veth pair; returns the container's netlink handle, the bridge, and both MACs.
async fn make_links(
    conf: &NetConf,
    args: &CmdArgs,
    netns: &Netns,
    host: &rtnetlink::Handle,
    host_veth: &str,
    undo: &mut Undo,
) -> Result<(rtnetlink::Handle, link::Link, [u8; 6], [u8; 6]), CniError> {
    let container = netns.connect()?;
    tracing::debug!(step = "connect", "done");
    let (bridge, _) = link::ensure_bridge(
        host,
        &link::BridgeSpec { name: &conf.bridge, mtu: conf.mtu, promisc: conf.promisc_mode, mac: random_mac() },
    )
    .await?;
    fault::after("bridge")?;
    tracing::debug!(step = "bridge", "done");

    let container_mac = conf.mac.unwrap_or_else(random_mac);
    let host_mac = random_mac();
    link::create_veth(
        host,
        &link::VethSpec {
            host_name: host_veth,
            host_mac,
            bridge_index: bridge.index,
            container: netns,
            container_name: &args.ifname,
            container_mac,
            mtu: conf.mtu,
        },
    )
    .await?;
    undo.veth = true;
    if conf.hairpin_mode || conf.port_isolation {
        link::set_port_flags(host, host_veth, conf.hairpin_mode, conf.port_isolation).await?;
    }
    fault::after("veth")?;
    tracing::debug!(step = "veth", "done");

    Ok((container, bridge, host_mac, container_mac))
}

/// Addresses, routes and the bridge's gateway, and the result.
#[allow(clippy::too_many_arguments)]
async fn configure(
    conf: &NetConf,
    args: &CmdArgs,
    host: &rtnetlink::Handle,
    host_veth: &str,
    container: &rtnetlink::Handle,
    bridge: &link::Link,
    host_mac: [u8; 6],
    container_mac: [u8; 6],
    addressing: Option<Addressing>,
) -> Result<CniResult, CniError> {
    // The bridge's address may have changed when the port joined (unless it was set explicitly).
    let bridge_mac = link::get(host, &conf.bridge).await?.map(|b| b.mac).unwrap_or_else(|| bridge.mac.clone());
    let mut mac6 = [0u8; 6];
    mac6.copy_from_slice(bridge_mac.get(..6).unwrap_or(&[0; 6]));
    let plan = plan_add(
        conf,
        &Attachment {
            ifname: &args.ifname,
            netns: &args.netns,
            host_veth,
            bridge_mac: mac6,
            host_mac,
            container_mac,
            mtu: conf.mtu,
        },
        addressing,
    );

    if !conf.disable_container_interface {
        let iface = link::get(container, &args.ifname).await?.ok_or_else(|| {
            CniError::new(code::KERNEL, format!("{} vanished from the container after it was created", args.ifname))
        })?;
        for a in &plan.container_addresses {
            addr::add(container, iface.index, *a, conf.enable_dad).await?;
        }
        link::set_up(container, iface.index).await?;
        fault::after("addresses")?;
        tracing::debug!(step = "addresses", "done");
        for r in &plan.container_routes {
            route::add(container, iface.index, r).await?;
        }
        fault::after("routes")?;
        tracing::debug!(step = "routes", "done");
    }
    for a in &plan.bridge_addresses {
        addr::ensure_bridge_address(host, &conf.bridge, bridge.index, *a, conf.force_address).await?;
    }
    if plan.forward_ipv4 {
        sysctl::ensure("net/ipv4/ip_forward", "1")?;
    }
    if plan.forward_ipv6 {
        sysctl::ensure("net/ipv6/conf/all/forwarding", "1")?;
    }
    fault::after("gateway")?;
    tracing::debug!(step = "gateway", "done");
    tracing::debug!(container_id = %args.container_id, veth = %host_veth, mac = %format_mac(&container_mac), "added");
    Ok(plan.result)
}
