//! The endpoints controller: keeps a core/v1 Endpoints object per Service with a selector (upstream
//! pkg/controller/endpoint). Deciding is in [`render`] (pure); this module watches, queues and writes —
//! only when the decision differs from what is stored.

pub mod render;
pub mod repack;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Endpoints, Pod};
use knet_apimachinery::labels::Selector;
use kube::api::{Api, DeleteParams, PostParams};

use crate::context::Context;
use crate::endpointslice::initial::{resync_every, InitialSync};
use crate::endpointslice::membership::ServiceMembership;
use crate::endpointslice::trigger_time::TriggerTimeTracker;
use crate::endpointslice::util::{
    is_external_name, is_leader_record, is_namespace_terminating, is_not_found, service_selector,
};
use crate::runtime::{enqueue_changes, run_workers, Action, Change, EventRecorder, ObjectKey, Reconciler, WorkQueue};
use render::Decision;

/// Upstream's name for this controller (events, metrics, logs).
pub const CONTROLLER_NAME: &str = "endpoint-controller";

/// Why a Service's Endpoints could not be reconciled (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("creating Endpoints {key}: {source}")]
    Create { key: ObjectKey, source: kube::Error },
    #[error("updating Endpoints {key}: {source}")]
    Update { key: ObjectKey, source: kube::Error },
    #[error("deleting Endpoints {key} of a deleted Service: {source}")]
    Delete { key: ObjectKey, source: kube::Error },
    #[error("Endpoints {key}: informer cache is out of date, resourceVersion {resource_version} was already replaced")]
    Stale { key: ObjectKey, resource_version: String },
}

/// Remembers, per Endpoints object, the resourceVersion this controller last replaced: if the cache still
/// shows it, the cache has not caught up with the write and deciding from it would be wrong.
#[derive(Default)]
pub struct StaleTracker {
    replaced: Mutex<HashMap<ObjectKey, String>>,
}

impl StaleTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, String>> {
        self.replaced.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the version `resource_version` of `key` was replaced by a write.
    pub fn replaced(&self, key: &ObjectKey, resource_version: Option<&str>) {
        if let Some(rv) = resource_version {
            self.lock().insert(key.clone(), rv.to_string());
        }
    }

    /// Whether a cached object with `resource_version` is one this controller already replaced.
    pub fn is_stale(&self, key: &ObjectKey, resource_version: Option<&str>) -> bool {
        resource_version.is_some_and(|rv| self.lock().get(key).is_some_and(|r| r == rv))
    }

    /// Forgets `key`.
    pub fn forget(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }
}

struct EndpointsController {
    ctx: Context,
    recorder: EventRecorder,
    triggers: TriggerTimeTracker,
    stale: StaleTracker,
    initial: InitialSync,
}

