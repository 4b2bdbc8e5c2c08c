//! The CNI success result (interfaces, ips, routes, dns): parsed from a `prevResult` or a delegated IPAM
//! plugin in any supported version, and rendered in the version the request asked for.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{code, CniError};
use crate::version::Version;

/// A network interface an attachment made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The container's netns path; empty for interfaces on the host.
    #[serde(default)]
    pub sandbox: String,
    #[serde(default)]
    pub socket_path: String,
    #[serde(default, rename = "pciID")]
    pub pci_id: String,
}

/// An address assigned to an interface (`interface` indexes `interfaces`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix length, e.g. `10.244.1.5/24`.
    pub address: IpNet,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub interface: Option<usize>,
}

/// A route in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Route {
    pub dst: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// The destination; a route without one is rejected when the configuration is read.
    pub fn destination(&self) -> IpNet {
        self.dst.unwrap_or_else(|| IpNet::V4(ipnet::Ipv4Net::default()))
    }
}

/// DNS settings handed to the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

/// A success result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

impl CniResult {
    /// Parses a result of any supported version (0.3.x/0.4.0 `ips[].version` is ignored).
    pub fn from_value(v: &Value) -> Result<CniResult, CniError> {
        let r: CniResult = serde_json::from_value(v.clone())
            .map_err(|e| CniError::with_details(code::DECODING_FAILURE, "decoding a CNI result", e.to_string()))?;
        if r.routes.iter().any(|r| r.dst.is_none()) {
            return Err(CniError::new(code::DECODING_FAILURE, "decoding a CNI result: a route has no dst"));
        }
        Ok(r)
    }

    /// Renders the result in spec version `version` (fields a version does not know are left out).
    pub fn to_json(&self, version: &str) -> Value {
        let v = Version::parse(version).unwrap_or(Version(1, 1, 0));
        let v1_1 = v >= Version(1, 1, 0);
        let pre_1 = v < Version(1, 0, 0);
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(version));
        if !self.interfaces.is_empty() {
            let ifs: Vec<Value> = self
                .interfaces
                .iter()
                .map(|i| {
                    let mut m = Map::new();
                    m.insert("name".into(), json!(i.name));
                    if !i.mac.is_empty() {
                        m.insert("mac".into(), json!(i.mac));
                    }
                    if v1_1 {
                        if let Some(mtu) = i.mtu {
                            m.insert("mtu".into(), json!(mtu));
                        }
                    }
                    if !i.sandbox.is_empty() {
                        m.insert("sandbox".into(), json!(i.sandbox));
                    }
                    if v1_1 && !i.socket_path.is_empty() {
                        m.insert("socketPath".into(), json!(i.socket_path));
                    }
                    if v1_1 && !i.pci_id.is_empty() {
                        m.insert("pciID".into(), json!(i.pci_id));
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert("interfaces".into(), Value::Array(ifs));
        }
        if !self.ips.is_empty() {
            let ips: Vec<Value> = self
                .ips
                .iter()
                .map(|ip| {
                    let mut m = Map::new();
                    if pre_1 {
                        m.insert("version".into(), json!(if ip.address.addr().is_ipv4() { "4" } else { "6" }));
                    }
                    if let Some(i) = ip.interface {
                        m.insert("interface".into(), json!(i));
                    }
                    m.insert("address".into(), json!(ip.address.to_string()));
                    if let Some(gw) = ip.gateway {
                        m.insert("gateway".into(), json!(gw.to_string()));
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert("ips".into(), Value::Array(ips));
        }
        if !self.routes.is_empty() {
            let routes: Vec<Value> = self
                .routes
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("dst".into(), json!(r.destination().to_string()));
                    if let Some(gw) = r.gw {
                        m.insert("gw".into(), json!(gw.to_string()));
                    }
                    if v1_1 {
                        for (k, val) in
                            [("mtu", r.mtu), ("advmss", r.advmss), ("priority", r.priority), ("table", r.table)]
                        {
                            if let Some(val) = val {
                                m.insert(k.into(), json!(val));
                            }
                        }
                        if let Some(s) = r.scope {
                            m.insert("scope".into(), json!(s));
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert("routes".into(), Value::Array(routes));
        }
        out.insert("dns".into(), serde_json::to_value(&self.dns).unwrap_or_else(|_| json!({})));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            cni_version: "1.1.0".into(),
            interfaces: vec![
                Interface { name: "cni0".into(), mac: "02:00:00:00:00:01".into(), ..Default::default() },
                Interface {
                    name: "eth0".into(),
                    mac: "02:00:00:00:00:02".into(),
                    mtu: Some(1450),
                    sandbox: "/run/netns/a".into(),
                    ..Default::default()
                },
            ],
            ips: vec![IpConfig {
                address: "10.1.0.5/16".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(1),
            }],
            routes: vec![Route { dst: Some("0.0.0.0/0".parse().unwrap()), priority: Some(10), ..Default::default() }],
            dns: Dns { nameservers: vec!["10.96.0.10".into()], ..Default::default() },
        }
    }

    #[test]
    fn renders_1_1_0_with_its_new_fields() {
        let v = sample().to_json("1.1.0");
        assert_eq!(
            v,
            json!({
                "cniVersion": "1.1.0",
                "interfaces": [{"name": "cni0", "mac": "02:00:00:00:00:01"},
                               {"name": "eth0", "mac": "02:00:00:00:00:02", "mtu": 1450, "sandbox": "/run/netns/a"}],
                "ips": [{"interface": 1, "address": "10.1.0.5/16", "gateway": "10.1.0.1"}],
                "routes": [{"dst": "0.0.0.0/0", "priority": 10}],
                "dns": {"nameservers": ["10.96.0.10"]}
            })
        );
    }

    #[test]
    fn renders_older_versions_without_newer_fields() {
        let v = sample().to_json("1.0.0");
        assert_eq!(v["interfaces"][1].get("mtu"), None);
        assert_eq!(v["routes"][0], json!({"dst": "0.0.0.0/0"}));
        assert_eq!(v["ips"][0].get("version"), None);
        let v = sample().to_json("0.4.0");
        assert_eq!(v["ips"][0]["version"], json!("4"));
    }

    #[test]
    fn parses_what_it_renders_and_older_results() {
        for ver in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            let back = CniResult::from_value(&sample().to_json(ver)).unwrap();
            assert_eq!(back.ips, sample().ips, "{ver}");
            assert_eq!(back.interfaces.len(), 2);
        }
        let ipam_only = json!({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "fd00::2/64"}], "dns": {}});
        let r = CniResult::from_value(&ipam_only).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "fd00::2/64");
        assert!(CniResult::from_value(&json!({"ips": [{"address": "nope"}]})).is_err());
        assert!(CniResult::from_value(&json!({"routes": [{"gw": "10.0.0.1"}]})).is_err());
    }
}
