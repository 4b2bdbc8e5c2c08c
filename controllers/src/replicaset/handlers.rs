//! Which ReplicaSets (or RCs) a pod change concerns (upstream `addPod` / `updatePod` / `deletePod`), and the
//! expectations that change satisfies: a pod appearing is an observed creation of its controller, a pod
//! being deleted (deletionTimestamp set) or gone is an observed deletion. Orphans wake every controller whose
//! selector matches them, so they are adopted.

use k8s_openapi::api::core::v1::Pod;

use super::expectations::Expectations;
use super::workload::ReplicaController;
use super::{owners, pods};
use crate::runtime::{Change, ObjectKey, Store};

/// The cached controller of `pod` of kind `K`.
fn resolve<K: ReplicaController>(pod: &Pod, owners: &Store<K>) -> Option<ObjectKey> {
    owners::resolve(&pod.metadata, owners)
}

/// Every controller in the pod's namespace whose (non-empty) selector matches its labels.
fn selecting<K: ReplicaController>(pod: &Pod, owners: &Store<K>) -> Vec<ObjectKey> {
    owners::selecting(&pod.metadata, owners, K::selector)
}

fn deleted<K: ReplicaController>(pod: &Pod, owners: &Store<K>, exp: &Expectations<ObjectKey>) -> Vec<ObjectKey> {
    match resolve(pod, owners) {
        Some(key) => {
            exp.deletion_observed(&key, &pods::pod_key(pod));
            vec![key]
        }
        None => Vec::new(),
    }
}

/// The controllers to reconcile after `change`, recording what it tells the expectations.
pub fn pod_change<K: ReplicaController>(
    change: &Change<Pod>,
    owners: &Store<K>,
    exp: &Expectations<ObjectKey>,
) -> Vec<ObjectKey> {
    match (change.old.as_deref(), change.new.as_deref()) {
        (None, Some(new)) => {
            if new.metadata.deletion_timestamp.is_some() {
                // Seen for the first time already being deleted (e.g. after a restart): not a creation.
                return deleted(new, owners, exp);
            }
            match resolve(new, owners) {
                Some(key) => {
                    exp.creation_observed(&key);
                    vec![key]
                }
                None if pods::controller_of(&new.metadata).is_none() => selecting(new, owners),
                None => Vec::new(),
            }
        }
        (Some(old), Some(new)) => {
            let labels_changed = old.metadata.labels != new.metadata.labels;
            if new.metadata.deletion_timestamp.is_some() {
                let mut keys = deleted(new, owners, exp);
                if labels_changed {
                    keys.extend(deleted(old, owners, exp));
                }
                return keys;
            }
            owners::updated(&old.metadata, &new.metadata, owners, K::selector)
        }
        (Some(old), None) => deleted(old, owners, exp),
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::Arc;

    fn rs(name: &str, uid: &str, app: &str) -> Arc<ReplicaSet> {
        Arc::new(owners::tests::rs(name, uid, Some(app)))
    }

    fn pod(name: &str, app: &str, owner: Option<&ReplicaSet>) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.namespace = Some("ns".into());
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        p.metadata.owner_references = owner.map(|o| vec![pods::controller_ref(o)]);
        Arc::new(p)
    }

    fn change(old: Option<Arc<Pod>>, new: Option<Arc<Pod>>) -> Change<Pod> {
        Change { old, new }
    }

    #[test]
    fn creations_deletions_and_orphans() {
        let store = Store::new();
        let web = rs("web", "u-web", "web");
        store.apply(web.clone());
        store.apply(rs("db", "u-db", "db"));
        let exp = Expectations::new();
        let key = ObjectKey::new("ns", "web");
        exp.expect_creations(&key, 1);
        let p = pod("web-1", "web", Some(&web));
        assert_eq!(pod_change(&change(None, Some(p.clone())), &store, &exp), vec![key.clone()]);
        assert!(exp.satisfied(&key));

        exp.expect_deletions(&key, ["ns/web-1".to_string()]);
        let mut deleting = (*p).clone();
        deleting.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(pod_change(&change(Some(p.clone()), Some(Arc::new(deleting))), &store, &exp), vec![key.clone()]);
        assert!(exp.satisfied(&key), "a deletionTimestamp is an observed deletion");

        // An orphan wakes the controllers that select it; one owned by someone else wakes nobody.
        let orphan = pod("stray", "db", None);
        assert_eq!(pod_change(&change(None, Some(orphan.clone())), &store, &exp), vec![ObjectKey::new("ns", "db")]);
        let foreign = rs("other", "u-other", "db");
        assert!(pod_change(&change(None, Some(pod("x", "db", Some(&foreign)))), &store, &exp).is_empty());

        // Relabelling an owned pod wakes its owner (which will release it).
        let relabelled = pod("web-1", "db", Some(&web));
        assert_eq!(pod_change(&change(Some(p.clone()), Some(relabelled)), &store, &exp), vec![key.clone()]);
        // An orphan relabelled into a selector wakes the new match.
        assert_eq!(
            pod_change(&change(Some(pod("s", "none", None)), Some(pod("s", "web", None))), &store, &exp),
            vec![key.clone()]
        );
        assert_eq!(pod_change(&change(Some(p), None), &store, &exp), vec![key]);
    }
}
