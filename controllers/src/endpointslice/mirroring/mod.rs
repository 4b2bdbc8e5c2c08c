//! The EndpointSlice mirroring controller (upstream pkg/controller/endpointslicemirroring): a Service
//! without a selector keeps the Endpoints its user writes; this controller mirrors them into EndpointSlices
//! (labelled `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`) so that
//! slice consumers see them too. Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (the
//! API server's own `default/kubernetes`) and old leader-election records are not mirrored.

pub mod desired;

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;

use super::controller::EndpointSliceError;
use super::initial::{resync_every, InitialSync};
use super::slices::{delete_slices, managed_services, managed_slices, services_for_slice_change, write_slices};
use super::tracker::EndpointSliceTracker;
use super::util::{is_leader_record, service_selector, LABEL_SKIP_MIRROR};
use crate::context::Context;
use crate::runtime::{enqueue_changes, run_workers, Action, Change, EventRecorder, ObjectKey, Reconciler, WorkQueue};
pub use desired::MANAGED_BY;

/// Upstream's name for this controller (events, metrics, logs).
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller";

/// Why an Endpoints object could not be mirrored (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum MirroringError {
    #[error("mirroring Endpoints {key}: {source}")]
    Slices {
        key: ObjectKey,
        #[source]
        source: EndpointSliceError,
    },
    #[error("mirrored EndpointSlices of Endpoints {key}: informer cache is out of date")]
    Stale { key: ObjectKey },
}

/// Whether an Endpoints object is mirrored at all.
pub fn should_mirror(ep: &Endpoints) -> bool {
    let skip = ep.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SKIP_MIRROR)).is_some_and(|v| v == "true");
    !skip && !is_leader_record(ep)
}

struct MirroringController {
    ctx: Context,
    recorder: EventRecorder,
    tracker: Arc<EndpointSliceTracker>,
    initial: InitialSync,
}

impl MirroringController {
    async fn sync(&self, key: &ObjectKey) -> Result<Action, MirroringError> {
        let informers = &self.ctx.informers;
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let slices_failed = |source| MirroringError::Slices { key: key.clone(), source };
        let existing = managed_slices(&informers.endpoint_slices.store(), &key.namespace, &key.name, MANAGED_BY);
        let svc = informers.services.store().get(key);
        let endpoints = informers.endpoints.store().get(key);
        let mirror = match (svc.as_deref(), endpoints.as_deref()) {
            (Some(svc), Some(ep)) if service_selector(svc).is_none() && should_mirror(ep) => Some((svc, ep)),
            _ => None,
        };
        let Some((svc, ep)) = mirror else {
            if svc.is_none() {
                self.tracker.delete_service(key);
            }
            delete_slices(&api, &self.tracker, key, &existing).await.map_err(slices_failed)?;
            return Ok(Action::Done);
        };
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        if self.tracker.stale_slices(key, &uid, &existing) {
            return Err(MirroringError::Stale { key: key.clone() });
        }
        let max = usize::from(self.ctx.config.mirroring_max_endpoints_per_subset);
        let plan = desired::plan(ep, &existing, max);
        if plan.writes.is_empty() {
            return Ok(Action::Done);
        }
        if plan.invalid_addresses > 0 {
            self.recorder.warning(
                ep,
                "InvalidIPAddress",
                "MirrorEndpoints",
                format!("Skipped {} invalid IP addresses when mirroring to EndpointSlices", plan.invalid_addresses),
            );
        }
        if plan.over_capacity > 0 {
            self.recorder.warning(
                ep,
                "TooManyAddressesToMirror",
                "MirrorEndpoints",
                format!(
                    "A max of {max} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                    plan.over_capacity
                ),
            );
        }
        write_slices(&api, &self.tracker, key, plan.writes).await.map_err(slices_failed)?;
        Ok(Action::Done)
    }
}

impl Reconciler for MirroringController {
    type Key = ObjectKey;
    type Error = MirroringError;

    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, MirroringError> {
        self.initial.track(key, self.sync(key).await)
    }
}

/// The Endpoints keys to reconcile after a change: every deletion, and adds and updates of objects that
/// are (or were) mirrored.
fn mirrored(change: &Change<Endpoints>) -> Vec<ObjectKey> {
    let wanted = match change.new.as_deref() {
        None => true,
        Some(new) => should_mirror(new) || change.old.as_deref().is_some_and(should_mirror),
    };
    if wanted {
        change.key().into_iter().collect()
    } else {
        Vec::new()
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), MirroringError> {
    let started = Instant::now();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let informers = ctx.informers.clone();
    tokio::spawn(enqueue_changes(informers.services.subscribe(), queue.clone(), |c| c.key().into_iter().collect()));
    tokio::spawn(enqueue_changes(informers.endpoints.subscribe(), queue.clone(), mirrored));
    let t = tracker.clone();
    tokio::spawn(enqueue_changes(informers.endpoint_slices.subscribe(), queue.clone(), move |c| {
        services_for_slice_change(c, &t, MANAGED_BY)
    }));
    informers.services.wait_synced().await;
    informers.endpoints.wait_synced().await;
    informers.endpoint_slices.wait_synced().await;

    let controller = Arc::new(MirroringController {
        recorder: ctx.recorder(CONTROLLER_NAME),
        tracker,
        initial: InitialSync::new(CONTROLLER_NAME, ctx.metrics.clone()),
        ctx: ctx.clone(),
    });
    // Every Endpoints object, and the Services of mirrored slices whose Endpoints went away while this
    // controller was down.
    let endpoints = informers.endpoints.store();
    let orphans = managed_services(&informers.endpoint_slices.store(), MANAGED_BY);
    controller.initial.enqueue(endpoints.keys().into_iter().chain(orphans), &queue, started);
    resync_every(endpoints, queue.clone(), ctx.config.resync_period);
    run_workers(controller, queue, ctx.config.mirroring_concurrent_service_endpoint_syncs, ctx.metrics.clone()).await;
    Ok(())
}
