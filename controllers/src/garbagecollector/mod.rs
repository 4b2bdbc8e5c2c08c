//! The garbage collector: deletes objects whose owners are gone, and completes orphan and foreground deletion (upstream pkg/controller/garbagecollector).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("garbagecollector"))
}
