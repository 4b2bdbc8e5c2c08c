//! The network configuration the agent writes when the config dir has none: one bridge network for the node's
//! podCIDR(s), named by `--cni-plugin` (knet-cni, or the reference bridge + host-local), the way kubenet and
//! flannel write theirs.

use std::path::Path;

use ipnet::IpNet;
use serde_json::json;

use super::config::CniPlugin;

/// The file the agent owns in the config dir.
pub const FILE_NAME: &str = "10-knet.conflist";
/// The network's name (also the host-local dataDir subdirectory).
pub const NETWORK_NAME: &str = "knet";
/// The node's pod bridge.
pub const BRIDGE: &str = "cni0";

/// The conflist for `pod_cidrs` (one range set per family) with `mtu`, IPAM state under `data_dir`.
pub fn render(plugin: CniPlugin, pod_cidrs: &[IpNet], mtu: u32, data_dir: &Path) -> String {
    // knet-cni speaks spec 1.1.0 (GC, STATUS); Debian's reference plugins stop at 1.0.0.
    let version = match plugin {
        CniPlugin::KnetCni => "1.1.0",
        CniPlugin::Bridge => "1.0.0",
    };
    let ranges: Vec<_> = pod_cidrs.iter().map(|c| json!([{ "subnet": c.trunc().to_string() }])).collect();
    let conf = json!({
        "cniVersion": version,
        "name": NETWORK_NAME,
        "plugins": [{
            "type": plugin.plugin_type(),
            "bridge": BRIDGE,
            "isGateway": true,
            "isDefaultGateway": true,
            "hairpinMode": true,
            "mtu": mtu,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "dataDir": data_dir.display().to_string(),
            },
        }],
    });
    let mut text = serde_json::to_string_pretty(&conf).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bridge_conflist() {
        let cidrs: Vec<IpNet> = vec!["10.244.1.0/24".parse().unwrap()];
        let text = render(CniPlugin::Bridge, &cidrs, 1450, Path::new("/var/lib/knet/cni/networks"));
        let want = r#"{
  "cniVersion": "1.0.0",
  "name": "knet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "isDefaultGateway": true,
      "hairpinMode": true,
      "mtu": 1450,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [
            {
              "subnet": "10.244.1.0/24"
            }
          ]
        ],
        "dataDir": "/var/lib/knet/cni/networks"
      }
    }
  ]
}
"#;
        assert_eq!(text, want);
    }

    #[test]
    fn knet_cni_is_dual_stack_ready_and_speaks_1_1() {
        let cidrs: Vec<IpNet> = vec!["10.244.2.0/24".parse().unwrap(), "fd00:10:244:2::/64".parse().unwrap()];
        let v: serde_json::Value =
            serde_json::from_str(&render(CniPlugin::KnetCni, &cidrs, 1500, Path::new("/d"))).unwrap();
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["plugins"][0]["type"], "knet-cni");
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][1][0]["subnet"], "fd00:10:244:2::/64");
    }
}
