//! The doing half of the garbage collector: the two work queues (attempt to delete, attempt to orphan, as
//! upstream garbagecollector.go) and their reconcilers, which verify with live GETs before any write. An
//! owner missing from the watch caches is not proof it is gone: only a GET that answers 404, or an object
//! with another uid, is.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Api, Client};

use super::decide::{self, Decision, OwnerState, Propagation};
use super::discovery::{ServedResource, ServedResources};
use super::graph::{Graph, Identity, Work, FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use super::GarbageCollectorError as Error;
use crate::runtime::{Action, Reconciler, WorkQueue};

/// Shared state of the garbage collector.
pub struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    resources: RwLock<ServedResources>,
    /// Objects to check for deletion, by uid.
    pub attempt_to_delete: WorkQueue<String>,
    /// Owners to orphan, by uid.
    pub attempt_to_orphan: WorkQueue<String>,
}

impl Collector {
    /// A collector with an empty graph.
    pub fn new(client: Client, resources: ServedResources) -> Self {
        Collector {
            client,
            graph: Mutex::new(Graph::new()),
            resources: RwLock::new(resources),
            attempt_to_delete: WorkQueue::new(),
            attempt_to_orphan: WorkQueue::new(),
        }
    }

    /// The graph, locked. Hold it only for in-memory work, never across an await.
    pub fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the discovered resources.
    pub fn set_resources(&self, resources: ServedResources) {
        *self.resources.write().unwrap_or_else(|e| e.into_inner()) = resources;
    }

    /// Queues the work a graph change asked for.
    pub fn enqueue(&self, work: Work) {
        for uid in work.attempt_to_delete {
            self.attempt_to_delete.add(uid);
        }
        for uid in work.attempt_to_orphan {
            self.attempt_to_orphan.add(uid);
        }
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<ServedResource> {
        self.resources.read().unwrap_or_else(|e| e.into_inner()).resolve(api_version, kind).cloned()
    }

    /// The dynamic API for the object `id` (its namespace is ignored for cluster-scoped kinds).
    fn api(&self, id: &Identity) -> Result<Api<DynamicObject>, Error> {
        let res = self
            .resolve(&id.api_version, &id.kind)
            .ok_or_else(|| Error::UnknownKind { api_version: id.api_version.clone(), kind: id.kind.clone() })?;
        Ok(if res.namespaced {
            Api::namespaced_with(self.client.clone(), &id.namespace, &res.ar)
        } else {
            Api::all_with(self.client.clone(), &res.ar)
        })
    }

    /// The live metadata of `id`; `None` when it is gone or has another uid.
    async fn get_live(&self, id: &Identity) -> Result<Option<PartialObjectMeta<DynamicObject>>, Error> {
        let api = self.api(id)?;
        let found =
            api.get_metadata_opt(&id.name).await.map_err(|source| Error::Get { what: id.to_string(), source })?;
        Ok(found.filter(|o| o.metadata.uid.as_deref() == Some(id.uid.as_str())))
    }

    /// Verifies one owner reference of an object in `namespace`.
    async fn classify(&self, r: &OwnerReference, namespace: &str) -> Result<OwnerState, Error> {
        let mut id = Identity::of_owner(r, namespace);
        if self.resolve(&id.api_version, &id.kind).is_some_and(|res| !res.namespaced) {
            id.namespace.clear();
        }
        if self.graph().is_absent(&id) {
            return Ok(OwnerState::Dangling);
        }
        match self.get_live(&id).await? {
            None => {
                self.graph().mark_absent(id);
                Ok(OwnerState::Dangling)
            }
            Some(owner) => {
                let m = &owner.metadata;
                let foreground = m.finalizers.iter().flatten().any(|f| f == FINALIZER_FOREGROUND);
                if m.deletion_timestamp.is_some() && foreground {
                    Ok(OwnerState::WaitingForDependentsDeletion)
                } else {
                    Ok(OwnerState::Solid)
                }
            }
        }
    }

    async fn patch_meta(&self, id: &Identity, patch: serde_json::Value) -> Result<(), Error> {
        let api = self.api(id)?;
        match api.patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(Error::Patch { what: id.to_string(), source }),
        }
    }

    /// Sets the owner references of `id` (at `resource_version`, so a concurrent change is a conflict).
    async fn set_owner_references(
        &self,
        id: &Identity,
        resource_version: Option<&str>,
        refs: &[OwnerReference],
    ) -> Result<(), Error> {
        let patch = serde_json::json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": refs}});
        self.patch_meta(id, patch).await
    }

