//! The EndpointSlice controller (upstream pkg/controller/endpointslice): keeps the EndpointSlices of every
//! Service with a selector. The plan comes from [`super::reconcile`] (pure); this module watches, queues
//! and writes it, tracking its own writes so that a lagging cache is never reconciled from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use knet_apimachinery::labels::Selector;
use kube::api::{Api, DeleteParams, PostParams};

use super::initial::InitialSync;
use super::membership::ServiceMembership;
use super::reconcile::{plan, Input};
use super::tracker::{service_key, EndpointSliceTracker};
use super::trigger_time::TriggerTimeTracker;
use super::util::{is_external_name, service_selector, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::context::Context;
use crate::endpoints::{enqueue_pod_changes, spawn_resync, spawn_service_changes};
use crate::runtime::{
    enqueue_changes, run_workers, Action, Change, EventRecorder, ObjectKey, Reconciler, Store, WorkQueue,
};

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

/// The slices of Service `name` in `namespace` managed by `managed_by`, without those being deleted.
pub fn managed_slices(
    store: &Store<EndpointSlice>,
    namespace: &str,
    name: &str,
    managed_by: &str,
) -> Vec<Arc<EndpointSlice>> {
    let set: BTreeMap<String, String> =
        [(LABEL_SERVICE_NAME.to_string(), name.to_string()), (LABEL_MANAGED_BY.to_string(), managed_by.to_string())]
            .into();
    store
        .select(namespace, &Selector::from_set(&set))
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect()
}

pub(crate) fn is_namespace_terminating(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => {
            s.is_forbidden()
                && s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
        }
        _ => false,
    }
}

pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.is_not_found())
}

/// Deletes `slices`, recording each with `tracker`; a slice already gone is fine.
pub(crate) async fn delete_slices(
    api: &Api<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    key: &ObjectKey,
    slices: &[Arc<EndpointSlice>],
) -> Result<(), EndpointSliceError> {
    for s in slices {
        let name = s.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracker.expect_deletion(s),
            Err(e) if is_not_found(&e) => tracker.expect_deletion(s),
            Err(source) => return Err(EndpointSliceError::Delete { key: key.clone(), name, source }),
        }
    }
    Ok(())
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
        let mut result = self.write(&api, key, plan.create, plan.update, &plan.delete).await.map(|()| Action::Done);
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

    async fn write(
        &self,
        api: &Api<EndpointSlice>,
        key: &ObjectKey,
        create: Vec<EndpointSlice>,
        update: Vec<EndpointSlice>,
        delete: &[Arc<EndpointSlice>],
    ) -> Result<(), EndpointSliceError> {
        for s in create {
            match api.create(&PostParams::default(), &s).await {
                Ok(created) => self.tracker.update(&created),
                // Creates keep failing in a terminating namespace: drop the key.
                Err(e) if is_namespace_terminating(&e) => return Ok(()),
                Err(source) => return Err(EndpointSliceError::Create { key: key.clone(), source }),
            }
        }
        for s in update {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&name, &PostParams::default(), &s).await {
                Ok(updated) => self.tracker.update(&updated),
                Err(source) => return Err(EndpointSliceError::Update { key: key.clone(), name, source }),
            }
        }
        delete_slices(api, &self.tracker, key, delete).await
    }
}

impl Reconciler for SliceController {
    type Key = ObjectKey;
    type Error = EndpointSliceError;

    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, EndpointSliceError> {
        let result = self.sync(key).await;
        if result.is_ok() {
            self.initial.done(key);
        }
        result
    }
}

fn managed_by(slice: &EndpointSlice, manager: &str) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(manager)
}

/// The Services to reconcile after a slice change: those of slices this controller manages that changed
/// in a way it did not write itself, or that changed hands.
pub(crate) fn services_for_slice_change(
    change: &Change<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    manager: &str,
) -> Vec<ObjectKey> {
    match (change.old.as_deref(), change.new.as_deref()) {
        (_, Some(new)) => {
            if let Some(old) = change.old.as_deref() {
                if managed_by(old, manager) != managed_by(new, manager) || service_key(old) != service_key(new) {
                    return service_key(old).into_iter().chain(service_key(new)).collect();
                }
            }
            if managed_by(new, manager) && tracker.should_sync(new) {
                service_key(new).into_iter().collect()
            } else {
                Vec::new()
            }
        }
        (Some(old), None) => {
            if managed_by(old, manager) && !tracker.handle_deletion(old) {
                service_key(old).into_iter().collect()
            } else {
                Vec::new()
            }
        }
        (None, None) => Vec::new(),
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), EndpointSliceError> {
    let started = Instant::now();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let membership = Arc::new(ServiceMembership::new());
    let tracker = Arc::new(EndpointSliceTracker::new());
    let informers = ctx.informers.clone();
    spawn_service_changes(&informers.services, &queue, &membership);
    tokio::spawn(enqueue_pod_changes(
        informers.pods.subscribe(),
        queue.clone(),
        membership.clone(),
        ctx.config.endpointslice_updates_batch_period,
    ));
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
    let mut keys: BTreeSet<ObjectKey> = informers.services.store().keys().into_iter().collect();
    keys.extend(
        informers
            .endpoint_slices
            .store()
            .list()
            .iter()
            .filter(|s| managed_by(s, MANAGED_BY))
            .filter_map(|s| service_key(s)),
    );
    controller.initial.expect(keys.iter().cloned(), started);
    for key in keys {
        queue.add(key);
    }
    spawn_resync(informers.services.clone(), queue.clone(), ctx.config.resync_period);
    run_workers(controller, queue, ctx.config.concurrent_service_endpoint_syncs, ctx.metrics.clone()).await;
    Ok(())
}
