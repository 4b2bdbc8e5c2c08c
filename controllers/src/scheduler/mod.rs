//! The scheduler: binds pending pods to Ready nodes (kube-scheduler).

pub mod algorithm;
pub mod cache;
pub mod filter;
pub mod resources;
pub mod score;

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("scheduler"))
}
