//! Deciding, without touching the kernel, what an ADD makes: the host veth's name, the container's
//! addresses and routes, the gateway addresses of the bridge, and the result the runtime gets back.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{format_mac, NetConf};
use crate::result::{CniResult, Dns, Interface, IpConfig, Route};

/// The host end of an attachment's veth: `veth` + 11 hex digits of a hash of `(container_id, ifname)`, so a
/// DEL finds it again without state, even when the container's namespace is gone.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    // FNV-1a, 64 bit: stable across releases (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([0u8]).chain(ifname.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("veth{:011x}", h >> 20)
}

/// What IPAM handed out for the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

/// The facts of the attachment the plan is made for.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub ifname: &'a str,
    pub netns: &'a str,
    pub host_veth: &'a str,
    pub bridge_mac: [u8; 6],
    pub host_mac: [u8; 6],
    pub container_mac: [u8; 6],
    pub mtu: Option<u32>,
}

/// A route to add in the container, with its next hop resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRoute {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub route: Route,
}

/// Everything an ADD applies, and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub container_addresses: Vec<IpNet>,
    pub container_routes: Vec<PlannedRoute>,
    /// Gateway addresses (with the subnet's prefix) the bridge must have.
    pub bridge_addresses: Vec<IpNet>,
    pub forward_ipv4: bool,
    pub forward_ipv6: bool,
    pub result: CniResult,
}

fn default_net(v4: bool) -> IpNet {
    if v4 {
        IpNet::V4(ipnet::Ipv4Net::default())
    } else {
        IpNet::V6(ipnet::Ipv6Net::default())
    }
}

/// The first address of `net`'s subnet after the network address (`calcGatewayIP` of the reference).
fn first_host(net: &IpNet) -> IpAddr {
    match net.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(1)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(1)).into()),
    }
}

