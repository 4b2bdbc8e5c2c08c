//! A controller's own EndpointSlices, as the EndpointSlice and the mirroring controllers both handle
//! them (by their `endpointslice.kubernetes.io/managed-by` label): finding them in the cache, the
//! Services their changes concern, and writing a plan, every write recorded with the
//! [`EndpointSliceTracker`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use knet_apimachinery::labels::Selector;
use kube::api::{Api, DeleteParams, PostParams};

use super::controller::EndpointSliceError;
use super::render::SliceWrites;
use super::tracker::{service_key, EndpointSliceTracker};
use super::util::{is_namespace_terminating, is_not_found, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::runtime::{Change, ObjectKey, Store};

/// Whether `slice` is managed by `manager`.
pub fn is_managed_by(slice: &EndpointSlice, manager: &str) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(manager)
}

/// The slices of Service `name` in `namespace` managed by `managed_by`, without those being deleted.
pub fn managed_slices(
    store: &Store<EndpointSlice>,
    namespace: &str,
    name: &str,
    managed_by: &str,
) -> Vec<Arc<EndpointSlice>> {
    let set: BTreeMap<String, String> =
        [(LABEL_SERVICE_NAME.to_string(), name.to_string()), (LABEL_MANAGED_BY.to_string(), managed_by.to_string())]
            .into();
    store
        .select(namespace, &Selector::from_set(&set))
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The Services of every cached slice `manager` manages: at start, those of Services deleted while the
/// controller was down are among them.
pub fn managed_services(store: &Store<EndpointSlice>, manager: &str) -> Vec<ObjectKey> {
    store.list().iter().filter(|s| is_managed_by(s, manager)).filter_map(|s| service_key(s)).collect()
}

/// The Services to reconcile after a slice change: those of slices `manager` manages that changed in a
/// way it did not write itself, or that changed hands.
pub fn services_for_slice_change(
    change: &Change<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    manager: &str,
) -> Vec<ObjectKey> {
    match (change.old.as_deref(), change.new.as_deref()) {
        (_, Some(new)) => {
            if let Some(old) = change.old.as_deref() {
                if is_managed_by(old, manager) != is_managed_by(new, manager) || service_key(old) != service_key(new) {
                    return service_key(old).into_iter().chain(service_key(new)).collect();
                }
            }
            if is_managed_by(new, manager) && tracker.should_sync(new) {
                service_key(new).into_iter().collect()
            } else {
                Vec::new()
            }
        }
        (Some(old), None) => {
            if is_managed_by(old, manager) && !tracker.handle_deletion(old) {
                service_key(old).into_iter().collect()
            } else {
                Vec::new()
            }
        }
        (None, None) => Vec::new(),
    }
}

/// Carries out `writes` for the slices of the Service `key`: creates, then updates, then deletes, each
/// recorded with `tracker`. A create refused because the namespace is terminating ends the writes
/// without an error (they would keep failing: the key is dropped).
pub async fn write_slices(
    api: &Api<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    key: &ObjectKey,
    writes: SliceWrites,
) -> Result<(), EndpointSliceError> {
    for s in &writes.create {
        match api.create(&PostParams::default(), s).await {
            Ok(created) => tracker.update(&created),
            Err(e) if is_namespace_terminating(&e) => return Ok(()),
            Err(source) => return Err(EndpointSliceError::Create { key: key.clone(), source }),
        }
    }
    for s in &writes.update {
        let name = s.metadata.name.clone().unwrap_or_default();
        match api.replace(&name, &PostParams::default(), s).await {
            Ok(updated) => tracker.update(&updated),
            Err(source) => return Err(EndpointSliceError::Update { key: key.clone(), name, source }),
        }
    }
    delete_slices(api, tracker, key, &writes.delete).await
}

/// Deletes `slices`, recording each with `tracker`; a slice already gone is fine.
pub async fn delete_slices(
    api: &Api<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    key: &ObjectKey,
    slices: &[Arc<EndpointSlice>],
) -> Result<(), EndpointSliceError> {
    for s in slices {
        let name = s.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracker.expect_deletion(s),
            Err(e) if is_not_found(&e) => tracker.expect_deletion(s),
            Err(source) => return Err(EndpointSliceError::Delete { key: key.clone(), name, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(service: &str, manager: &str, uid: &str, generation: i64) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": uid, "namespace": "d", "uid": uid,
                "generation": generation, "labels": {LABEL_SERVICE_NAME: service, LABEL_MANAGED_BY: manager}},
                "addressType": "IPv4", "endpoints": []}))
            .expect("slice"),
        )
    }

    fn names(keys: Vec<ObjectKey>) -> Vec<String> {
        keys.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn slice_changes_map_to_the_services_that_need_a_reconcile() {
        let t = EndpointSliceTracker::new();
        let change = |old: Option<Arc<EndpointSlice>>, new: Option<Arc<EndpointSlice>>| Change { old, new };
        let ours = slice("web", "me", "a", 1);
        assert_eq!(names(services_for_slice_change(&change(None, Some(ours.clone())), &t, "me")), ["web"]);
        t.update(&ours);
        assert!(services_for_slice_change(&change(None, Some(ours.clone())), &t, "me").is_empty(), "our echo");
        let edited = slice("web", "me", "a", 2);
        assert_eq!(names(services_for_slice_change(&change(Some(ours.clone()), Some(edited)), &t, "me")), ["web"]);
        let theirs = slice("db", "other", "b", 1);
        assert!(services_for_slice_change(&change(None, Some(theirs.clone())), &t, "me").is_empty());
        let taken = slice("web", "other", "a", 3);
        assert_eq!(
            names(services_for_slice_change(&change(Some(ours.clone()), Some(taken)), &t, "me")),
            ["web", "web"],
            "a slice that changed hands"
        );
        t.expect_deletion(&ours);
        assert!(services_for_slice_change(&change(Some(ours), None), &t, "me").is_empty(), "our own delete");
        let lost = slice("db", "me", "c", 1);
        t.update(&lost);
        assert_eq!(names(services_for_slice_change(&change(Some(lost), None), &t, "me")), ["db"]);
    }

    #[test]
    fn managed_slices_and_their_services_come_from_the_cache() {
        let store = Store::new();
        store.apply(slice("web", "me", "a", 1));
        store.apply(slice("web", "other", "b", 1));
        store.apply(slice("gone", "me", "c", 1));
        let ours: Vec<_> = managed_slices(&store, "d", "web", "me").iter().map(|s| s.metadata.name.clone()).collect();
        assert_eq!(ours, [Some("a".to_string())]);
        assert!(managed_slices(&store, "e", "web", "me").is_empty());
        let mut services = names(managed_services(&store, "me"));
        services.sort();
        assert_eq!(services, ["gone", "web"]);
    }
}
