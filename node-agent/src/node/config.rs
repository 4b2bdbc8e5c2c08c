//! The `node` part's flags (kubelet's names).

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;

/// Parses `10s`, `500ms`, `1m`, `1h` (kubelet's duration flags).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Flags of the `node` part of the agent.
#[derive(Debug, Clone, Args)]
pub struct NodeFlags {
    /// The node's IP address(es), comma-separated, one per family (kubelet `--node-ip`); default: the first
    /// global IPv4 address of the host.
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,
    /// How many pods the node accepts (capacity `pods`).
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// How often the Node's status is posted.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,
    /// The node Lease's `leaseDurationSeconds`; it is renewed every quarter of it.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// Extra labels for the Node, `key=value`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
