//! Node IPAM: gives each Node a spec.podCIDR from the cluster CIDR (upstream pkg/controller/nodeipam).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("nodeipam"))
}