/// Makes the plan of an ADD of `conf` for `att`, given IPAM's answer (`None` for a layer-2 network).
pub fn plan_add(conf: &NetConf, att: &Attachment<'_>, addressing: Option<Addressing>) -> Plan {
    let prev = conf.prev_result.clone().unwrap_or_default();
    let offset = prev.interfaces.len();
    let mut result = CniResult { cni_version: conf.cni_version.clone(), ..prev };
    result.interfaces.push(Interface {
        name: conf.bridge.clone(),
        mac: format_mac(&att.bridge_mac),
        ..Default::default()
    });
    result.interfaces.push(Interface {
        name: att.host_veth.to_string(),
        mac: format_mac(&att.host_mac),
        ..Default::default()
    });
    result.interfaces.push(Interface {
        name: att.ifname.to_string(),
        mac: format_mac(&att.container_mac),
        mtu: att.mtu,
        sandbox: att.netns.to_string(),
        ..Default::default()
    });
    let container_index = offset + 2;

    let mut plan = Plan {
        container_addresses: Vec::new(),
        container_routes: Vec::new(),
        bridge_addresses: Vec::new(),
        forward_ipv4: false,
        forward_ipv6: false,
        result,
    };
    let Some(addressing) = addressing else {
        if let Some(dns) = &conf.dns {
            plan.result.dns = dns.clone();
        }
        return plan;
    };

    let mut ips = addressing.ips;
    let mut routes = addressing.routes;
    for ip in &mut ips {
        ip.interface = Some(container_index);
        if ip.gateway.is_none() && conf.is_gateway {
            ip.gateway = Some(first_host(&ip.address));
        }
        let v4 = ip.address.addr().is_ipv4();
        if conf.is_default_gateway {
            let has_default = routes.iter().any(|r| r.dst == Some(default_net(v4)));
            if !has_default {
                routes.push(Route { dst: Some(default_net(v4)), gw: ip.gateway, ..Default::default() });
            }
        }
        if conf.is_gateway {
            if let Some(gw) = ip.gateway {
                if let Ok(net) = IpNet::new(gw, ip.address.prefix_len()) {
                    if !plan.bridge_addresses.contains(&net) {
                        plan.bridge_addresses.push(net);
                    }
                }
                if v4 {
                    plan.forward_ipv4 = true;
                } else {
                    plan.forward_ipv6 = true;
                }
            }
        }
        plan.container_addresses.push(ip.address);
    }
    let gw_of = |v4: bool| ips.iter().filter(|i| i.address.addr().is_ipv4() == v4).find_map(|i| i.gateway);
    for r in &routes {
        let dst = r.destination();
        let gw = r.gw.or_else(|| gw_of(dst.addr().is_ipv4()));
        plan.container_routes.push(PlannedRoute { dst, gw, route: r.clone() });
    }
    plan.result.ips.extend(ips);
    plan.result.routes.extend(routes);
    plan.result.dns = match &conf.dns {
        Some(dns) => dns.clone(),
        None if !addressing.dns.is_empty() => addressing.dns,
        None => plan.result.dns,
    };
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::CniArgs;
    use serde_json::json;

    fn conf(extra: serde_json::Value) -> NetConf {
        let mut v = json!({"cniVersion": "1.1.0", "name": "pods", "type": "knet-cni", "bridge": "knet0",
                           "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        crate::config::parse(v.to_string().as_bytes(), &CniArgs::default()).unwrap()
    }

    fn att() -> Attachment<'static> {
        Attachment {
            ifname: "eth0",
            netns: "/run/netns/p1",
            host_veth: "veth0123456789a",
            bridge_mac: [2, 0, 0, 0, 0, 1],
            host_mac: [2, 0, 0, 0, 0, 2],
            container_mac: [2, 0, 0, 0, 0, 3],
            mtu: None,
        }
    }

    fn v4(addr: &str, gw: Option<&str>) -> IpConfig {
        IpConfig { address: addr.parse().unwrap(), gateway: gw.map(|g| g.parse().unwrap()), interface: None }
    }

    #[test]
    fn names_host_veths_stably_and_within_15_characters() {
        let a = host_veth_name("abc", "eth0");
        assert_eq!(a.len(), 15);
        assert_eq!(a, host_veth_name("abc", "eth0"));
        assert_ne!(a, host_veth_name("abc", "eth1"));
        assert_ne!(a, host_veth_name("abd", "eth0"));
        assert_eq!(host_veth_name("", ""), "vethaf63bd4c860");
    }

    #[test]
    fn default_gateway_plan_golden() {
        let p = plan_add(
            &conf(json!({"isDefaultGateway": true})),
            &att(),
            Some(Addressing { ips: vec![v4("10.244.1.5/24", Some("10.244.1.1"))], ..Default::default() }),
        );
        assert_eq!(p.container_addresses, vec!["10.244.1.5/24".parse::<IpNet>().unwrap()]);
        assert_eq!(p.bridge_addresses, vec!["10.244.1.1/24".parse::<IpNet>().unwrap()]);
        assert!(p.forward_ipv4 && !p.forward_ipv6);
        assert_eq!(p.container_routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(p.container_routes[0].gw, Some("10.244.1.1".parse().unwrap()));
        assert_eq!(
            p.result.to_json("1.1.0"),
            json!({
                "cniVersion": "1.1.0",
                "interfaces": [{"name": "knet0", "mac": "02:00:00:00:00:01"},
                               {"name": "veth0123456789a", "mac": "02:00:00:00:00:02"},
                               {"name": "eth0", "mac": "02:00:00:00:00:03", "sandbox": "/run/netns/p1"}],
                "ips": [{"interface": 2, "address": "10.244.1.5/24", "gateway": "10.244.1.1"}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
                "dns": {}
            })
        );
    }

    #[test]
    fn dual_stack_and_ipam_routes_take_the_family_gateway() {
        let p = plan_add(
            &conf(json!({"isGateway": true, "dns": {"nameservers": ["10.96.0.10"]}})),
            &att(),
            Some(Addressing {
                ips: vec![v4("10.244.1.5/24", None), v4("fd00:10:244:1::5/64", None)],
                routes: vec![
                    Route { dst: Some("10.96.0.0/16".parse().unwrap()), ..Default::default() },
                    Route { dst: Some("fd00:96::/112".parse().unwrap()), ..Default::default() },
                ],
                dns: Dns { nameservers: vec!["1.1.1.1".into()], ..Default::default() },
            }),
        );
        assert_eq!(
            p.bridge_addresses.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["10.244.1.1/24", "fd00:10:244:1::1/64"]
        );
        assert!(p.forward_ipv4 && p.forward_ipv6);
        assert_eq!(p.container_routes[0].gw, Some("10.244.1.1".parse().unwrap()));
        assert_eq!(p.container_routes[1].gw, Some("fd00:10:244:1::1".parse().unwrap()));
        // isGateway alone adds no default route; the configuration's dns wins over IPAM's.
        assert_eq!(p.result.routes.len(), 2);
        assert_eq!(p.result.dns.nameservers, ["10.96.0.10"]);
    }

    #[test]
    fn appends_to_a_previous_result() {
        let prev = json!({"cniVersion": "1.1.0", "interfaces": [{"name": "lo", "sandbox": "/run/netns/p1"}],
                          "ips": [{"address": "127.0.0.1/8", "interface": 0}]});
        let p = plan_add(
            &conf(json!({"prevResult": prev})),
            &att(),
            Some(Addressing { ips: vec![v4("10.244.1.5/24", Some("10.244.1.1"))], ..Default::default() }),
        );
        assert_eq!(p.result.interfaces.len(), 4);
        assert_eq!(p.result.ips[1].interface, Some(3));
        assert!(p.bridge_addresses.is_empty());
    }

    #[test]
    fn layer2_has_no_addresses() {
        let mut c = conf(json!({}));
        c.ipam = crate::ipam::Ipam::None;
        let p = plan_add(&c, &att(), None);
        assert!(p.container_addresses.is_empty() && p.result.ips.is_empty());
        assert_eq!(p.result.interfaces.len(), 3);
    }
}
