//! The Deployment controller: Deployments → ReplicaSets, rolling updates, status and conditions (upstream
//! pkg/controller/deployment).
//!
//! A sync claims the Deployment's ReplicaSets, then — paused or resized: only scales ([`sync::Syncer::scale`]);
//! otherwise rolls out by its strategy ([`rolling`], [`recreate`]) — and reports status ([`progress`]).
//! Decisions are pure functions ([`plan`], [`fenceposts`], [`progress`], [`util`]) of the cached objects.

pub mod fenceposts;
pub mod handlers;
pub mod hash;
pub mod plan;
pub mod progress;
pub mod recreate;
pub mod rolling;
pub mod sync;
pub mod util;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use knet_apimachinery::labels::{self, LabelSelectorError};
use kube::Client;

use crate::context::Context;
use crate::replicaset::claim::{self, ClaimError};
use crate::replicaset::pods;
use crate::runtime::{
    enqueue_changes, resync, run_workers, Action, EventRecorder, ObjectKey, Reconciler, Store, WorkQueue,
};
use recreate::PodMap;
use sync::Syncer;

/// Upstream's name for the controller.
pub const CONTROLLER_NAME: &str = "deployment-controller";

/// Why a sync of a Deployment failed (it is retried with backoff), or why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The selector cannot be parsed.
    #[error("deployment {key} has invalid label selector: {source}")]
    Selector { key: ObjectKey, source: LabelSelectorError },
    /// Adopting or releasing ReplicaSets failed.
    #[error("claiming replica sets for deployment {key}: {source}")]
    Claim { key: ObjectKey, source: Box<ClaimError> },
    /// `maxSurge`/`maxUnavailable` cannot be resolved.
    #[error("deployment {key}: {source}")]
    Strategy { key: ObjectKey, source: fenceposts::NotAPercentage },
    /// The strategy type is unknown.
    #[error("unexpected deployment strategy type: {0}")]
    UnknownStrategy(String),
    /// Creating the new ReplicaSet failed.
    #[error("creating replica set {name}: {source}")]
    CreateReplicaSet { name: String, source: kube::Error },
    /// The new ReplicaSet's name is taken by another; collisionCount was raised.
    #[error("hash collision for replica set {name}: another object has that name; collisionCount raised")]
    HashCollision { name: String },
    /// Scaling or annotating a ReplicaSet failed.
    #[error("updating replica set {name}: {source}")]
    UpdateReplicaSet { name: String, source: kube::Error },
    /// Deleting an old ReplicaSet failed.
    #[error("deleting old replica set {name}: {source}")]
    DeleteReplicaSet { name: String, source: kube::Error },
    /// Writing the Deployment's status failed.
    #[error("updating the status of deployment {key}: {source}")]
    Status { key: ObjectKey, source: kube::Error },
    /// Writing the Deployment's revision annotation failed.
    #[error("updating the revision of deployment {key}: {source}")]
    Annotate { key: ObjectKey, source: kube::Error },
    /// The workers stopped.
    #[error("the deployment controller stopped")]
    Stopped,
}

/// What every sync uses: the client, the caches, the event recorder.
pub struct Shared {
    pub(crate) client: Client,
    pub(crate) deployments: Store<Deployment>,
    pub(crate) replica_sets: Store<ReplicaSet>,
    pub(crate) pods: Store<Pod>,
    pub(crate) recorder: EventRecorder,
}

/// The Deployment controller.
pub struct DeploymentController {
    shared: Shared,
}

