//! The EndpointSlice controller (Services with a selector) and the EndpointSlice mirroring controller
//! (Services without one), as upstream pkg/controller/endpointslice{,mirroring}, plus what they share with
//! the endpoints controller (pod membership, readiness, trigger times).
//!
//! - [`util`], [`pod_endpoint`], [`membership`], [`trigger_time`], [`initial`]: shared pod and Service logic
//!   and the initial pass.
//! - [`render`], [`reconcile`]: the pure slice plan; [`controller`]: watching, queueing and writing it;
//!   [`slices`]: a controller's own slices in the cache and their writes; [`tracker`]: those writes, to
//!   spot a lagging cache.
//! - [`mirroring`]: user-written Endpoints mirrored into slices.

pub mod controller;
pub mod initial;
pub mod membership;
pub mod mirroring;
pub mod pod_endpoint;
pub mod reconcile;
pub mod render;
pub mod slices;
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

/// Runs the EndpointSlice controller when `endpointslice` is enabled and the mirroring controller when
/// `endpointslicemirroring` is, until the process ends (never returns if neither is).
pub async fn run(ctx: Context) -> Result<(), Error> {
    let slices = ctx.config.enabled("endpointslice");
    let mirroring = ctx.config.enabled("endpointslicemirroring");
    let run_slices = async {
        match slices {
            true => controller::run(ctx.clone()).await,
            false => std::future::pending().await,
        }
    };
    let run_mirroring = async {
        match mirroring {
            true => mirroring::run(ctx.clone()).await,
            false => std::future::pending().await,
        }
    };
    tokio::select! {
        r = run_slices => r?,
        r = run_mirroring => r?,
    }
    Ok(())
}
