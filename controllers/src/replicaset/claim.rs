//! ControllerRef management (upstream `ControllerRefManager`): a controller claims the objects its selector
//! matches — adopting orphans, releasing what it owns but no longer selects, and leaving alone what another
//! controller owns. Used by the ReplicaSet/ReplicationController controllers for pods and by the Deployment
//! controller for ReplicaSets.
//!
//! Adoption and release are strategic merge patches of `metadata.ownerReferences` (merge key `uid`) that
//! also carry the object's `uid`, so they never land on a newer object of the same name.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::NamespaceResourceScope;
use knet_apimachinery::labels::Selector;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::pods::{controller_of, controller_ref};

/// Why claiming objects failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The fresh read of the owner before adopting failed.
    #[error("reading {kind} {namespace}/{name} before adopting: {source}")]
    Recheck { kind: String, namespace: String, name: String, source: kube::Error },
    /// The owner was replaced by another object of the same name.
    #[error("original {kind} {namespace}/{name} is gone: got uid {got}, wanted {wanted}")]
    Gone { kind: String, namespace: String, name: String, got: String, wanted: String },
    /// The owner is being deleted, so it may not adopt.
    #[error("{kind} {namespace}/{name} has just been deleted")]
    Deleting { kind: String, namespace: String, name: String },
    /// Patching an object's owner references failed.
    #[error("{action} {kind} {namespace}/{name}: {source}")]
    Patch { action: &'static str, kind: String, namespace: String, name: String, source: kube::Error },
}

/// What a controller does with one candidate object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It already owns the object and selects it.
    Owned,
    /// An orphan it selects: adopt it.
    Adopt,
    /// It owns the object but no longer selects it: release it.
    Release,
    /// Not its business (owned by another controller, not selected, or being deleted).
    Ignore,
}

/// The owner side of a claim: who is claiming.
#[derive(Clone, Copy, Debug)]
pub struct Claimant<'a> {
    /// The claiming controller's UID.
    pub uid: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Whether it is being deleted (then it neither adopts nor releases).
    pub deleting: bool,
}

impl<'a> Claimant<'a> {
    /// The claimant described by an object's metadata.
    pub fn of(meta: &'a ObjectMeta) -> Self {
        Claimant {
            uid: meta.uid.as_deref().unwrap_or(""),
            namespace: meta.namespace.as_deref().unwrap_or(""),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

/// `ClaimObject`'s decision for an object with metadata `obj` that the claimant's selector does (`matches`)
/// or does not select.
pub fn decide(claimant: Claimant<'_>, obj: &ObjectMeta, matches: bool) -> Claim {
    if let Some(owner) = controller_of(obj) {
        if owner.uid != claimant.uid {
            return Claim::Ignore;
        }
        if matches {
            return Claim::Owned;
        }
        return if claimant.deleting { Claim::Ignore } else { Claim::Release };
    }
    if claimant.deleting || !matches || obj.deletion_timestamp.is_some() {
        return Claim::Ignore;
    }
    if obj.namespace.as_deref().unwrap_or("") != claimant.namespace {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// Makes `owner` the controller of object `name` (whose UID is `uid`).
pub async fn adopt<K>(api: &Api<K>, name: &str, uid: &str, owner: &OwnerReference) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"ownerReferences": [owner], "uid": uid}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch)).await.map(|_| ())
}

/// Removes the owner reference with UID `owner_uid` from object `name` (whose UID is `uid`).
pub async fn release<K>(api: &Api<K>, name: &str, uid: &str, owner_uid: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch)).await.map(|_| ())
}

