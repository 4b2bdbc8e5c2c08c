//! The namespace controller: deletes everything in a namespace being deleted, then finalizes it (upstream pkg/controller/namespace).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("namespace"))
}
