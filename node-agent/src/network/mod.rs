//! Cross-node pod routing: every node's podCIDR reachable from every other node, without NAT, through host-gw
//! routes (default) or a VXLAN overlay.

pub mod config;

/// Why cross-node routing stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cross-node routing is not built yet")]
    NotBuilt,
}

/// Keeps routes to every other node's podCIDR (and this node's overlay device, with VXLAN) in place until the
/// process ends. `node_name` is this node.
pub async fn run(_client: kube::Client, _node_name: String, _flags: config::NetworkFlags) -> Result<(), NetworkError> {
    Err(NetworkError::NotBuilt)
}