/// `ClaimPods` / `ClaimReplicaSets`: the objects among `candidates` that `owner` controls once its selector
/// has been applied — adopting orphans it selects and releasing what it owns but no longer selects. Before
/// the first adoption the owner is read again from the API, so a controller being deleted never adopts.
/// Every candidate is handled; the first error is returned after all were tried.
pub async fn claim_all<O, T>(
    client: &Client,
    owner: &O,
    selector: &Selector,
    candidates: &[Arc<T>],
) -> Result<Vec<Arc<T>>, ClaimError>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    T: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let meta = owner.meta();
    let claimant = Claimant::of(meta);
    let owner_name = meta.name.clone().unwrap_or_default();
    let owner_kind = O::kind(&()).into_owned();
    let objects: Api<T> = Api::namespaced(client.clone(), claimant.namespace);
    let mut claimed = Vec::new();
    let mut first_error = None;
    let mut may_adopt: Option<bool> = None;
    for obj in candidates {
        let m = obj.meta();
        let empty = Default::default();
        let labels = m.labels.as_ref().unwrap_or(&empty);
        let name = m.name.as_deref().unwrap_or("");
        let uid = m.uid.as_deref().unwrap_or("");
        let patch_error = |action, source| ClaimError::Patch {
            action,
            kind: T::kind(&()).into_owned(),
            namespace: claimant.namespace.to_string(),
            name: name.to_string(),
            source,
        };
        match decide(claimant, m, selector.matches(labels)) {
            Claim::Owned => claimed.push(obj.clone()),
            Claim::Ignore => {}
            Claim::Adopt => {
                if may_adopt.is_none() {
                    let check = recheck(client, owner, &owner_kind, &owner_name).await;
                    may_adopt = Some(check.is_ok());
                    if let Err(e) = check {
                        first_error.get_or_insert(e);
                    }
                }
                if may_adopt != Some(true) {
                    continue;
                }
                match adopt(&objects, name, uid, &controller_ref(owner)).await {
                    Ok(()) => claimed.push(obj.clone()),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        first_error.get_or_insert(patch_error("adopting", e));
                    }
                }
            }
            Claim::Release => match release(&objects, name, uid, claimant.uid).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    first_error.get_or_insert(patch_error("releasing", e));
                }
            },
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(claimed),
    }
}

/// `RecheckDeletionTimestamp`: the owner, read fresh, is the same object and not being deleted.
async fn recheck<O>(client: &Client, owner: &O, kind: &str, name: &str) -> Result<(), ClaimError>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let meta = owner.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let api: Api<O> = Api::namespaced(client.clone(), &namespace);
    let err_ctx = || (kind.to_string(), namespace.clone(), name.to_string());
    let fresh = api.get(name).await.map_err(|source| {
        let (kind, namespace, name) = err_ctx();
        ClaimError::Recheck { kind, namespace, name, source }
    })?;
    let (got, wanted) = (fresh.meta().uid.clone().unwrap_or_default(), meta.uid.clone().unwrap_or_default());
    if got != wanted {
        let (kind, namespace, name) = err_ctx();
        return Err(ClaimError::Gone { kind, namespace, name, got, wanted });
    }
    if fresh.meta().deletion_timestamp.is_some() {
        let (kind, namespace, name) = err_ctx();
        return Err(ClaimError::Deleting { kind, namespace, name });
    }
    Ok(())
}

/// Whether a kube error is a 404 (the object is gone; claims ignore it).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(ns: &str, owner: Option<(&str, bool)>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            uid: Some("obj".into()),
            owner_references: owner.map(|(uid, controller)| {
                vec![OwnerReference { uid: uid.into(), controller: Some(controller), ..Default::default() }]
            }),
            deletion_timestamp: deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_controller_ref_manager() {
        let me = Claimant { uid: "me", namespace: "ns", deleting: false };
        let gone = Claimant { deleting: true, ..me };
        assert_eq!(decide(me, &meta("ns", Some(("me", true)), false), true), Claim::Owned);
        assert_eq!(decide(me, &meta("ns", Some(("me", true)), false), false), Claim::Release);
        assert_eq!(decide(gone, &meta("ns", Some(("me", true)), false), false), Claim::Ignore);
        assert_eq!(decide(me, &meta("ns", Some(("other", true)), false), true), Claim::Ignore);
        assert_eq!(decide(me, &meta("ns", None, false), true), Claim::Adopt);
        assert_eq!(decide(me, &meta("ns", Some(("other", false)), false), true), Claim::Adopt, "not a controller ref");
        assert_eq!(decide(me, &meta("ns", None, false), false), Claim::Ignore);
        assert_eq!(decide(me, &meta("ns", None, true), true), Claim::Ignore, "orphans being deleted stay orphans");
        assert_eq!(decide(gone, &meta("ns", None, false), true), Claim::Ignore);
        assert_eq!(decide(me, &meta("other-ns", None, false), true), Claim::Ignore);
    }
}
