//! The scheduler: binds pending pods to Ready nodes (kube-scheduler).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("scheduler"))
}
