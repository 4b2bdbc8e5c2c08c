//! The writing half of a Deployment sync (upstream sync.go): find or create the new ReplicaSet and keep the
//! revision annotations right, scale ReplicaSets (recording `ScalingReplicaSet` events), scale proportionally
//! when the Deployment is resized, clean up old ReplicaSets beyond `revisionHistoryLimit`, and write the
//! status. Every write is guarded by the resourceVersion of what was read; a conflict fails the sync, which
//! is retried on fresh caches.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource};
use serde_json::json;

use super::hash::{self, POD_TEMPLATE_HASH};
use super::util::{self, reason};
use super::{fenceposts, plan, progress, DeploymentError, Shared};
use crate::replicaset::controller::api_message;
use crate::replicaset::pods;
use crate::runtime::{Action, ObjectKey};

/// One sync of one Deployment: the working copy, updated after each of its writes.
pub struct Syncer<'a> {
    pub(super) shared: &'a Shared,
    pub(super) d: Deployment,
    pub(super) key: ObjectKey,
}

impl Syncer<'_> {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.shared.client.clone(), &self.key.namespace)
    }

    fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.shared.client.clone(), &self.key.namespace)
    }

    fn desired(&self) -> i32 {
        util::desired_replicas(&self.d)
    }

    /// Writes the working copy's status.
    pub async fn update_status(&mut self) -> Result<(), DeploymentError> {
        let updated = self
            .deployments()
            .replace_status(&self.key.name, &PostParams::default(), &self.d)
            .await
            .map_err(|source| DeploymentError::Status { key: self.key.clone(), source })?;
        self.d = updated;
        Ok(())
    }

    /// Sets the Progressing condition of the working copy (`status`, `why`, `message`) and writes the status.
    async fn set_progressing(&mut self, status: &str, why: &str, message: String) -> Result<(), DeploymentError> {
        let cond = util::new_condition(reason::PROGRESSING, status, why, message, Timestamp::now());
        util::set_condition(self.d.status.get_or_insert_with(Default::default), cond);
        self.update_status().await
    }

    /// `SetDeploymentRevision`: puts the revision annotation on the Deployment with a patch of its status
    /// subresource (which, as upstream's, takes annotation changes).
    async fn set_revision(&mut self, revision: i64) -> Result<(), DeploymentError> {
        let revision = revision.to_string();
        if util::deployment_revision(&self.d) == Some(revision.as_str()) {
            return Ok(());
        }
        let patch = json!({"metadata": {
            "annotations": {util::REVISION: revision},
            "resourceVersion": self.d.metadata.resource_version,
        }});
        let updated = self
            .deployments()
            // Through /status, as upstream's UpdateStatus: the annotation is not a spec change, so the
            // Deployment's generation stays (a main update would bump it and cost another sync).
            .patch_status(&self.key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| DeploymentError::Annotate { key: self.key.clone(), source })?;
        let status = self.d.status.take();
        self.d = updated;
        self.d.status = status;
        Ok(())
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created if `create` and missing) and the old
    /// ones, with the revisions synced. `rss` is kept current with what this writes.
    pub async fn new_and_old(
        &mut self,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), DeploymentError> {
        let new_uid = util::find_new(&self.d, rss).and_then(|r| r.metadata.uid.clone());
        let old: Vec<ReplicaSet> =
            rss.iter().filter(|r| new_uid.is_none() || r.metadata.uid != new_uid).cloned().collect();
        let new = self.new_replica_set(rss, &old, create).await?;
        if let Some(n) = &new {
            match rss.iter_mut().find(|r| r.metadata.uid == n.metadata.uid) {
                Some(slot) => *slot = n.clone(),
                None => rss.push(n.clone()),
            }
        }
        Ok((new, old))
    }

    /// `getNewReplicaSet`.
    async fn new_replica_set(
        &mut self,
        rss: &[ReplicaSet],
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, DeploymentError> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let new_revision = util::max_revision(&old_refs) + 1;
        if let Some(existing) = util::find_new(&self.d, rss) {
            let mut copy = existing.clone();
            let annotations_changed = util::set_new_replica_set_annotations(
                &self.d,
                &mut copy,
                new_revision,
                true,
                fenceposts::max_surge(&self.d),
            );
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let spec = copy.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
            if annotations_changed || min_ready_changed {
                spec.min_ready_seconds = min_ready;
                let updated = self.replace_replica_set(&copy).await?;
                return Ok(Some(updated));
            }
            self.set_revision(util::revision(&copy)).await?;
            let has_progressing =
                self.d.status.as_ref().is_some_and(|st| util::condition(st, reason::PROGRESSING).is_some());
            if util::has_progress_deadline(&self.d) && !has_progressing {
                let name = copy.metadata.name.as_deref().unwrap_or("");
                self.set_progressing("True", reason::FOUND_NEW_RS, format!("Found new replica set {name:?}")).await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }
        self.create_new_replica_set(old, new_revision).await.map(Some)
    }

    /// The new ReplicaSet for the Deployment's template: `<name>-<hash>`, the hash label on its selector and
    /// template, sized by the strategy.
    fn build_new_replica_set(&self, old: &[ReplicaSet], revision: i64) -> Result<ReplicaSet, DeploymentError> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = hash::compute_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels.get_or_insert_with(Default::default).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(Default::default).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", self.key.name)),
                namespace: Some(self.key.namespace.clone()),
                owner_references: Some(vec![pods::controller_ref(&self.d)]),
                labels,
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&rs)).collect();
        let size = fenceposts::new_rs_new_replicas(&self.d, &all, &rs)
            .map_err(|source| DeploymentError::Strategy { key: self.key.clone(), source })?;
        util::set_size(&mut rs, size);
        util::set_new_replica_set_annotations(&self.d, &mut rs, revision, false, fenceposts::max_surge(&self.d));
        Ok(rs)
    }

    async fn create_new_replica_set(
        &mut self,
        old: &[ReplicaSet],
        revision: i64,
    ) -> Result<ReplicaSet, DeploymentError> {
        let rs = self.build_new_replica_set(old, revision)?;
        let name = rs.metadata.name.clone().unwrap_or_default();
        let size = util::size(&rs);
        let (created, already_existed) = match self.replica_sets().create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                // Ours already, from an earlier sync the cache has not shown yet? Otherwise a hash collision.
                let existing = self
                    .replica_sets()
                    .get(&name)
                    .await
                    .map_err(|source| DeploymentError::CreateReplicaSet { name: name.clone(), source })?;
                let ours =
                    pods::controller_of(&existing.metadata).map(|r| r.uid.as_str()) == self.d.metadata.uid.as_deref();
                let same = existing.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| {
                    hash::equal_ignore_hash(t, &self.d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default())
                });
                if !(ours && same) {
                    let status = self.d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(status.collision_count.unwrap_or(0).saturating_add(1));
                    self.update_status().await?;
                    return Err(DeploymentError::HashCollision { name });
                }
                (existing, true)
            }
            Err(source) => {
                let msg = format!("Failed to create new replica set {name:?}: {}", api_message(&source));
                if util::has_progress_deadline(&self.d) {
                    // The creation's error is the one to report; a failed status write is retried with it.
                    let _ = self.set_progressing("False", reason::FAILED_RS_CREATE, msg.clone()).await;
                }
                self.shared.recorder.warning(&self.d, reason::FAILED_RS_CREATE, "Create", msg);
                return Err(DeploymentError::CreateReplicaSet { name, source });
            }
        };
        if !already_existed && size > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {size}");
            self.shared.recorder.normal(&self.d, "ScalingReplicaSet", "Scale", msg);
        }
        self.set_revision(revision).await?;
        if !already_existed && util::has_progress_deadline(&self.d) {
            self.set_progressing("True", reason::NEW_RS_CREATED, format!("Created new replica set {name:?}")).await?;
        }
        Ok(created)
    }

    async fn replace_replica_set(&self, rs: &ReplicaSet) -> Result<ReplicaSet, DeploymentError> {
        let name = rs.metadata.name.clone().unwrap_or_default();
        self.replica_sets()
            .replace(&name, &PostParams::default(), rs)
            .await
            .map_err(|source| DeploymentError::UpdateReplicaSet { name, source })
    }

    /// `scaleReplicaSetAndRecordEvent`: scales `rs` to `size` unless it has that size already.
    pub async fn scale_and_record(&self, rs: &ReplicaSet, size: i32) -> Result<(bool, ReplicaSet), DeploymentError> {
        if util::size(rs) == size {
            return Ok((false, rs.clone()));
        }
        let op = if util::size(rs) < size { "up" } else { "down" };
        self.scale_replica_set(rs, size, op).await
    }

    /// `scaleReplicaSet`: sets the size and the replica annotations; a `ScalingReplicaSet` event when the
    /// size changed. Returns whether it did, and the ReplicaSet as written.
    pub async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        size: i32,
        op: &str,
    ) -> Result<(bool, ReplicaSet), DeploymentError> {
        let desired = self.desired();
        let max = desired + fenceposts::max_surge(&self.d);
        let resize = util::size(rs) != size;
        if !resize && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let old = util::size(rs);
        let mut copy = rs.clone();
        util::set_size(&mut copy, size);
        util::set_replicas_annotations(&mut copy, desired, max);
        let updated = self.replace_replica_set(&copy).await?;
        if resize {
            let name = updated.metadata.name.as_deref().unwrap_or("");
            let msg = format!("Scaled {op} replica set {name} from {old} to {size}");
            self.shared.recorder.normal(&self.d, "ScalingReplicaSet", "Scale", msg);
        }
        Ok((resize, updated))
    }

    /// `scale`: resizes for a scaling event — the one active ReplicaSet takes the new size, or (rolling
    /// updates mid-rollout) every active ReplicaSet its proportional share.
    pub async fn scale(&self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<(), DeploymentError> {
        let desired = self.desired();
        if let Some(target) = util::find_active_or_latest(new, old) {
            if util::size(target) != desired {
                self.scale_and_record(target, desired).await?;
            }
            return Ok(());
        }
        if util::is_saturated(&self.d, new) {
            for rs in old.iter().filter(|r| util::is_active(r)) {
                self.scale_and_record(rs, 0).await?;
            }
            return Ok(());
        }
        if fenceposts::is_rolling_update(&self.d) {
            let mut active: Vec<&ReplicaSet> = old.iter().chain(new).filter(|r| util::is_active(r)).collect();
            let op = plan::proportional_order(&self.d, &mut active);
            let sizes = plan::proportional_sizes(&self.d, &active);
            for (rs, size) in active.into_iter().zip(sizes) {
                self.scale_replica_set(rs, size, op).await?;
            }
        }
        Ok(())
    }

    /// `cleanupDeployment`: deletes the oldest old ReplicaSets beyond `revisionHistoryLimit` that have no pods
    /// and are fully observed.
    pub async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), DeploymentError> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let mut alive: Vec<&ReplicaSet> = old.iter().filter(|r| r.metadata.deletion_timestamp.is_none()).collect();
        let excess = i64::try_from(alive.len()).unwrap_or(i64::MAX) - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| util::by_revision(a, b));
        let mut first_error = None;
        for rs in alive.into_iter().take(usize::try_from(excess).unwrap_or(0)) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if util::status_replicas(rs) != 0 || util::size(rs) != 0 || rs.meta().generation.unwrap_or(0) > observed {
                continue;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            let dp = DeleteParams {
                preconditions: Some(Preconditions { uid: rs.metadata.uid.clone(), resource_version: None }),
                ..Default::default()
            };
            match self.replica_sets().delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(source) => {
                    first_error.get_or_insert(DeploymentError::DeleteReplicaSet { name, source });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `syncDeploymentStatus`: writes the computed status if it differs.
    pub async fn sync_status(&mut self, all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Result<(), DeploymentError> {
        let status = progress::calculate_status(all, new, &self.d, Timestamp::now());
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.update_status().await
    }

    /// `syncRolloutStatus`: writes the computed status with the Progressing condition if it differs; when it
    /// does not and the rollout is stuck, asks to be looked at again by the progress deadline.
    pub async fn sync_rollout_status(
        &mut self,
        all: &[&ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<Action, DeploymentError> {
        let now = Timestamp::now();
        let status = progress::rollout_status(all, new, &self.d, now);
        if self.d.status.as_ref() == Some(&status) {
            return Ok(progress::stuck_requeue(&self.d, &status, now).map_or(Action::Done, Action::RequeueAfter));
        }
        self.d.status = Some(status);
        self.update_status().await?;
        Ok(Action::Done)
    }

    /// `checkPausedConditions`: a Progressing condition of status Unknown while paused, and when resumed.
    pub async fn check_paused_conditions(&mut self) -> Result<(), DeploymentError> {
        if !util::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let why = self
            .d
            .status
            .as_ref()
            .and_then(|st| util::condition(st, reason::PROGRESSING))
            .and_then(|c| c.reason.as_deref());
        if why == Some(reason::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = why == Some(reason::PAUSED);
        if paused && !paused_cond {
            self.set_progressing("Unknown", reason::PAUSED, "Deployment is paused".into()).await
        } else if !paused && paused_cond {
            self.set_progressing("Unknown", reason::RESUMED, "Deployment is resumed".into()).await
        } else {
            Ok(())
        }
    }
}
