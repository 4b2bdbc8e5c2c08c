//! The network configuration on stdin, as the reference `bridge` plugin reads it: parsed, defaulted and
//! validated. Fields knet-cni does not implement are refused with code 2 and the reason, never ignored.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{valid_name, validate_ifname, CniArgs};
use crate::error::{code, CniError};
use crate::ipam::config::{self as ipam_config, Requests};
use crate::ipam::Ipam;
use crate::result::{CniResult, Dns};
use crate::version;

/// The bridge name when the configuration names none.
pub const DEFAULT_BRIDGE: &str = "cni0";

/// A still-valid attachment listed in a GC request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// A validated bridge network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub bridge: String,
    /// Give the bridge the gateway address (implied by `is_default_gateway`).
    pub is_gateway: bool,
    /// Also route the container's default route through the gateway.
    pub is_default_gateway: bool,
    /// Replace a different address already on the bridge instead of failing.
    pub force_address: bool,
    /// MTU of the bridge (when created) and both veth ends; `None`: the kernel's default.
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    /// Run IPv6 duplicate address detection on the container's addresses (off: addresses are usable at once).
    pub enable_dad: bool,
    pub port_isolation: bool,
    /// Leave the container interface down (layer-2 only, no IPAM).
    pub disable_container_interface: bool,
    /// The container interface's hardware address, when the runtime asks for one.
    pub mac: Option<[u8; 6]>,
    pub ipam: Ipam,
    /// `dns` of the configuration; when set it replaces what IPAM returned.
    pub dns: Option<Dns>,
    pub prev_result: Option<CniResult>,
    pub valid_attachments: Vec<Attachment>,
    /// Keys knet-cni does not know; logged, passed over like the reference plugins do.
    pub unknown_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    name: String,
    bridge: Option<String>,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    force_address: bool,
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    hairpin_mode: bool,
    #[serde(default)]
    promisc_mode: bool,
    #[serde(default)]
    vlan: i64,
    vlan_trunk: Option<Value>,
    #[serde(default)]
    preserve_default_vlan: bool,
    #[serde(default)]
    macspoofchk: bool,
    #[serde(default)]
    enabledad: bool,
    #[serde(default)]
    disable_container_interface: bool,
    #[serde(default)]
    port_isolation: BoolOrString,
    ipam: Option<Value>,
    dns: Option<Dns>,
    args: Option<Value>,
    runtime_config: Option<Value>,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `portIsolation` appears both as a boolean and as the string `"true"` in the reference docs.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum BoolOrString {
    #[default]
    Unset,
    Bool(bool),
    Str(String),
}

/// Keys of the protocol or of other plugins' configurations that a bridge plugin may see and need not use.
const PASSED_OVER: &[&str] = &["type", "capabilities", "cniVersions", "disableCheck", "disableGC", "ipMasqBackend"];

fn unsupported(key: &str, value: &Value, why: &str) -> CniError {
    CniError::with_details(code::UNSUPPORTED_FIELD, format!("unsupported field {key}: {value}"), why)
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_NETWORK_CONFIG, msg)
}

/// Reads the version of a request without validating the rest (for error results and VERSION).
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(stdin).ok()?.get("cniVersion")?.as_str().map(str::to_string)
}

