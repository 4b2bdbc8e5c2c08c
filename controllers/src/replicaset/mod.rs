//! The ReplicaSet and ReplicationController controllers: keep the number of pods a ReplicaSet/RC asks for
//! (upstream pkg/controller/replicaset, replication). Both kinds share one implementation
//! ([`controller::ReplicaManager`]) over [`workload::ReplicaController`]; the pod helpers, deletion ranking
//! and controller-reference claiming here are also used by the Deployment controller.

pub mod claim;
pub mod controller;
pub mod expectations;
pub mod handlers;
pub mod owners;
pub mod pods;
pub mod ranking;
pub mod status;
pub mod workload;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::runtime::{enqueue_changes, resync, run_workers, ObjectKey, WorkQueue};
use controller::ReplicaManager;
use expectations::Expectations;
use workload::ReplicaController;

/// Why the controllers stopped (they run for ever otherwise).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    /// A controller's workers ended.
    #[error("the {0} stopped")]
    Stopped(&'static str),
    /// A controller task panicked.
    #[error("the {controller} panicked: {message}")]
    Panicked { controller: &'static str, message: String },
}

/// Runs the ReplicaSet controller (if `replicaset` is enabled) and the ReplicationController controller (if
/// `replicationcontroller` is enabled) until the process ends.
pub async fn run(ctx: Context) -> Result<(), ReplicaSetError> {
    let mut tasks = JoinSet::new();
    if ctx.config.enabled("replicaset") {
        tasks.spawn(run_kind::<ReplicaSet>(ctx.clone()));
    }
    if ctx.config.enabled("replicationcontroller") {
        tasks.spawn(run_kind::<ReplicationController>(ctx.clone()));
    }
    match tasks.join_next().await {
        Some(Ok(stopped)) => Err(stopped),
        Some(Err(e)) => Err(ReplicaSetError::Panicked { controller: "replica controller", message: e.to_string() }),
        None => std::future::pending().await,
    }
}

/// Runs the controller of one kind; returns only when its workers stop.
async fn run_kind<K: ReplicaController>(ctx: Context) -> ReplicaSetError {
    let owners = K::informer(&ctx.informers).clone();
    let pods = ctx.informers.pods.clone();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let expectations: Arc<Expectations<ObjectKey>> = Arc::new(Expectations::new());

    let exp = expectations.clone();
    tokio::spawn(enqueue_changes(owners.subscribe(), queue.clone(), move |change| {
        let key = change.key().into_iter().collect::<Vec<_>>();
        if change.new.is_none() {
            key.iter().for_each(|k| exp.forget(k));
        }
        key
    }));
    let exp = expectations.clone();
    let store = owners.store();
    tokio::spawn(enqueue_changes(pods.subscribe(), queue.clone(), move |change| {
        handlers::pod_change(change, &store, &exp)
    }));
    owners.wait_synced().await;
    pods.wait_synced().await;

    resync(owners.store(), queue.clone(), ctx.config.resync_period, |o: &K| Some(ObjectKey::of(o)));

    let manager = ReplicaManager::<K>::new(
        ctx.client.clone(),
        owners.store(),
        pods.store(),
        expectations,
        ctx.recorder(K::CONTROLLER_NAME),
    );
    run_workers(Arc::new(manager), queue, ctx.config.concurrent_replicaset_syncs, ctx.metrics.clone()).await;
    ReplicaSetError::Stopped(K::CONTROLLER_NAME)
}
