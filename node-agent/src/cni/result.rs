//! CNI results and errors as plugins print them, in every spec version: the addresses a pod got are read from
//! the final result of an ADD.

use std::net::IpAddr;

use serde_json::Value;

/// An error a plugin reported (`{"cniVersion","code","msg","details"}`), or what went wrong running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.details.is_empty() {
            write!(f, "{} (code {})", self.msg, self.code)
        } else {
            write!(f, "{}: {} (code {})", self.msg, self.details, self.code)
        }
    }
}

/// Reads a plugin's error from its stdout; `None` if stdout holds no error object.
pub fn parse_error(stdout: &[u8]) -> Option<PluginError> {
    let v: Value = serde_json::from_slice(stdout).ok()?;
    let code = v.get("code")?.as_u64()?;
    Some(PluginError {
        code: u32::try_from(code).unwrap_or(u32::MAX),
        msg: v.get("msg").and_then(Value::as_str).unwrap_or_default().to_string(),
        details: v.get("details").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

/// One address of a result: the IP and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultIp {
    pub ip: IpAddr,
    pub prefix: u8,
}

fn parse_cidr(s: &str) -> Option<ResultIp> {
    let (ip, prefix) = s.split_once('/')?;
    Some(ResultIp { ip: ip.parse().ok()?, prefix: prefix.parse().ok()? })
}

/// The addresses a result gives the interface `ifname` in the sandbox, IPv4 first (the order kubelet reports
/// `podIPs` in when IPv4 is the primary family). Addresses not tied to an interface count as the sandbox's.
pub fn sandbox_ips(result: &Value, ifname: &str) -> Vec<ResultIp> {
    let mut out = Vec::new();
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        let interfaces = result.get("interfaces").and_then(Value::as_array);
        for ip in ips {
            let on_ifname = match (ip.get("interface").and_then(Value::as_u64), interfaces) {
                (Some(i), Some(list)) => list.get(i as usize).is_some_and(|iface| {
                    iface.get("name").and_then(Value::as_str) == Some(ifname)
                        && iface.get("sandbox").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
                }),
                _ => true,
            };
            if !on_ifname {
                continue;
            }
            if let Some(parsed) = ip.get("address").and_then(Value::as_str).and_then(parse_cidr) {
                out.push(parsed);
            }
        }
    } else {
        // Spec 0.1.0/0.2.0: ip4 / ip6 objects.
        for key in ["ip4", "ip6"] {
            if let Some(parsed) = result.get(key).and_then(|o| o.get("ip")).and_then(Value::as_str).and_then(parse_cidr)
            {
                out.push(parsed);
            }
        }
    }
    out.sort_by_key(|r| r.ip.is_ipv6());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_sandbox_addresses_of_a_1_0_result() {
        let r = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/netns/x"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 2},
                {"address": "10.244.1.1/24", "interface": 0}
            ]
        });
        let ips = sandbox_ips(&r, "eth0");
        let shown: Vec<String> = ips.iter().map(|r| format!("{}/{}", r.ip, r.prefix)).collect();
        assert_eq!(shown, ["10.244.1.5/24", "fd00::5/64"]);
        assert!(sandbox_ips(&r, "eth1").is_empty());
    }

    #[test]
    fn reads_old_results_and_results_without_interfaces() {
        let old = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.7/16"}});
        assert_eq!(sandbox_ips(&old, "eth0")[0].ip.to_string(), "10.1.0.7");
        let bare = json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.2.0.3/24"}]});
        assert_eq!(sandbox_ips(&bare, "eth0")[0].prefix, 24);
    }

    #[test]
    fn reads_plugin_errors() {
        let e = parse_error(br#"{"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no bridge"}"#);
        assert_eq!(e.clone().unwrap().code, 7);
        assert_eq!(e.unwrap().to_string(), "invalid config: no bridge (code 7)");
        assert!(parse_error(br#"{"cniVersion":"1.0.0","ips":[]}"#).is_none());
        assert!(parse_error(b"garbage").is_none());
    }
}