/// Parses and validates the configuration of one request.
pub fn parse(stdin: &[u8], cni_args: &CniArgs) -> Result<NetConf, CniError> {
    let value: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::with_details(code::DECODING_FAILURE, "error unmarshalling network config", e.to_string())
    })?;
    if !value.is_object() {
        return Err(CniError::new(code::DECODING_FAILURE, "network config is not a JSON object"));
    }
    let raw: Raw = serde_json::from_value(value).map_err(|e| {
        CniError::with_details(code::DECODING_FAILURE, "error unmarshalling network config", e.to_string())
    })?;
    if raw.name.is_empty() {
        return Err(invalid("missing network name"));
    }
    if !valid_name(&raw.name) {
        return Err(CniError::with_details(
            code::INVALID_NETWORK_CONFIG,
            "invalid characters found in network name",
            raw.name,
        ));
    }
    version::check_supported(&raw.cni_version)?;

    if raw.ip_masq {
        return Err(unsupported(
            "ipMasq",
            &Value::Bool(true),
            "knet-cni does not masquerade pod traffic: knet's node agent does egress SNAT; set ipMasq to false",
        ));
    }
    if raw.vlan < 0 || raw.vlan > 4094 {
        return Err(invalid(format!("invalid VLAN ID {} (must be between 0 and 4094)", raw.vlan)));
    }
    if raw.vlan != 0 {
        return Err(unsupported(
            "vlan",
            &Value::from(raw.vlan),
            "knet-cni attaches pods untagged; bridge VLAN filtering is not implemented",
        ));
    }
    if let Some(t) = raw.vlan_trunk.as_ref().filter(|t| !t.is_null()) {
        return Err(unsupported(
            "vlanTrunk",
            t,
            "knet-cni attaches pods untagged; bridge VLAN trunks are not implemented",
        ));
    }
    if raw.preserve_default_vlan {
        return Err(unsupported("preserveDefaultVlan", &Value::Bool(true), "knet-cni does not implement VLANs"));
    }
    if raw.macspoofchk {
        return Err(unsupported(
            "macspoofchk",
            &Value::Bool(true),
            "knet-cni installs no per-port MAC filters; NetworkPolicy is enforced by knet's node agent",
        ));
    }
    let port_isolation = match raw.port_isolation {
        BoolOrString::Unset => false,
        BoolOrString::Bool(b) => b,
        BoolOrString::Str(s) => match s.as_str() {
            "true" => true,
            "false" | "" => false,
            _ => return Err(invalid(format!("portIsolation: {s:?} is not a boolean"))),
        },
    };
    if raw.hairpin_mode && raw.promisc_mode {
        return Err(invalid("cannot set hairpin mode and promiscuous mode at the same time"));
    }
    let mtu = match raw.mtu {
        0 => None,
        m @ 68..=65535 => Some(m as u32),
        m => return Err(invalid(format!("mtu {m} is out of range (68-65535)"))),
    };
    let bridge = raw.bridge.filter(|b| !b.is_empty()).unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    validate_ifname(&bridge, "bridge").map_err(|e| invalid(format!("{}: {}", e.msg, e.details)))?;

    let ipam_value = raw.ipam.unwrap_or(Value::Object(Map::new()));
    let ipam_type = match ipam_value.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(invalid(format!("ipam.type must be a string, not {other}"))),
    };
    if ipam_type.contains('/') || ipam_type.contains('\\') {
        return Err(invalid(format!("ipam.type {ipam_type:?} must not contain path separators")));
    }
    let ipam = match ipam_type {
        "" => Ipam::None,
        "host-local" => Ipam::HostLocal(ipam_config::parse(
            &ipam_value,
            &raw.name,
            &Requests {
                runtime_config: raw.runtime_config.as_ref(),
                args: raw.args.as_ref(),
                cni_args_ip: cni_args.ip.as_deref(),
            },
        )?),
        other => Ipam::Delegate(other.to_string()),
    };
    if raw.disable_container_interface && ipam != Ipam::None {
        return Err(invalid("cannot use IPAM when DisableContainerInterface flag is set"));
    }

    let mut mac = None;
    let arg_mac = raw.args.as_ref().and_then(|a| a.pointer("/cni/mac")).and_then(Value::as_str);
    let rc_mac = raw.runtime_config.as_ref().and_then(|r| r.get("mac")).and_then(Value::as_str);
    for m in [cni_args.mac.as_deref(), arg_mac, rc_mac].into_iter().flatten().filter(|m| !m.is_empty()) {
        mac = Some(parse_mac(m)?);
    }

    let prev_result = raw.prev_result.filter(|p| !p.is_null()).map(|p| CniResult::from_value(&p)).transpose()?;
    let unknown_keys = raw.extra.keys().filter(|k| !PASSED_OVER.contains(&k.as_str())).cloned().collect();

    Ok(NetConf {
        cni_version: raw.cni_version,
        name: raw.name,
        bridge,
        is_gateway: raw.is_gateway || raw.is_default_gateway,
        is_default_gateway: raw.is_default_gateway,
        force_address: raw.force_address,
        mtu,
        hairpin_mode: raw.hairpin_mode,
        promisc_mode: raw.promisc_mode,
        enable_dad: raw.enabledad,
        port_isolation,
        disable_container_interface: raw.disable_container_interface,
        mac,
        ipam,
        dns: raw.dns.filter(|d| !d.is_empty()),
        prev_result,
        valid_attachments: raw.valid_attachments.unwrap_or_default(),
        unknown_keys,
    })
}

/// Parses `aa:bb:cc:dd:ee:ff`; multicast addresses are refused (an interface cannot have one).
pub fn parse_mac(s: &str) -> Result<[u8; 6], CniError> {
    let bad = || invalid(format!("invalid MAC address {s:?}"));
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(invalid(format!("MAC address {s} is a multicast address")));
    }
    Ok(mac)
}