impl EndpointsController {
    async fn sync(&self, key: &ObjectKey) -> Result<Action, EndpointsError> {
        let informers = &self.ctx.informers;
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let Some(svc) = informers.services.store().get(key) else {
            // The Service is gone: so are its Endpoints.
            self.triggers.delete_service(key);
            self.stale.forget(key);
            if informers.endpoints.store().get(key).is_some() {
                match api.delete(&key.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(source) => return Err(EndpointsError::Delete { key: key.clone(), source }),
                }
            }
            return Ok(Action::Done);
        };
        // ExternalName Services and Services without a selector get no endpoints from this controller;
        // the latter keep whatever Endpoints their users write.
        if is_external_name(&svc) {
            return Ok(Action::Done);
        }
        let Some(selector) = service_selector(&svc) else { return Ok(Action::Done) };
        let current = informers.endpoints.store().get(key);
        if let Some(cur) = current.as_deref() {
            let rv = cur.metadata.resource_version.as_deref();
            if self.stale.is_stale(key, rv) {
                return Err(EndpointsError::Stale {
                    key: key.clone(),
                    resource_version: rv.unwrap_or_default().into(),
                });
            }
        }
        let pods: Vec<Arc<Pod>> = informers.pods.store().select(&key.namespace, &Selector::from_set(selector));
        let trigger = self.triggers.compute(key, &svc, &pods);
        let subsets = render::render_subsets(&svc, &pods);
        match render::decide(&svc, subsets, current.as_deref(), trigger) {
            Decision::UpToDate => Ok(Action::Done),
            Decision::Create(ep) => match api.create(&PostParams::default(), &ep).await {
                Ok(_) => Ok(Action::Done),
                // Creates keep failing in a terminating namespace: drop the key.
                Err(e) if is_namespace_terminating(&e) => Ok(Action::Done),
                Err(source) => {
                    self.recorder.warning(
                        &*ep,
                        "FailedToCreateEndpoint",
                        "CreateEndpoint",
                        format!("Failed to create endpoint for service {}/{}: {source}", key.namespace, key.name),
                    );
                    Err(EndpointsError::Create { key: key.clone(), source })
                }
            },
            Decision::Update(ep) => match api.replace(&key.name, &PostParams::default(), &ep).await {
                Ok(updated) => {
                    let old_rv = ep.metadata.resource_version.as_deref();
                    if updated.metadata.resource_version.as_deref() != old_rv {
                        self.stale.replaced(key, old_rv);
                    }
                    Ok(Action::Done)
                }
                Err(source) => {
                    self.recorder.warning(
                        &*ep,
                        "FailedToUpdateEndpoint",
                        "UpdateEndpoint",
                        format!("Failed to update endpoint {}/{}: {source}", key.namespace, key.name),
                    );
                    Err(EndpointsError::Update { key: key.clone(), source })
                }
            },
        }
    }
}

impl Reconciler for EndpointsController {
    type Key = ObjectKey;
    type Error = EndpointsError;

    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, EndpointsError> {
        self.initial.track(key, self.sync(key).await)
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), EndpointsError> {
    let started = Instant::now();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let informers = ctx.informers.clone();
    let batch = ctx.config.endpoint_updates_batch_period;
    let membership = ServiceMembership::watch(&informers.services, &informers.pods, &queue, batch);
    // Endpoints deleted by someone else are put back.
    tokio::spawn(enqueue_changes(informers.endpoints.subscribe(), queue.clone(), |c: &Change<Endpoints>| {
        if c.new.is_none() {
            c.key().into_iter().collect()
        } else {
            Vec::new()
        }
    }));
    informers.services.wait_synced().await;
    informers.pods.wait_synced().await;
    informers.endpoints.wait_synced().await;
    membership.seed(&informers.services.store());

    let controller = Arc::new(EndpointsController {
        recorder: ctx.recorder(CONTROLLER_NAME),
        triggers: TriggerTimeTracker::new(),
        stale: StaleTracker::default(),
        initial: InitialSync::new(CONTROLLER_NAME, ctx.metrics.clone()),
        ctx: ctx.clone(),
    });
    // Every Service, and every Endpoints object once at start: those whose Service went away while this
    // controller was down are deleted (except old leader-election records).
    let services = informers.services.store();
    let endpoints = informers.endpoints.store().list();
    let orphans = endpoints.iter().filter(|ep| !is_leader_record(ep)).map(|ep| ObjectKey::of(ep.as_ref()));
    controller.initial.enqueue(services.keys().into_iter().chain(orphans), &queue, started);
    resync_every(services, queue.clone(), ctx.config.resync_period);
    run_workers(controller, queue, ctx.config.concurrent_endpoint_syncs, ctx.metrics.clone()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tracker_flags_only_the_replaced_version() {
        let t = StaleTracker::default();
        let k = ObjectKey::new("d", "web");
        assert!(!t.is_stale(&k, Some("5")));
        t.replaced(&k, Some("5"));
        assert!(t.is_stale(&k, Some("5")));
        assert!(!t.is_stale(&k, Some("6")));
        assert!(!t.is_stale(&k, None));
        t.forget(&k);
        assert!(!t.is_stale(&k, Some("5")));
    }
}
