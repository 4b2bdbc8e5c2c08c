//! The EndpointSlice controller (upstream pkg/controller/endpointslice): keeps the EndpointSlices of every
//! Service with a selector. The plan comes from [`super::reconcile`] (pure); this module watches, queues
//! and writes it, tracking its own writes so that a lagging cache is never reconciled from.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use knet_apimachinery::labels::Selector;
use kube::api::Api;

use super::initial::{resync_every, InitialSync};
use super::membership::ServiceMembership;
use super::reconcile::{plan, Input};
use super::slices::{delete_slices, managed_services, managed_slices, services_for_slice_change, write_slices};
use super::tracker::EndpointSliceTracker;
use super::trigger_time::TriggerTimeTracker;
use super::util::{is_external_name, service_selector};
use crate::context::Context;
use crate::runtime::{enqueue_changes, run_workers, Action, EventRecorder, ObjectKey, Reconciler, WorkQueue};

/// Upstream's name for this controller (events, metrics, logs).
pub const CONTROLLER_NAME: &str = "endpointslice-controller";
/// The `endpointslice.kubernetes.io/managed-by` value of the slices it manages.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// Why a Service's EndpointSlices could not be reconciled (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum EndpointSliceError {
    #[error("creating an EndpointSlice for Service {key}: {source}")]
    Create { key: ObjectKey, source: kube::Error },
    #[error("updating EndpointSlice {name} of Service {key}: {source}")]
    Update { key: ObjectKey, name: String, source: kube::Error },
    #[error("deleting EndpointSlice {name} of Service {key}: {source}")]
    Delete { key: ObjectKey, name: String, source: kube::Error },
    #[error("EndpointSlices of Service {key}: informer cache is out of date")]
    Stale { key: ObjectKey },
    #[error("Service {key}: skipping pods {pods} whose Node is not known yet")]
    NodeNotFound { key: ObjectKey, pods: String },
}

struct SliceController {
    ctx: Context,
    recorder: EventRecorder,
    tracker: Arc<EndpointSliceTracker>,
    triggers: TriggerTimeTracker,
    initial: InitialSync,
}

impl SliceController {
    async fn sync(&self, key: &ObjectKey) -> Result<Action, EndpointSliceError> {
        let informers = &self.ctx.informers;
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let slice_store = informers.endpoint_slices.store();
        let existing = managed_slices(&slice_store, &key.namespace, &key.name, MANAGED_BY);
        let svc = informers.services.store().get(key);
        let selector = svc.as_deref().filter(|s| !is_external_name(s)).and_then(service_selector);
        let (Some(svc), Some(selector)) = (svc.as_deref(), selector) else {
            // No Service, or one that gets no endpoints from this controller: its slices go (the garbage
            // collector would also remove those of a deleted Service; this does not depend on it).
            if svc.is_none() {
                self.triggers.delete_service(key);
                self.tracker.delete_service(key);
            }
            delete_slices(&api, &self.tracker, key, &existing).await?;
            return Ok(Action::Done);
        };
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        if self.tracker.stale_slices(key, &uid, &existing) {
            return Err(EndpointSliceError::Stale { key: key.clone() });
        }
        let pods = informers.pods.store().select(&key.namespace, &Selector::from_set(selector));
        let trigger_time = self.triggers.compute(key, svc, &pods);
        let nodes = informers.nodes.store();
        let node = |name: &str| nodes.get_named("", name);
        let plan = plan(&Input {
            service: svc,
            pods: &pods,
            existing: &existing,
            max_endpoints: usize::from(self.ctx.config.max_endpoints_per_slice),
            managed_by: MANAGED_BY,
            node: &node,
            trigger_time,
        });
        let mut result = write_slices(&api, &self.tracker, key, plan.writes).await.map(|()| Action::Done);
        if result.is_ok() && !plan.pods_without_node.is_empty() {
            let pods = plan.pods_without_node.join(", ");
            result = Err(EndpointSliceError::NodeNotFound { key: key.clone(), pods });
        }
        if let Err(e) = &result {
            if !matches!(e, EndpointSliceError::Stale { .. }) {
                self.recorder.warning(
                    svc,
                    "FailedToUpdateEndpointSlices",
                    "UpdateEndpointSlices",
                    format!("Error updating Endpoint Slices for Service {}/{}: {e}", key.namespace, key.name),
                );
            }
        }
        result
    }
}

impl Reconciler for SliceController {
    type Key = ObjectKey;
    type Error = EndpointSliceError;

    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, EndpointSliceError> {
        self.initial.track(key, self.sync(key).await)
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), EndpointSliceError> {
    let started = Instant::now();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let informers = ctx.informers.clone();
    let batch = ctx.config.endpointslice_updates_batch_period;
    let membership = ServiceMembership::watch(&informers.services, &informers.pods, &queue, batch);
    let t = tracker.clone();
    tokio::spawn(enqueue_changes(informers.endpoint_slices.subscribe(), queue.clone(), move |c| {
        services_for_slice_change(c, &t, MANAGED_BY)
    }));
    informers.services.wait_synced().await;
    informers.pods.wait_synced().await;
    informers.nodes.wait_synced().await;
    informers.endpoint_slices.wait_synced().await;
    membership.seed(&informers.services.store());

    let controller = Arc::new(SliceController {
        recorder: ctx.recorder(CONTROLLER_NAME),
        tracker,
        triggers: TriggerTimeTracker::new(),
        initial: InitialSync::new(CONTROLLER_NAME, ctx.metrics.clone()),
        ctx: ctx.clone(),
    });
    // Every Service, and the Services of slices left from Services deleted while this controller was down.
    let services = informers.services.store();
    let orphans = managed_services(&informers.endpoint_slices.store(), MANAGED_BY);
    controller.initial.enqueue(services.keys().into_iter().chain(orphans), &queue, started);
    resync_every(services, queue.clone(), ctx.config.resync_period);
    run_workers(controller, queue, ctx.config.concurrent_service_endpoint_syncs, ctx.metrics.clone()).await;
    Ok(())
}