/// Renders a hardware address as lower-case `aa:bb:…`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(v: Value) -> Result<NetConf, CniError> {
        parse(v.to_string().as_bytes(), &CniArgs::default())
    }

    fn base() -> Value {
        json!({"cniVersion": "1.1.0", "name": "pods", "type": "knet-cni",
               "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    #[test]
    fn reads_the_reference_bridge_fields() {
        let mut v = base();
        for (k, val) in [
            ("bridge", json!("knet0")),
            ("isDefaultGateway", json!(true)),
            ("mtu", json!(1450)),
            ("hairpinMode", json!(true)),
            ("enabledad", json!(true)),
            ("portIsolation", json!("true")),
            ("forceAddress", json!(true)),
            ("ipMasq", json!(false)),
            ("vlan", json!(0)),
        ] {
            v[k] = val;
        }
        let c = conf(v).unwrap();
        assert_eq!(c.bridge, "knet0");
        assert!(c.is_gateway && c.is_default_gateway && c.force_address && c.hairpin_mode && c.enable_dad);
        assert!(c.port_isolation);
        assert_eq!(c.mtu, Some(1450));
        assert!(matches!(c.ipam, Ipam::HostLocal(_)));
        let d = conf(base()).unwrap();
        assert_eq!(d.bridge, DEFAULT_BRIDGE);
        assert!(!d.is_gateway && d.mtu.is_none() && d.unknown_keys.is_empty());
    }

    #[test]
    fn refuses_what_it_does_not_implement_with_code_2() {
        for (k, v, word) in [
            ("ipMasq", json!(true), "egress SNAT"),
            ("vlan", json!(100), "VLAN"),
            ("vlanTrunk", json!([{"id": 101}]), "trunk"),
            ("macspoofchk", json!(true), "MAC"),
        ] {
            let e = conf(with(k, v.clone())).unwrap_err();
            assert_eq!(e.code, code::UNSUPPORTED_FIELD, "{k}");
            assert!(e.msg.contains(k) && e.msg.contains(&v.to_string()), "{e:?}");
            assert!(e.details.contains(word), "{e:?}");
        }
    }

    #[test]
    fn validates_with_code_7_and_decodes_with_code_6() {
        let mut v = with("hairpinMode", json!(true));
        v["promiscMode"] = json!(true);
        assert_eq!(conf(v).unwrap_err().code, code::INVALID_NETWORK_CONFIG);
        assert_eq!(conf(with("mtu", json!(20))).unwrap_err().code, code::INVALID_NETWORK_CONFIG);
        assert_eq!(conf(with("bridge", json!("a-very-long-bridge-name"))).unwrap_err().code, 7);
        assert_eq!(conf(with("name", json!(""))).unwrap_err().msg, "missing network name");
        assert_eq!(conf(with("name", json!("bad name"))).unwrap_err().code, 7);
        assert_eq!(conf(with("mtu", json!("big"))).unwrap_err().code, code::DECODING_FAILURE);
        assert_eq!(parse(b"{not json", &CniArgs::default()).unwrap_err().code, code::DECODING_FAILURE);
        assert_eq!(conf(with("cniVersion", json!("0.2.0"))).unwrap_err().code, code::INCOMPATIBLE_VERSION);
        let mut v = with("disableContainerInterface", json!(true));
        assert_eq!(conf(v.clone()).unwrap_err().code, 7);
        v["ipam"] = json!({});
        assert_eq!(conf(v).unwrap().ipam, Ipam::None);
    }

    #[test]
    fn picks_the_mac_and_other_ipam_types() {
        let mut v = with("args", json!({"cni": {"mac": "02:00:00:00:00:02"}}));
        v["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
        assert_eq!(conf(v).unwrap().mac, Some([2, 0, 0, 0, 0, 3]));
        assert!(parse_mac("03:00:00:00:00:01").is_err());
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert_eq!(format_mac(&[2, 0xab, 0, 0, 0, 1]), "02:ab:00:00:00:01");
        let c = conf(with("ipam", json!({"type": "dhcp"}))).unwrap();
        assert_eq!(c.ipam, Ipam::Delegate("dhcp".into()));
        assert_eq!(conf(with("ipam", json!({"type": "../x"}))).unwrap_err().code, 7);
    }

    #[test]
    fn reads_protocol_keys_and_remembers_unknown_ones() {
        let mut v = with("cni.dev/valid-attachments", json!([{"containerID": "a", "ifname": "eth0"}]));
        v["keyA"] = json!(["x"]);
        v["capabilities"] = json!({"mac": true});
        v["prevResult"] = json!({"cniVersion": "1.1.0", "ips": [{"address": "10.244.1.2/24", "interface": 2}]});
        let c = conf(v).unwrap();
        assert_eq!(c.valid_attachments, vec![Attachment { container_id: "a".into(), ifname: "eth0".into() }]);
        assert_eq!(c.unknown_keys, vec!["keyA".to_string()]);
        assert_eq!(c.prev_result.unwrap().ips.len(), 1);
    }

    proptest::proptest! {
        /// Whatever arrives on stdin, parsing answers Ok or a spec error, never a panic.
        #[test]
        fn never_panics_on_input(input in ".{0,200}", key in "[a-zA-Z]{1,12}", n in proptest::num::i64::ANY) {
            let _ = parse(input.as_bytes(), &CniArgs::default());
            let mut v = base();
            v[key.as_str()] = json!(n);
            if let Err(e) = conf(v) {
                proptest::prop_assert!([1, 2, 6, 7].contains(&e.code), "{:?}", e);
            }
        }
    }
}
