//! The EndpointSlice controller (Services with a selector) and the EndpointSlice mirroring controller
//! (Services without one), as upstream pkg/controller/endpointslice{,mirroring}, plus what they share with
//! the endpoints controller (pod membership, readiness, trigger times).
//!
//! - [`util`], [`membership`], [`trigger_time`]: shared pod and Service logic.
//! - [`render`], [`reconcile`]: the pure slice plan; [`controller`]: watching, queueing and writing it;
//!   [`tracker`]: this controller's own writes, to spot a lagging cache.
//! - [`mirroring`]: user-written Endpoints mirrored into slices.

pub mod controller;
pub mod initial;
pub mod membership;
pub mod mirroring;
pub mod reconcile;
pub mod render;
pub mod tracker;
pub mod trigger_time;
pub mod util;

use crate::context::Context;
pub use controller::EndpointSliceError;
pub use mirroring::MirroringError;

/// Why the EndpointSlice controllers stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Slices(#[from] EndpointSliceError),
    #[error(transparent)]
    Mirroring(#[from] MirroringError),
}

/// Runs the EndpointSlice controller, and the mirroring controller when `endpointslicemirroring` is
/// enabled, until the process ends.
pub async fn run(ctx: Context) -> Result<(), Error> {
    if !ctx.config.enabled("endpointslicemirroring") {
        return Ok(controller::run(ctx).await?);
    }
    let slices = controller::run(ctx.clone());
    let mirroring = mirroring::run(ctx);
    tokio::select! {
        r = slices => r?,
        r = mirroring => r?,
    }
    Ok(())
}
