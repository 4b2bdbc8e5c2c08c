//! The EndpointSlice mirroring controller (upstream pkg/controller/endpointslicemirroring): a Service
//! without a selector keeps the Endpoints its user writes; this controller mirrors them into EndpointSlices
//! (labelled `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`) so that
//! slice consumers see them too. Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (the
//! API server's own `default/kubernetes`) and old leader-election records are not mirrored.

pub mod desired;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

use super::controller::{delete_slices, is_namespace_terminating, managed_slices, services_for_slice_change};
use super::initial::InitialSync;
use super::tracker::{service_key, EndpointSliceTracker};
use super::util::{service_selector, ANNOTATION_LEADER, LABEL_MANAGED_BY, LABEL_SKIP_MIRROR};
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
        source: super::controller::EndpointSliceError,
    },
    #[error("creating a mirrored EndpointSlice for Endpoints {key}: {source}")]
    Create { key: ObjectKey, source: kube::Error },
    #[error("updating mirrored EndpointSlice {name} of Endpoints {key}: {source}")]
    Update { key: ObjectKey, name: String, source: kube::Error },
    #[error("mirrored EndpointSlices of Endpoints {key}: informer cache is out of date")]
    Stale { key: ObjectKey },
}

/// Whether an Endpoints object is mirrored at all.
pub fn should_mirror(ep: &Endpoints) -> bool {
    let skip = ep.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SKIP_MIRROR)).is_some_and(|v| v == "true");
    let leader = ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANNOTATION_LEADER));
    !skip && !leader
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
            delete_slices(&api, &self.tracker, key, &existing)
                .await
                .map_err(|source| MirroringError::Slices { key: key.clone(), source })?;
            return Ok(Action::Done);
        };
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        if self.tracker.stale_slices(key, &uid, &existing) {
            return Err(MirroringError::Stale { key: key.clone() });
        }
        let max = usize::from(self.ctx.config.mirroring_max_endpoints_per_subset);
        let plan = desired::plan(ep, &existing, max);
        if plan.is_empty() {
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
        if ep.metadata.deletion_timestamp.is_none() {
            for s in &plan.create {
                match api.create(&PostParams::default(), s).await {
                    Ok(created) => self.tracker.update(&created),
                    Err(e) if is_namespace_terminating(&e) => return Ok(Action::Done),
                    Err(source) => return Err(MirroringError::Create { key: key.clone(), source }),
                }
            }
        }
        for s in &plan.update {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&name, &PostParams::default(), s).await {
                Ok(updated) => self.tracker.update(&updated),
                Err(source) => return Err(MirroringError::Update { key: key.clone(), name, source }),
            }
        }
        delete_slices(&api, &self.tracker, key, &plan.delete)
            .await
            .map_err(|source| MirroringError::Slices { key: key.clone(), source })?;
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
        let result = self.sync(key).await;
        if result.is_ok() {
            self.initial.done(key);
        }
        result
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
    let mut keys: BTreeSet<ObjectKey> = informers.endpoints.store().keys().into_iter().collect();
    keys.extend(
        informers
            .endpoint_slices
            .store()
            .list()
            .iter()
            .filter(|s| {
                s.metadata.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(MANAGED_BY)
            })
            .filter_map(|s| service_key(s)),
    );
    controller.initial.expect(keys.iter().cloned(), started);
    for key in keys {
        queue.add(key);
    }
    let (store, q, period) = (informers.endpoints.clone(), queue.clone(), ctx.config.resync_period);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            for key in store.store().keys() {
                q.add(key);
            }
        }
    });
    run_workers(controller, queue, ctx.config.mirroring_concurrent_service_endpoint_syncs, ctx.metrics.clone()).await;
    Ok(())
}
