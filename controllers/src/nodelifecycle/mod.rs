//! Node lifecycle: Nodes whose Lease is not renewed become NotReady and their pods not ready (upstream pkg/controller/nodelifecycle).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("nodelifecycle"))
}
