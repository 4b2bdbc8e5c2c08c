//! host-local IPAM run in-process: allocate, release, check, garbage-collect and report free addresses, on
//! the shared on-disk store (see `store`).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::config::HostLocalConfig;
use super::range::{candidates, describe, RangeSet};
use super::store::{Store, StoreError};
use crate::error::{code, CniError};
use crate::result::{Dns, IpConfig, Route};

/// What host-local hands back on ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn io(e: StoreError) -> CniError {
    CniError::with_details(code::IO_FAILURE, "host-local IPAM store", e.to_string())
}

/// Reserves one address per range set for `(container_id, ifname)`; all or nothing.
pub fn allocate(cfg: &HostLocalConfig, container_id: &str, ifname: &str) -> Result<Allocation, CniError> {
    let dns = match &cfg.resolv_conf {
        Some(path) => super::resolv::parse(&std::fs::read_to_string(path).map_err(|e| {
            CniError::with_details(code::IO_FAILURE, format!("reading resolvConf {}", path.display()), e.to_string())
        })?),
        None => Dns::default(),
    };
    let store = Store::open_locked(&cfg.data_dir, &cfg.network).map_err(io)?;
    let leases = store.leases().map_err(io)?;
    let mut taken: HashSet<IpAddr> = leases.iter().map(|l| l.ip).collect();
    let mut requested = cfg.requested.clone();
    let mut ips = Vec::new();
    let mut reserved = Vec::new();
    let result = (|| {
        for (idx, set) in cfg.range_sets.iter().enumerate() {
            if let Some(dup) = leases.iter().find(|l| l.held_by(container_id, ifname) && in_set(set, l.ip)) {
                return Err(CniError::with_details(
                    code::DUPLICATE_ATTACHMENT,
                    format!("{} has been allocated to {container_id}, duplicate allocation is not allowed", dup.ip),
                    "call DEL for this attachment before adding it again",
                ));
            }
            let want = requested.iter().position(|ip| in_set(set, *ip)).map(|i| requested.remove(i));
            let (ip, range) = match want {
                Some(ip) => {
                    let range = set.iter().find(|r| r.contains(ip)).ok_or_else(|| unavailable(ip, set))?;
                    if ip == range.gateway {
                        return Err(CniError::new(
                            code::INVALID_NETWORK_CONFIG,
                            format!("requested ip {ip} is subnet's gateway"),
                        ));
                    }
                    if taken.contains(&ip) || !store.reserve(ip, container_id, ifname, idx).map_err(io)? {
                        return Err(unavailable(ip, set));
                    }
                    (ip, range)
                }
                None => {
                    let mut got = None;
                    for (ip, range) in candidates(set, store.last_reserved(idx)) {
                        if !taken.contains(&ip) && store.reserve(ip, container_id, ifname, idx).map_err(io)? {
                            got = Some((ip, range));
                            break;
                        }
                    }
                    got.ok_or_else(|| {
                        CniError::new(
                            code::NO_ADDRESSES,
                            format!("no IP addresses available in range set: {}", describe(set)),
                        )
                    })?
                }
            };
            taken.insert(ip);
            reserved.push(ip);
            let address = IpNet::new(ip, range.subnet.prefix_len())
                .map_err(|e| CniError::new(code::INVALID_NETWORK_CONFIG, e.to_string()))?;
            ips.push(IpConfig { address, gateway: Some(range.gateway), interface: None });
        }
        if !requested.is_empty() {
            let list: Vec<String> = requested.iter().map(|ip| ip.to_string()).collect();
            return Err(CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!("failed to allocate all requested IPs: {}", list.join(" ")),
            ));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for ip in reserved {
            let _ = store.release(ip);
        }
        return Err(e);
    }
    Ok(Allocation { ips, routes: cfg.routes.clone(), dns })
}

fn in_set(set: &RangeSet, ip: IpAddr) -> bool {
    set.iter().any(|r| r.contains(ip))
}

fn unavailable(ip: IpAddr, set: &RangeSet) -> CniError {
    CniError::new(
        code::INVALID_NETWORK_CONFIG,
        format!("requested IP address {ip} is not available in range set {}", describe(set)),
    )
}

/// Releases every address `(container_id, ifname)` holds (none is fine).
pub fn release(cfg: &HostLocalConfig, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>, CniError> {
    let store = Store::open_locked(&cfg.data_dir, &cfg.network).map_err(io)?;
    store.release_attachment(container_id, ifname).map_err(io)
}

/// Fails unless `(container_id, ifname)` holds a lease for each of `expected` (or, with none expected, any).
pub fn check(cfg: &HostLocalConfig, container_id: &str, ifname: &str, expected: &[IpAddr]) -> Result<(), CniError> {
    let store = Store::open_locked(&cfg.data_dir, &cfg.network).map_err(io)?;
    let held: HashSet<IpAddr> =
        store.leases().map_err(io)?.into_iter().filter(|l| l.held_by(container_id, ifname)).map(|l| l.ip).collect();
    if held.is_empty() {
        return Err(CniError::new(
            code::CHECK_FAILED,
            format!("host-local: Failed to find address added by container {container_id}"),
        ));
    }
    if let Some(missing) = expected.iter().find(|ip| !held.contains(ip)) {
        return Err(CniError::new(
            code::CHECK_FAILED,
            format!(
                "host-local: address {missing} of container {container_id} has no lease in {}",
                store.dir().display()
            ),
        ));
    }
    Ok(())
}

/// Releases every lease whose attachment is not in `valid`; returns what was released.
pub fn gc(cfg: &HostLocalConfig, valid: &[(String, String)]) -> Result<Vec<IpAddr>, CniError> {
    let store = Store::open_locked(&cfg.data_dir, &cfg.network).map_err(io)?;
    let mut released = Vec::new();
    let mut errors = Vec::new();
    for lease in store.leases().map_err(io)? {
        let keep = valid.iter().any(|(id, ifname)| lease.held_by(id, ifname));
        if !keep {
            match store.release(lease.ip) {
                Ok(()) => released.push(lease.ip),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    if !errors.is_empty() {
        return Err(CniError::with_details(
            code::IO_FAILURE,
            "GC could not release every stale lease",
            errors.join("; "),
        ));
    }
    Ok(released)
}

/// How many addresses each range set has left (gateways excluded), in order.
pub fn free_counts(cfg: &HostLocalConfig) -> Result<Vec<u128>, CniError> {
    let store = Store::open_locked(&cfg.data_dir, &cfg.network).map_err(io)?;
    let reserved = store.reserved().map_err(io)?;
    Ok(cfg
        .range_sets
        .iter()
        .map(|set| {
            let capacity = set.iter().fold(0u128, |acc, r| {
                let gw_inside = r.contains(r.gateway) as u128;
                acc.saturating_add(r.size() - gw_inside)
            });
            let used = reserved.iter().filter(|ip| set.iter().any(|r| r.contains(**ip) && **ip != r.gateway)).count();
            capacity.saturating_sub(used as u128)
        })
        .collect())
}

/// STATUS: code 50 when a range set has no address left.
pub fn status(cfg: &HostLocalConfig) -> Result<(), CniError> {
    for (set, free) in cfg.range_sets.iter().zip(free_counts(cfg)?) {
        if free == 0 {
            return Err(CniError::with_details(
                code::PLUGIN_NOT_AVAILABLE,
                format!("no IP addresses available in range set: {}", describe(set)),
                format!("every address is leased in {}", cfg.data_dir.join(&cfg.network).display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::config::{parse, Requests};
    use serde_json::json;

    fn cfg(dir: &std::path::Path, ipam: serde_json::Value) -> HostLocalConfig {
        let mut ipam = ipam;
        ipam["dataDir"] = json!(dir.to_str().unwrap());
        parse(&ipam, "net", &Requests::default()).unwrap()
    }

    #[test]
    fn allocates_round_robin_and_exhausts() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), json!({"subnet": "10.0.0.0/29"}));
        let got: Vec<String> =
            (0..5).map(|i| allocate(&c, &format!("c{i}"), "eth0").unwrap().ips[0].address.to_string()).collect();
        assert_eq!(got, ["10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29", "10.0.0.6/29"]);
        let e = allocate(&c, "c9", "eth0").unwrap_err();
        assert_eq!(e.code, code::NO_ADDRESSES);
        assert_eq!(e.msg, "no IP addresses available in range set: 10.0.0.1-10.0.0.6");
        assert_eq!(status(&c).unwrap_err().code, code::PLUGIN_NOT_AVAILABLE);
        assert_eq!(release(&c, "c1", "eth0").unwrap(), vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert!(status(&c).is_ok());
        // Round robin: the freed .3 comes again only after the last reserved (.6) wraps around.
        assert_eq!(allocate(&c, "c10", "eth0").unwrap().ips[0].address.to_string(), "10.0.0.3/29");
    }

    #[test]
    fn dual_stack_is_all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/126"}]]}));
        let a = allocate(&c, "a", "eth0").unwrap();
        assert_eq!(a.ips[1].address.to_string(), "fd00::2/126");
        assert_eq!(a.ips[1].gateway.unwrap().to_string(), "fd00::1");
        allocate(&c, "b", "eth0").unwrap();
        // v6 is full now (::2, ::3): c's v4 reservation must be rolled back.
        assert_eq!(allocate(&c, "c", "eth0").unwrap_err().code, code::NO_ADDRESSES);
        let store = Store::open_locked(tmp.path(), "net").unwrap();
        assert_eq!(store.leases().unwrap().len(), 4);
    }

    #[test]
    fn refuses_duplicates_and_honours_requests() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = cfg(tmp.path(), json!({"subnet": "10.0.0.0/24"}));
        allocate(&c, "a", "eth0").unwrap();
        assert!(allocate(&c, "a", "eth0").unwrap_err().msg.contains("duplicate allocation"));
        assert!(allocate(&c, "a", "eth1").is_ok());
        c.requested = vec!["10.0.0.50".parse().unwrap()];
        assert_eq!(allocate(&c, "b", "eth0").unwrap().ips[0].address.to_string(), "10.0.0.50/24");
        assert!(allocate(&c, "c", "eth0").unwrap_err().msg.contains("not available"));
        c.requested = vec!["10.0.0.1".parse().unwrap()];
        assert!(allocate(&c, "d", "eth0").unwrap_err().msg.contains("gateway"));
        c.requested = vec!["10.9.0.1".parse().unwrap()];
        assert!(allocate(&c, "e", "eth0").unwrap_err().msg.contains("failed to allocate all requested IPs"));
        assert!(check(&c, "a", "eth0", &["10.0.0.2".parse().unwrap()]).is_ok());
        assert_eq!(check(&c, "zz", "eth0", &[]).unwrap_err().code, code::CHECK_FAILED);
    }

    #[test]
    fn gc_keeps_only_valid_attachments() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), json!({"subnet": "10.0.0.0/24"}));
        for id in ["a", "b", "c"] {
            allocate(&c, id, "eth0").unwrap();
        }
        std::fs::write(tmp.path().join("net/10.0.0.99"), "old-style-id").unwrap();
        let mut freed = gc(&c, &[("b".into(), "eth0".into()), ("old-style-id".into(), "eth3".into())]).unwrap();
        freed.sort();
        assert_eq!(freed, ["10.0.0.2", "10.0.0.4"].map(|s| s.parse::<IpAddr>().unwrap()));
        assert_eq!(free_counts(&c).unwrap(), vec![253 - 2]);
    }
}
