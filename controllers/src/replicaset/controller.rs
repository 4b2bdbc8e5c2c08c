//! One reconcile of a ReplicaSet or ReplicationController (upstream `syncReplicaSet`): claim the pods, create
//! or delete pods until the count of active owned pods is `spec.replicas` (in slow-start batches, at most
//! `BURST_REPLICAS` at a time, guarded by expectations), then write the status if it changed.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};

use super::claim::{self, ClaimError};
use super::expectations::Expectations;
use super::pods::{self, NoLabels};
use super::ranking;
use super::status::{self, ManageFailure, Observed};
use super::workload::{ReplicaController, ReplicaStatus};
use crate::runtime::{Action, EventRecorder, ObjectKey, Reconciler, Store};

/// The most pods created or deleted in one reconcile (`BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// Why a reconcile of a ReplicaSet or RC failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Adopting or releasing pods failed.
    #[error("claiming pods for {key}: {source}")]
    Claim { key: ObjectKey, source: Box<ClaimError> },
    /// The template cannot make pods.
    #[error("creating pods for {key}: {source}")]
    Template { key: ObjectKey, source: NoLabels },
    /// Creating a pod failed.
    #[error("creating pods for {key}: {source}")]
    Create { key: ObjectKey, source: kube::Error },
    /// Deleting a pod failed.
    #[error("deleting pods of {key}: {source}")]
    Delete { key: ObjectKey, source: kube::Error },
    /// The status could not be written.
    #[error("updating the status of {key}: {source}")]
    Status { key: ObjectKey, source: kube::Error },
}

/// The message of an API error as the API server wrote it (what upstream's events show).
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        e => e.to_string(),
    }
}

/// The ReplicaSet (or RC) controller of one kind.
pub struct ReplicaManager<K: ReplicaController> {
    client: Client,
    owners: Store<K>,
    pods: Store<Pod>,
    expectations: Arc<Expectations<ObjectKey>>,
    recorder: EventRecorder,
}

/// What managing replicas did: the pods it deleted, and the failure if any.
struct Managed {
    deleted: Vec<String>,
    failure: Option<(&'static str, ReplicaError)>,
}

impl<K: ReplicaController> ReplicaManager<K> {
    /// A controller over these caches.
    pub fn new(
        client: Client,
        owners: Store<K>,
        pods: Store<Pod>,
        expectations: Arc<Expectations<ObjectKey>>,
        recorder: EventRecorder,
    ) -> Self {
        ReplicaManager { client, owners, pods, expectations, recorder }
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, ReplicaError> {
        let Some(owner) = self.owners.get(key) else {
            self.expectations.forget(key);
            return Ok(Action::Done);
        };
        let needs_sync = self.expectations.satisfied(key);
        let selector = match owner.selector() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(controller = K::CONTROLLER_NAME, %key, error = %e, "invalid selector; skipping");
                return Ok(Action::Done);
            }
        };
        // The candidates to claim: the pods the selector matches (from the label index) and the pods this
        // controller owns (which it releases if they no longer match). Upstream lists the whole namespace.
        let all = self.pods.list_namespace(&key.namespace);
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let mine: Vec<&Arc<Pod>> =
            all.iter().filter(|p| pods::controller_of(&p.metadata).is_some_and(|r| r.uid == uid)).collect();
        let mut candidates = self.pods.select(&key.namespace, &selector);
        let selected: HashSet<Option<String>> = candidates.iter().map(|p| p.metadata.uid.clone()).collect();
        candidates.extend(mine.iter().filter(|p| !selected.contains(&p.metadata.uid)).map(|p| Arc::clone(p)));
        candidates.retain(|p| pods::is_active(p));
        let owned = claim::claim_all(&self.client, owner.as_ref(), &selector, &candidates)
            .await
            .map_err(|source| ReplicaError::Claim { key: key.clone(), source: Box::new(source) })?;
        let mut terminating = mine.iter().filter(|p| pods::is_terminating(p)).count();

