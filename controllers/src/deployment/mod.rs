//! The Deployment controller: Deployments → ReplicaSets, rolling updates, status and conditions (upstream pkg/controller/deployment).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("deployment"))
}