    /// Removes `finalizer` from `id` (at `resource_version`).
    async fn remove_finalizer(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
        finalizer: &str,
    ) -> Result<(), Error> {
        let finalizers: Vec<&String> =
            latest.metadata.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": latest.metadata.resource_version,
            "finalizers": finalizers,
        }});
        self.patch_meta(id, patch).await
    }

    async fn delete(&self, id: &Identity, resource_version: Option<String>, p: Propagation) -> Result<(), Error> {
        let api = self.api(id)?;
        let dp = DeleteParams {
            propagation_policy: Some(match p {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            preconditions: Some(Preconditions { uid: Some(id.uid.clone()), resource_version }),
            ..Default::default()
        };
        tracing::info!(object = %id, propagation = ?p, "garbage collector: deleting object whose owners are gone");
        match api.delete(&id.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete { what: id.to_string(), source }),
        }
    }

    /// Drops `id` from the graph after a live GET found it gone, and queues what that implies.
    fn verified_absent(&self, id: &Identity) {
        let work = self.graph().virtual_delete(id);
        self.enqueue(work);
    }

    /// upstream attemptToDeleteItem.
    async fn attempt_to_delete_item(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().node(uid).cloned() else { return Ok(Action::Done) };
        if node.observed && node.being_deleted && !node.deleting_dependents {
            return Ok(Action::Done);
        }
        if self.graph().owners_alive(uid) {
            return Ok(Action::Done);
        }
        let Some(latest) = self.get_live(&node.identity).await? else {
            self.verified_absent(&node.identity);
            return Ok(Action::Done);
        };
        if !node.observed {
            // The owner exists but no watch reported it yet: check again once it has.
            return Err(Error::NotObserved(node.identity.to_string()));
        }
        let meta = &latest.metadata;
        let foreground = meta.finalizers.iter().flatten().any(|f| f == FINALIZER_FOREGROUND);
        if meta.deletion_timestamp.is_some() && foreground {
            return self.process_deleting_dependents(&node.identity, &latest).await;
        }
        if meta.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let refs = meta.owner_references.clone().unwrap_or_default();
        let mut owners = Vec::with_capacity(refs.len());
        for r in refs.iter() {
            owners.push((r.clone(), self.classify(r, &node.identity.namespace).await?));
        }
        let (has_dependents, dependent_deleting) = {
            let g = self.graph();
            (!g.dependents(uid).is_empty(), g.has_dependent_deleting_dependents(uid))
        };
        let finalizers = meta.finalizers.clone().unwrap_or_default();
        match decide::decide(&finalizers, &owners, has_dependents, dependent_deleting) {
            Decision::Nothing => {}
            Decision::RemoveOwnerReferences(uids) => {
                tracing::info!(object = %node.identity, owners = ?uids, "garbage collector: removing references to owners that are gone");
                let kept = decide::without_owners(&refs, &uids);
                self.set_owner_references(&node.identity, meta.resource_version.as_deref(), &kept).await?;
            }
            Decision::Delete { propagation, unblock_owners } => {
                let mut rv = meta.resource_version.clone();
                if unblock_owners {
                    self.set_owner_references(&node.identity, rv.as_deref(), &decide::unblocked(&refs)).await?;
                    rv = None;
                }
                self.delete(&node.identity, rv, propagation).await?;
            }
        }
        Ok(Action::Done)
    }

    /// An owner deleted in the foreground: remove its finalizer once no blocking dependent is left, else
    /// make sure each blocking dependent is being deleted.
    async fn process_deleting_dependents(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
    ) -> Result<Action, Error> {
        let blocking = self.graph().blocking_dependents(&id.uid);
        if blocking.is_empty() {
            tracing::info!(object = %id, "garbage collector: no blocking dependents left; removing the foregroundDeletion finalizer");
            self.remove_finalizer(id, latest, FINALIZER_FOREGROUND).await?;
            return Ok(Action::Done);
        }
        let g = self.graph();
        for dep in blocking {
            if g.node(&dep).is_some_and(|d| !d.deleting_dependents) {
                self.attempt_to_delete.add(dep);
            }
        }
        Ok(Action::Done)
    }

    /// upstream attemptToOrphanWorker: remove the owner's uid from each dependent's references, then the
    /// `orphan` finalizer from the owner.
    async fn attempt_to_orphan_item(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().node(uid).cloned() else { return Ok(Action::Done) };
        let Some(latest) = self.get_live(&node.identity).await? else {
            self.verified_absent(&node.identity);
            return Ok(Action::Done);
        };
        let orphan = latest.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER_ORPHAN);
        if latest.metadata.deletion_timestamp.is_none() || !orphan {
            return Ok(Action::Done);
        }
        let dependents: Vec<Identity> = {
            let g = self.graph();
            g.dependents(uid)
                .iter()
                .filter_map(|d| g.node(d))
                .filter(|d| d.observed)
                .map(|d| d.identity.clone())
                .collect()
        };
        for dep in dependents {
            let Some(live) = self.get_live(&dep).await? else { continue };
            let refs = live.metadata.owner_references.clone().unwrap_or_default();
            if !refs.iter().any(|r| r.uid == uid) {
                continue;
            }
            let kept = decide::without_owners(&refs, &[uid.to_string()]);
            self.set_owner_references(&dep, live.metadata.resource_version.as_deref(), &kept).await?;
        }
        tracing::info!(object = %node.identity, "garbage collector: dependents orphaned; removing the orphan finalizer");
        self.remove_finalizer(&node.identity, &latest, FINALIZER_ORPHAN).await?;
        Ok(Action::Done)
    }
}

/// One of the collector's two queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Objects to check for deletion.
    Delete,
    /// Owners whose dependents are to be orphaned.
    Orphan,
}

impl Collector {
    /// The queue of `attempt`.
    pub fn queue(&self, attempt: Attempt) -> &WorkQueue<String> {
        match attempt {
            Attempt::Delete => &self.attempt_to_delete,
            Attempt::Orphan => &self.attempt_to_orphan,
        }
    }
}

/// The workers of one of the collector's queues.
pub struct AttemptWorkers {
    /// The collector.
    pub gc: Arc<Collector>,
    /// Which queue.
    pub attempt: Attempt,
}

impl Reconciler for AttemptWorkers {
    type Key = String;
    type Error = Error;

    fn name(&self) -> &'static str {
        match self.attempt {
            Attempt::Delete => "garbagecollector",
            Attempt::Orphan => "garbagecollector-orphan",
        }
    }

    async fn reconcile(&self, uid: &String) -> Result<Action, Error> {
        match self.attempt {
            Attempt::Delete => self.gc.attempt_to_delete_item(uid).await,
            Attempt::Orphan => self.gc.attempt_to_orphan_item(uid).await,
        }
    }
}
