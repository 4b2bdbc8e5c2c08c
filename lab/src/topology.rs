//! Wiring network namespaces together with `ip`: an underlay — a bridge living in its own namespace — and
//! hosts (namespaces) plugged into it with a veth each, like machines on one switch. The root namespace can be
//! plugged in too (one veth, one address). Used by `knet-lab up` and by tests that build their own nodes.

use ipnet::Ipv4Net;

use crate::netns::{run_ip, Netns, NetnsError};

/// An underlay switch: a bridge in namespace `ns`.
#[derive(Debug, Clone)]
pub struct Underlay {
    pub ns: Netns,
    pub bridge: String,
}

impl Underlay {
    /// Creates the namespace and an up bridge in it.
    pub fn create(ns_name: &str, bridge: &str) -> Result<Underlay, NetnsError> {
        let ns = Netns::create(ns_name)?;
        let underlay = Underlay { ns, bridge: bridge.to_string() };
        underlay.ns.ip(&["link", "add", bridge, "type", "bridge"])?;
        underlay.ns.ip(&["link", "set", bridge, "up"])?;
        Ok(underlay)
    }

    /// Plugs `host` in: a veth whose end `port` is on the bridge and whose other end is `host_if` in `host`, up,
    /// with `address` (address/prefix) and MTU `mtu`.
    pub fn attach(
        &self,
        host: &Netns,
        host_if: &str,
        port: &str,
        address: Ipv4Net,
        mtu: u32,
    ) -> Result<(), NetnsError> {
        self.plug(Some(host), host_if, port, address, mtu)
    }

    /// Plugs the machine's own (root) namespace in: `root_if` there with `address`; its connected route is the
    /// only route this adds to the root namespace.
    pub fn attach_root(&self, root_if: &str, port: &str, address: Ipv4Net, mtu: u32) -> Result<(), NetnsError> {
        self.plug(None, root_if, port, address, mtu)
    }

    /// [`Underlay::attach`] of `host`, or of the root namespace when `host` is `None`.
    fn plug(
        &self,
        host: Option<&Netns>,
        host_if: &str,
        port: &str,
        address: Ipv4Net,
        mtu: u32,
    ) -> Result<(), NetnsError> {
        let mtu = mtu.to_string();
        let on_host = |args: &[&str]| match host {
            Some(ns) => ns.ip(args),
            None => run_ip(args),
        };
        match host {
            // Made on the underlay, the host's end moved into its namespace.
            Some(ns) => self.ns.ip(&veth(port, host_if, &mtu, ns.name()))?,
            // Made in the root namespace (which has no name to move an end into), the port moved to the underlay.
            None => run_ip(&veth(host_if, port, &mtu, self.ns.name()))?,
        };
        self.ns.ip(&["link", "set", port, "master", &self.bridge, "up"])?;
        on_host(&["addr", "add", &address.to_string(), "dev", host_if])?;
        on_host(&["link", "set", host_if, "up"])?;
        Ok(())
    }
}

/// `ip link add NAME … type veth peer name PEER … netns PEER_NS`, both ends with MTU `mtu`.
fn veth<'a>(name: &'a str, peer: &'a str, mtu: &'a str, peer_ns: &'a str) -> [&'a str; 14] {
    ["link", "add", name, "mtu", mtu, "type", "veth", "peer", "name", peer, "mtu", mtu, "netns", peer_ns]
}

/// Sets a sysctl inside `ns` (e.g. `net.ipv4.ip_forward`), writing /proc/sys from a process in the namespace.
pub fn sysctl(ns: &Netns, key: &str, value: &str) -> Result<(), NetnsError> {
    let command = format!("sysctl -w {key}={value} in {}", ns.name());
    let out = ns
        .command("sysctl")?
        .args(["-q", "-w", &format!("{key}={value}")])
        .output()
        .map_err(|source| NetnsError::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(NetnsError::Failed { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(())
}

/// A fake pod: namespace `pod` linked to `node` by a veth (`node_if` on the node with `gateway`, `eth0` in the
/// pod with `address`, default route via the gateway) — what a CNI plugin would make, without a bridge.
pub fn attach_pod(
    node: &Netns,
    pod: &Netns,
    node_if: &str,
    gateway: Ipv4Net,
    address: Ipv4Net,
) -> Result<(), NetnsError> {
    node.ip(&["link", "add", node_if, "type", "veth", "peer", "name", "eth0", "netns", pod.name()])?;
    node.ip(&["addr", "add", &gateway.to_string(), "dev", node_if])?;
    node.ip(&["link", "set", node_if, "up"])?;
    pod.ip(&["addr", "add", &address.to_string(), "dev", "eth0"])?;
    pod.ip(&["link", "set", "eth0", "up"])?;
    pod.ip(&["route", "add", "default", "via", &gateway.addr().to_string()])?;
    Ok(())
}
