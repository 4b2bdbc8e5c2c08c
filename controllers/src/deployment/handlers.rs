//! Which Deployments a ReplicaSet or pod change concerns (upstream `addReplicaSet` / `updateReplicaSet` /
//! `deleteReplicaSet` / `deletePod`): a ReplicaSet's controlling Deployment, or — for an orphan — every
//! Deployment whose selector matches it, so it can be adopted; a pod of a Recreate Deployment, which waits
//! for its old pods to be gone.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::{fenceposts, util};
use crate::replicaset::{owners, pods};
use crate::runtime::{Change, ObjectKey, Store};

fn owning_deployment(rs: &ReplicaSet, deployments: &Store<Deployment>) -> Option<ObjectKey> {
    owners::resolve(&rs.metadata, deployments)
}

/// `getDeploymentsForReplicaSet`: Deployments of the namespace whose non-empty selector matches the labels.
fn selecting(rs: &ReplicaSet, deployments: &Store<Deployment>) -> Vec<ObjectKey> {
    owners::selecting(&rs.metadata, deployments, util::selector)
}

/// The Deployments to sync after a ReplicaSet change.
pub fn replica_set_change(change: &Change<ReplicaSet>, deployments: &Store<Deployment>) -> Vec<ObjectKey> {
    match (change.old.as_deref(), change.new.as_deref()) {
        (None, Some(new)) => match owning_deployment(new, deployments) {
            Some(key) => vec![key],
            None if pods::controller_of(&new.metadata).is_none() && new.metadata.deletion_timestamp.is_none() => {
                selecting(new, deployments)
            }
            None => Vec::new(),
        },
        (Some(old), Some(new)) => owners::updated(&old.metadata, &new.metadata, deployments, util::selector),
        (Some(old), None) => owning_deployment(old, deployments).into_iter().collect(),
        (None, None) => Vec::new(),
    }
}

/// The Deployments to sync after a pod change: a Recreate Deployment waits for its old pods to go.
pub fn pod_change(
    change: &Change<Pod>,
    deployments: &Store<Deployment>,
    replica_sets: &Store<ReplicaSet>,
) -> Vec<ObjectKey> {
    let Some(pod) = change.new.as_deref().or(change.old.as_deref()) else { return Vec::new() };
    let gone =
        change.new.is_none() || change.new.as_deref().is_some_and(|p| matches!(pods::phase(p), "Succeeded" | "Failed"));
    if !gone {
        return Vec::new();
    }
    let Some(rs_key) = owners::resolve(&pod.metadata, replica_sets) else { return Vec::new() };
    let Some(rs) = replica_sets.get(&rs_key) else { return Vec::new() };
    let Some(key) = owning_deployment(&rs, deployments) else { return Vec::new() };
    match deployments.get(&key) {
        Some(d) if fenceposts::strategy_type(&d) == "Recreate" => vec![key],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::{deployment, rs};
    use std::sync::Arc;

    #[test]
    fn replica_sets_wake_their_deployment_and_orphans_wake_matches() {
        let deployments = Store::new();
        let d = deployment("web", 2, "Recreate", None);
        deployments.apply(Arc::new(d.clone()));
        let mut owned = rs("web-1", 2, 2, 2, 1);
        owned.metadata.owner_references = Some(vec![pods::controller_ref(&d)]);
        let owned = Arc::new(owned);
        let key = ObjectKey::new("ns", "web");
        let add = Change { old: None, new: Some(owned.clone()) };
        assert_eq!(replica_set_change(&add, &deployments), vec![key.clone()]);
        let mut orphan = rs("stray", 1, 1, 1, 1);
        orphan.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        let add = Change { old: None, new: Some(Arc::new(orphan)) };
        assert_eq!(replica_set_change(&add, &deployments), vec![key.clone()]);
        let del = Change { old: Some(owned.clone()), new: None };
        assert_eq!(replica_set_change(&del, &deployments), vec![key.clone()]);

        // A pod of the Recreate Deployment going away wakes it.
        let rss = Store::new();
        rss.apply(owned.clone());
        let mut p = Pod::default();
        p.metadata.namespace = Some("ns".into());
        p.metadata.owner_references = Some(vec![pods::controller_ref(owned.as_ref())]);
        let gone = Change { old: Some(Arc::new(p.clone())), new: None };
        assert_eq!(pod_change(&gone, &deployments, &rss), vec![key]);
        let update = Change { old: Some(Arc::new(p.clone())), new: Some(Arc::new(p)) };
        assert!(pod_change(&update, &deployments, &rss).is_empty());
    }
}
