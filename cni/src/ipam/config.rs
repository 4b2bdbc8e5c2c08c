//! host-local's IPAM configuration: `ranges` (or the old single top-level range), `routes`, `dataDir`,
//! `resolvConf`, and the addresses a runtime asks for (`CNI_ARGS IP=`, `args.cni.ips`, `runtimeConfig.ips`,
//! `runtimeConfig.ipRanges`), read and validated.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::range::{validate_sets, Range, RangeSet};
use super::store::DEFAULT_DATA_DIR;
use crate::error::{code, CniError};
use crate::result::Route;

/// A validated host-local configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLocalConfig {
    /// The network name (the lease directory under `data_dir`).
    pub network: String,
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    /// Addresses the runtime asked for; each must fall in one range set.
    pub requested: Vec<IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRange {
    subnet: Option<IpNet>,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(flatten)]
    single: RawRange,
    #[serde(default)]
    ranges: Vec<Vec<RawRange>>,
    #[serde(default)]
    routes: Vec<Route>,
    data_dir: Option<String>,
    resolv_conf: Option<String>,
}

/// The parts of the request, outside `ipam`, that steer host-local.
#[derive(Debug, Default)]
pub struct Requests<'a> {
    pub runtime_config: Option<&'a Value>,
    pub args: Option<&'a Value>,
    pub cni_args_ip: Option<&'a str>,
}

fn invalid(details: impl Into<String>) -> CniError {
    CniError::with_details(code::INVALID_NETWORK_CONFIG, "invalid host-local IPAM configuration", details)
}

fn decode<T: for<'de> Deserialize<'de>>(v: &Value, what: &str) -> Result<T, CniError> {
    serde_json::from_value(v.clone())
        .map_err(|e| CniError::with_details(code::DECODING_FAILURE, format!("decoding {what}"), e.to_string()))
}

fn canonical_set(raw: Vec<RawRange>, index: usize) -> Result<RangeSet, CniError> {
    if raw.is_empty() {
        return Err(invalid(format!("range set {index} is empty")));
    }
    raw.into_iter()
        .map(|r| {
            let subnet = r.subnet.ok_or_else(|| invalid(format!("range set {index}: a range has no subnet")))?;
            Range::canonical(subnet, r.range_start, r.range_end, r.gateway)
                .map_err(|e| invalid(format!("invalid range set {index}: {e}")))
        })
        .collect()
}

/// Reads the `ipam` object of network `network` and the runtime's requests.
pub fn parse(ipam: &Value, network: &str, req: &Requests<'_>) -> Result<HostLocalConfig, CniError> {
    let raw: RawIpam = decode(ipam, "the ipam configuration")?;
    let mut raw_sets = Vec::new();
    // Runtime-supplied ranges come first, then the old single range, then `ranges` (host-local's order).
    if let Some(rc) = req.runtime_config.and_then(|rc| rc.get("ipRanges")) {
        let sets: Vec<Vec<RawRange>> = decode(rc, "runtimeConfig.ipRanges")?;
        raw_sets.extend(sets);
    }
    if raw.single.subnet.is_some() {
        raw_sets.push(vec![raw.single]);
    }
    raw_sets.extend(raw.ranges);
    if raw_sets.is_empty() {
        return Err(invalid("no IP ranges specified"));
    }
    let range_sets =
        raw_sets.into_iter().enumerate().map(|(i, s)| canonical_set(s, i)).collect::<Result<Vec<_>, _>>()?;
    validate_sets(&range_sets).map_err(|e| invalid(e.to_string()))?;
    for r in &raw.routes {
        if r.dst.is_none() {
            return Err(invalid("a route has no dst"));
        }
    }

    let mut requested = Vec::new();
    if let Some(ip) = req.cni_args_ip {
        requested.push(ip.parse::<IpAddr>().map_err(|_| invalid(format!("CNI_ARGS IP={ip:?} is not an IP address")))?);
    }
    if let Some(ips) = req.args.and_then(|a| a.get("cni")).and_then(|c| c.get("ips")) {
        requested.extend(decode::<Vec<IpAddr>>(ips, "args.cni.ips")?);
    }
    if let Some(ips) = req.runtime_config.and_then(|rc| rc.get("ips")) {
        // runtimeConfig.ips may carry a prefix (`10.0.0.5/24`); only the address matters.
        let raw: Vec<String> = decode(ips, "runtimeConfig.ips")?;
        for s in raw {
            let addr = s.split('/').next().unwrap_or_default();
            requested.push(addr.parse().map_err(|_| invalid(format!("runtimeConfig.ips: {s:?} is not an IP")))?);
        }
    }

    Ok(HostLocalConfig {
        network: network.to_string(),
        range_sets,
        routes: raw.routes,
        data_dir: PathBuf::from(raw.data_dir.filter(|d| !d.is_empty()).unwrap_or_else(|| DEFAULT_DATA_DIR.into())),
        resolv_conf: raw.resolv_conf.filter(|p| !p.is_empty()).map(PathBuf::from),
        requested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_ranges_routes_and_data_dir() {
        let c = parse(
            &json!({"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10"}],
                     [{"subnet": "fd00:1::/64"}]],
                    "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/tmp/x"}),
            "pods",
            &Requests::default(),
        )
        .unwrap();
        assert_eq!(c.range_sets.len(), 2);
        assert_eq!(c.range_sets[0][0].start.to_string(), "10.244.1.10");
        assert_eq!(c.range_sets[1][0].gateway.to_string(), "fd00:1::1");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.routes.len(), 1);
    }

    #[test]
    fn accepts_the_old_single_range_and_defaults() {
        let c = parse(&json!({"type": "host-local", "subnet": "10.1.0.0/16"}), "n", &Requests::default()).unwrap();
        assert_eq!(c.range_sets[0][0].end.to_string(), "10.1.255.254");
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn collects_requested_addresses() {
        let rc = json!({"ips": ["10.1.0.7/16"], "ipRanges": [[{"subnet": "10.2.0.0/24"}]]});
        let args = json!({"cni": {"ips": ["10.1.0.8"]}});
        let c = parse(
            &json!({"type": "host-local", "subnet": "10.1.0.0/16"}),
            "n",
            &Requests { runtime_config: Some(&rc), args: Some(&args), cni_args_ip: Some("10.1.0.9") },
        )
        .unwrap();
        assert_eq!(c.requested.iter().map(|i| i.to_string()).collect::<Vec<_>>(), ["10.1.0.9", "10.1.0.8", "10.1.0.7"]);
        assert_eq!(c.range_sets[0][0].subnet.to_string(), "10.2.0.0/24");
    }

    #[test]
    fn rejects_invalid_configurations_with_code_7() {
        for bad in [
            json!({"type": "host-local"}),
            json!({"type": "host-local", "ranges": [[]]}),
            json!({"type": "host-local", "subnet": "10.0.0.0/31"}),
            json!({"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}),
            json!({"type": "host-local", "subnet": "10.0.0.0/24", "routes": [{"gw": "10.0.0.1"}]}),
        ] {
            let e = parse(&bad, "n", &Requests::default()).unwrap_err();
            assert_eq!(e.code, code::INVALID_NETWORK_CONFIG, "{bad}: {e:?}");
        }
        let e = parse(&json!({"type": "host-local", "subnet": "nope"}), "n", &Requests::default()).unwrap_err();
        assert_eq!(e.code, code::DECODING_FAILURE);
    }
}
