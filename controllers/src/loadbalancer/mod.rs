//! LoadBalancer IPAM: Services of type LoadBalancer get status.loadBalancer.ingress from a configured pool.

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("service-lb"))
}
