//! Routes in the container: adding the planned ones and listing what is there (for CHECK).

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteScope};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::{nl, NetError};
use crate::plan::PlannedRoute;

/// A route as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
}

/// Adds `r` through link `oif`.
pub async fn add(handle: &Handle, oif: u32, r: &PlannedRoute) -> Result<(), NetError> {
    let what = || match r.gw {
        Some(gw) => format!("adding route {} via {gw}", r.dst),
        None => format!("adding route {}", r.dst),
    };
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.dst.network(), r.dst.prefix_len())
        .map_err(|e| NetError::State(format!("{}: {e}", what())))?
        .output_interface(oif);
    if let Some(gw) = r.gw {
        b = b.gateway(gw).map_err(|e| NetError::State(format!("{}: {e}", what())))?;
    }
    if let Some(p) = r.route.priority {
        b = b.priority(p);
    }
    if let Some(t) = r.route.table {
        b = b.table_id(t);
    }
    b = match r.route.scope {
        Some(s) => b.scope(RouteScope::from(s)),
        None if r.gw.is_none() => b.scope(RouteScope::Link),
        None => b,
    };
    let mut msg = b.build();
    let mut metrics = Vec::new();
    if let Some(mtu) = r.route.mtu {
        metrics.push(RouteMetric::Mtu(mtu));
    }
    if let Some(advmss) = r.route.advmss {
        metrics.push(RouteMetric::Advmss(advmss));
    }
    if !metrics.is_empty() {
        msg.attributes.push(RouteAttribute::Metrics(metrics));
    }
    handle.route().add(msg).execute().await.map_err(nl(what()))
}

/// Every route of `family_v4`'s family, in every table.
pub async fn list(handle: &Handle, family_v4: bool) -> Result<Vec<KernelRoute>, NetError> {
    let filter = if family_v4 {
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    } else {
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    };
    let msgs: Vec<RouteMessage> =
        handle.route().get(filter).execute().try_collect().await.map_err(nl("listing routes"))?;
    Ok(msgs.iter().filter_map(|m| from_message(m, family_v4)).collect())
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn from_message(m: &RouteMessage, v4: bool) -> Option<KernelRoute> {
    let unspecified =
        if v4 { IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) };
    let mut dst = unspecified;
    let mut gw = None;
    let mut oif = None;
    let mut table = m.header.table as u32;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip_of(d)?,
            RouteAttribute::Gateway(g) => gw = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    Some(KernelRoute { dst: IpNet::new(dst, m.header.destination_prefix_length).ok()?, gw, oif, table })
}