impl DeploymentController {
    /// `syncDeployment`.
    async fn sync(&self, key: &ObjectKey) -> Result<Action, DeploymentError> {
        let Some(cached) = self.shared.deployments.get(key) else { return Ok(Action::Done) };
        let d = (*cached).clone();
        let spec = d.spec.clone().unwrap_or_default();
        let mut s = Syncer { shared: &self.shared, d, key: key.clone() };
        if labels::from_label_selector(&spec.selector).is_ok_and(|sel| sel.is_everything()) {
            let msg = "This deployment is selecting all pods. A non-empty selector is required.".to_string();
            self.shared.recorder.warning(&s.d, "SelectingAll", "Select", msg);
            let generation = s.d.metadata.generation.unwrap_or(0);
            let status = s.d.status.get_or_insert_with(Default::default);
            if status.observed_generation.unwrap_or(0) < generation {
                status.observed_generation = Some(generation);
                s.update_status().await?;
            }
            return Ok(Action::Done);
        }
        let mut rss = self.replica_sets_for(&s.d, key).await?;
        let pod_map = self.pod_map(&s.d, &rss);

        if s.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = s.new_and_old(&mut rss, false).await?;
            let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
            s.sync_status(&all, new.as_ref()).await?;
            return Ok(Action::Done);
        }
        s.check_paused_conditions().await?;
        let paused = spec.paused.unwrap_or(false);
        if paused || self.is_scaling_event(&mut s, &mut rss).await? {
            return self.scale_only(&mut s, &mut rss, paused).await;
        }
        match fenceposts::strategy_type(&s.d) {
            "Recreate" => recreate::rollout(&mut s, &mut rss, &pod_map).await,
            "RollingUpdate" => rolling::rollout(&mut s, &mut rss).await,
            other => Err(DeploymentError::UnknownStrategy(other.to_string())),
        }
    }

    /// `getReplicaSetsForDeployment`: the ReplicaSets the Deployment controls, after adoption and release.
    async fn replica_sets_for(&self, d: &Deployment, key: &ObjectKey) -> Result<Vec<ReplicaSet>, DeploymentError> {
        let selector = util::selector(d).map_err(|source| DeploymentError::Selector { key: key.clone(), source })?;
        let candidates = self.shared.replica_sets.list_namespace(&key.namespace);
        let claimed = claim::claim_all(&self.shared.client, d, &selector, &candidates)
            .await
            .map_err(|source| DeploymentError::Claim { key: key.clone(), source: Box::new(source) })?;
        Ok(claimed.iter().map(|r| (**r).clone()).collect())
    }

    /// `getPodMapForDeployment`: the Deployment's pods by the UID of their ReplicaSet.
    fn pod_map(&self, d: &Deployment, rss: &[ReplicaSet]) -> PodMap {
        let mut map: PodMap = rss.iter().filter_map(|r| r.metadata.uid.clone()).map(|u| (u, Vec::new())).collect();
        let namespace = d.metadata.namespace.as_deref().unwrap_or("");
        let Ok(selector) = util::selector(d) else {
            return map;
        };
        for pod in self.shared.pods.select(namespace, &selector) {
            if let Some(list) = pods::controller_of(&pod.metadata).and_then(|r| map.get_mut(&r.uid)) {
                list.push(pod);
            }
        }
        map
    }

    /// `isScalingEvent`: an active ReplicaSet was last scaled for another `spec.replicas`.
    async fn is_scaling_event(&self, s: &mut Syncer<'_>, rss: &mut Vec<ReplicaSet>) -> Result<bool, DeploymentError> {
        let (new, old) = s.new_and_old(rss, false).await?;
        let desired = util::desired_replicas(&s.d);
        Ok(old
            .iter()
            .chain(new.as_ref())
            .filter(|r| util::is_active(r))
            .filter_map(util::desired_replicas_annotation)
            .any(|n| n != desired))
    }

    /// `sync`: scaling only (paused, or a scaling event), cleanup when paused, then the status.
    async fn scale_only(
        &self,
        s: &mut Syncer<'_>,
        rss: &mut Vec<ReplicaSet>,
        paused: bool,
    ) -> Result<Action, DeploymentError> {
        let (new, old) = s.new_and_old(rss, false).await?;
        s.scale(new.as_ref(), &old).await?;
        if paused {
            s.cleanup(&old).await?;
        }
        // Sizes changed by the scale are seen on the next sync (the ReplicaSet updates requeue this key).
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        s.sync_status(&all, new.as_ref()).await?;
        Ok(Action::Done)
    }
}

impl Reconciler for DeploymentController {
    type Key = ObjectKey;
    type Error = DeploymentError;

    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, DeploymentError> {
        self.sync(key).await
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), DeploymentError> {
    let deployments = ctx.informers.deployments.clone();
    let replica_sets = ctx.informers.replica_sets.clone();
    let pods = ctx.informers.pods.clone();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();

    tokio::spawn(enqueue_changes(deployments.subscribe(), queue.clone(), |c| c.key().into_iter().collect()));
    let store = deployments.store();
    tokio::spawn(enqueue_changes(replica_sets.subscribe(), queue.clone(), move |c| {
        handlers::replica_set_change(c, &store)
    }));
    let (d_store, rs_store) = (deployments.store(), replica_sets.store());
    tokio::spawn(enqueue_changes(pods.subscribe(), queue.clone(), move |c| {
        handlers::pod_change(c, &d_store, &rs_store)
    }));
    deployments.wait_synced().await;
    replica_sets.wait_synced().await;
    pods.wait_synced().await;

    resync(deployments.store(), queue.clone(), ctx.config.resync_period, |o: &Deployment| Some(ObjectKey::of(o)));

    let controller = DeploymentController {
        shared: Shared {
            client: ctx.client.clone(),
            deployments: deployments.store(),
            replica_sets: replica_sets.store(),
            pods: pods.store(),
            recorder: ctx.recorder(CONTROLLER_NAME),
        },
    };
    run_workers(Arc::new(controller), queue, ctx.config.concurrent_deployment_syncs, ctx.metrics.clone()).await;
    Err(DeploymentError::Stopped)
}
