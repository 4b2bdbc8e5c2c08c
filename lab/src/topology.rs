//! Wiring network namespaces together with `ip`: an underlay — a bridge living in its own namespace — and
//! hosts (namespaces) plugged into it with a veth each, like machines on one switch. The root namespace can be
//! plugged in too (one veth, one address). Used by `knet-lab up` and by tests that build their own nodes.

use ipnet::Ipv4Net;

use crate::netns::{Netns, NetnsError};

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
        let mtu = mtu.to_string();
        self.ns.ip(&[
            "link",
            "add",
            port,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            host_if,
            "mtu",
            &mtu,
            "netns",
            host.name(),
        ])?;
        self.ns.ip(&["link", "set", port, "master", &self.bridge, "up"])?;
        host.ip(&["addr", "add", &address.to_string(), "dev", host_if])?;
        host.ip(&["link", "set", host_if, "up"])?;
        Ok(())
    }

    /// Plugs the machine's own (root) namespace in: `root_if` there with `address`; its connected route is the
    /// only route this adds to the root namespace.
    pub fn attach_root(&self, root_if: &str, port: &str, address: Ipv4Net, mtu: u32) -> Result<(), NetnsError> {
        let mtu = mtu.to_string();
        crate::netns::run_ip(&[
            "link",
            "add",
            root_if,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "mtu",
            &mtu,
            "netns",
            self.ns.name(),
        ])?;
        self.ns.ip(&["link", "set", port, "master", &self.bridge, "up"])?;
        crate::netns::run_ip(&["addr", "add", &address.to_string(), "dev", root_if])?;
        crate::netns::run_ip(&["link", "set", root_if, "up"])?;
        Ok(())
    }
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
