//! The EndpointSlice controller (Services with a selector) and the EndpointSlice mirroring controller (Services without one), as upstream pkg/controller/endpointslice{,mirroring}.

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("endpointslice"))
}