        let mut managed = Managed { deleted: Vec::new(), failure: None };
        if needs_sync && owner.meta().deletion_timestamp.is_none() {
            managed = self.manage_replicas(key, owner.as_ref(), &owned, &all).await;
        }
        // Pods deleted just now are terminating: leave them out of the counts at once, so that whoever reads
        // this status (the Deployment controller) never counts pods that are going away.
        terminating += managed.deleted.len();
        let remaining: Vec<&Pod> =
            owned.iter().map(AsRef::as_ref).filter(|p| !managed.deleted.contains(&pods::pod_key(p))).collect();

        let now = Timestamp::now();
        let empty = Default::default();
        let template_labels =
            owner.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.as_ref()).unwrap_or(&empty);
        let observed = Observed {
            active: &remaining,
            terminating: K::reports_terminating().then(|| i32::try_from(terminating).unwrap_or(i32::MAX)),
            template_labels,
            min_ready_seconds: owner.min_ready_seconds(),
            generation: owner.meta().generation.unwrap_or(0),
            failure: managed.failure.as_ref().map(|(reason, e)| ManageFailure { reason, message: error_message(e) }),
        };
        let current = owner.replica_status();
        let wanted = status::calculate(&current, &observed, now);
        if wanted != current {
            self.write_status(key, owner.as_ref(), wanted).await?;
        }
        if let Some((_, e)) = managed.failure {
            return Err(e);
        }
        Ok(match status::next_availability_check(&remaining, owner.min_ready_seconds(), now) {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }

    /// `manageReplicas`: creates or deletes pods so that `owned` (the active pods) becomes `spec.replicas`.
    async fn manage_replicas(&self, key: &ObjectKey, owner: &K, owned: &[Arc<Pod>], all: &[Arc<Pod>]) -> Managed {
        let desired = usize::try_from(owner.desired_replicas()).unwrap_or(0);
        let mut managed = Managed { deleted: Vec::new(), failure: None };
        if owned.len() < desired {
            let diff = (desired - owned.len()).min(BURST_REPLICAS);
            if let Err(e) = self.create_pods(key, owner, diff).await {
                managed.failure = Some(("FailedCreate", e));
            }
        } else if owned.len() > desired {
            let diff = (owned.len() - desired).min(BURST_REPLICAS);
            let related = self.related_pods(owner, all);
            let victims = ranking::pods_to_delete(owned, &related, diff, Timestamp::now());
            let (deleted, error) = self.delete_pods(key, owner, &victims).await;
            managed.deleted = deleted;
            if let Some(e) = error {
                managed.failure = Some(("FailedDelete", e));
            }
        }
        managed
    }

    /// Creates `count` pods in batches of 1, 2, 4, … (`slowStartBatch`), stopping at the first failing batch.
    async fn create_pods(&self, key: &ObjectKey, owner: &K, count: usize) -> Result<(), ReplicaError> {
        self.expectations.expect_creations(key, count);
        let pod = owner
            .template()
            .ok_or(NoLabels)
            .and_then(|t| pods::pod_from_template(t, &key.namespace, &key.name, pods::controller_ref(owner)));
        let pod = match pod {
            Ok(p) => p,
            Err(source) => {
                (0..count).for_each(|_| self.expectations.creation_observed(key));
                self.recorder.warning(owner, "FailedCreate", "Create", format!("Error creating: {source}"));
                return Err(ReplicaError::Template { key: key.clone(), source });
            }
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut created = 0;
        let mut batch = 1;
        let pp = PostParams::default();
        let mut result = Ok(());
        while created < count {
            let n = batch.min(count - created);
            let outcomes = join_all((0..n).map(|_| api.create(&pp, &pod))).await;
            let mut failed = None;
            for outcome in outcomes {
                match outcome {
                    Ok(p) => {
                        created += 1;
                        let name = p.metadata.name.unwrap_or_default();
                        self.recorder.normal(owner, "SuccessfulCreate", "Create", format!("Created pod: {name}"));
                    }
                    Err(e) if namespace_terminating(&e) => created += 1,
                    Err(e) => {
                        self.recorder.warning(
                            owner,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {}", api_message(&e)),
                        );
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(source) = failed {
                result = Err(ReplicaError::Create { key: key.clone(), source });
                break;
            }
            batch *= 2;
        }
        // Pods never created will never be observed.
        (created..count).for_each(|_| self.expectations.creation_observed(key));
        result
    }

    /// Deletes `victims`; returns the keys of the pods deleted (or already gone) and the first failure.
    async fn delete_pods(
        &self,
        key: &ObjectKey,
        owner: &K,
        victims: &[Arc<Pod>],
    ) -> (Vec<String>, Option<ReplicaError>) {
        self.expectations.expect_deletions(key, victims.iter().map(|p| pods::pod_key(p)));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let deletes = victims.iter().map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let dp = DeleteParams {
                preconditions: Some(Preconditions { uid: p.metadata.uid.clone(), resource_version: None }),
                ..Default::default()
            };
            let api = api.clone();
            async move { (name.clone(), api.delete(&name, &dp).await) }
        });
        let mut deleted = Vec::new();
        let mut failure = None;
        for (name, outcome) in join_all(deletes).await {
            let pod_key = format!("{}/{name}", key.namespace);
            match outcome {
                Ok(_) => {
                    self.recorder.normal(owner, "SuccessfulDelete", "Delete", format!("Deleted pod: {name}"));
                    deleted.push(pod_key);
                }
                Err(e) => {
                    self.expectations.deletion_observed(key, &pod_key);
                    // Gone already, or replaced by another pod of that name: not ours to delete any more.
                    if matches!(&e, kube::Error::Api(s) if s.is_not_found() || s.is_conflict()) {
                        deleted.push(pod_key);
                        continue;
                    }
                    self.recorder.warning(
                        owner,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {}", api_message(&e)),
                    );
                    failure.get_or_insert(ReplicaError::Delete { key: key.clone(), source: e });
                }
            }
        }
        (deleted, failure)
    }

    /// `getIndirectlyRelatedPods`: the pods of every ReplicaSet with the same controller as `owner` (the
    /// ReplicaSets of one Deployment), used to spread what remains across nodes.
    fn related_pods(&self, owner: &K, all: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
        let Some(controller) = pods::controller_of(owner.meta()) else { return Vec::new() };
        let namespace = owner.meta().namespace.as_deref().unwrap_or("");
        let siblings: Vec<String> = self
            .owners
            .list_namespace(namespace)
            .iter()
            .filter(|o| pods::controller_of(o.meta()).is_some_and(|r| r.uid == controller.uid))
            .filter_map(|o| o.meta().uid.clone())
            .collect();
        all.iter()
            .filter(|p| pods::controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid)))
            .cloned()
            .collect()
    }

    /// Writes the status (a PUT of `/status` guarded by the cached resourceVersion; on a conflict the object
    /// is read again and the write tried once more, as upstream's `updateReplicaSetStatus`).
    async fn write_status(&self, key: &ObjectKey, owner: &K, wanted: ReplicaStatus) -> Result<(), ReplicaError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut obj = owner.clone();
        obj.set_replica_status(wanted.clone());
        let status_err = |source| ReplicaError::Status { key: key.clone(), source };
        match api.replace_status(&key.name, &PostParams::default(), &obj).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.is_conflict() => {
                let mut fresh = api.get(&key.name).await.map_err(status_err)?;
                if fresh.meta().uid != owner.meta().uid {
                    return Ok(());
                }
                fresh.set_replica_status(wanted);
                api.replace_status(&key.name, &PostParams::default(), &fresh).await.map(|_| ()).map_err(status_err)
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(status_err(e)),
        }
    }
}

/// The creation failed because the namespace is being deleted (upstream ignores those).
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_forbidden() && s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

fn error_message(e: &ReplicaError) -> String {
    match e {
        ReplicaError::Create { source, .. } | ReplicaError::Delete { source, .. } => api_message(source),
        e => e.to_string(),
    }
}

impl<K: ReplicaController> Reconciler for ReplicaManager<K> {
    type Key = ObjectKey;
    type Error = ReplicaError;

    fn name(&self) -> &'static str {
        K::CONTROLLER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, ReplicaError> {
        self.sync(key).await
    }
}
