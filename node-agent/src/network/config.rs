//! The `network` part's flags: which backend carries pod traffic between nodes (flannel's `host-gw` or
//! `vxlan`), the VXLAN parameters, the underlay device and how often the kernel state is re-checked.

use std::time::Duration;

use clap::Args;

/// How pod CIDRs of other nodes are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// A route per remote node's podCIDR via its node IP (every node on one L2 segment).
    #[default]
    #[value(name = "host-gw")]
    HostGw,
    /// A VXLAN overlay (flannel's design: one `knet.<vni>` device, static FDB and neighbour entries).
    #[value(name = "vxlan")]
    Vxlan,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
        })
    }
}

/// Flags of the `network` part of the agent.
#[derive(Debug, Clone, Args)]
pub struct NetworkFlags {
    /// Cross-node pod routing backend: host-gw or vxlan.
    #[arg(long, value_enum, default_value = "host-gw")]
    pub backend: Backend,
    /// The VXLAN network identifier (the device is `knet.<VNI>`).
    #[arg(long, default_value_t = 1)]
    pub vxlan_vni: u32,
    /// The UDP port VXLAN packets are sent to (flannel's and Linux's default 8472).
    #[arg(long, default_value_t = 8472)]
    pub vxlan_port: u16,
    /// The underlay device pod traffic leaves through (default: the device holding the node's InternalIP).
    #[arg(long)]
    pub iface: Option<String>,
    /// How often routes, neighbour and FDB entries are re-checked and repaired (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_period)]
    pub network_resync_period: Duration,
}

impl Default for NetworkFlags {
    fn default() -> Self {
        NetworkFlags {
            backend: Backend::HostGw,
            vxlan_vni: 1,
            vxlan_port: 8472,
            iface: None,
            network_resync_period: Duration::from_secs(10),
        }
    }
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid period {text:?} (want e.g. 500ms, 10s, 2m)");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let period = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(bad()),
    };
    if period.is_zero() {
        return Err(bad());
    }
    Ok(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_period("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_period("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_period("3"), Ok(Duration::from_secs(3)));
        assert!(parse_period("0s").is_err());
        assert!(parse_period("1h").is_err());
        assert!(parse_period("").is_err());
    }
}
