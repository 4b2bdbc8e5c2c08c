//! The endpoints controller: keeps a core/v1 Endpoints object per Service with a selector (upstream pkg/controller/endpoint).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("endpoint"))
}
