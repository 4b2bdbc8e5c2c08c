//! Which controllers in the caches an object concerns, for the event handlers of the workload controllers:
//! its controller (upstream `resolveControllerRef`) or — for an orphan, so it can be adopted — every
//! controller of the namespace whose selector matches its labels (`getPodReplicaSets`,
//! `getDeploymentsForReplicaSet`). Serves pods → ReplicaSets/RCs and ReplicaSets → Deployments alike.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use knet_apimachinery::labels::{LabelSelectorError, Selector};
use kube::Resource;

use super::pods;
use crate::runtime::{ObjectKey, Store};

/// The group of an `apiVersion` ("" for the core group).
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The cached controller of kind `K` of the object with metadata `meta`, if its controller reference points
/// at one that exists with that UID.
pub fn resolve<K: Resource<DynamicType = ()>>(meta: &ObjectMeta, owners: &Store<K>) -> Option<ObjectKey> {
    let r = pods::controller_of(meta)?;
    if r.kind != K::kind(&()) || group(&r.api_version) != K::group(&()) {
        return None;
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let owner = owners.get_named(namespace, &r.name)?;
    (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then(|| ObjectKey::new(namespace, &r.name))
}

/// Every controller in the namespace of `meta` whose selector (as `selector` reads it) is valid, not empty,
/// and matches the object's labels.
pub fn selecting<K: Resource>(
    meta: &ObjectMeta,
    owners: &Store<K>,
    selector: impl Fn(&K) -> Result<Selector, LabelSelectorError>,
) -> Vec<ObjectKey> {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let empty = Default::default();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    owners
        .list_namespace(namespace)
        .iter()
        .filter(|o| selector(o).is_ok_and(|s| !s.is_everything() && s.matches(labels)))
        .map(|o| ObjectKey::of(o.as_ref()))
        .collect()
}

/// The controllers to sync after an update of an object (upstream `updatePod` / `updateReplicaSet`): its
/// former controller when the controller reference changed, and its controller — or, for an orphan whose
/// labels or reference changed, every controller selecting it, which may adopt it.
pub fn updated<K: Resource<DynamicType = ()>>(
    old: &ObjectMeta,
    new: &ObjectMeta,
    owners: &Store<K>,
    selector: impl Fn(&K) -> Result<Selector, LabelSelectorError>,
) -> Vec<ObjectKey> {
    let new_ref = pods::controller_of(new);
    let ref_changed = pods::controller_of(old) != new_ref;
    let mut keys = Vec::new();
    if ref_changed {
        keys.extend(resolve(old, owners));
    }
    if let Some(key) = resolve(new, owners) {
        keys.push(key);
    } else if new_ref.is_none() && (ref_changed || old.labels != new.labels) {
        keys.extend(selecting(new, owners, selector));
    }
    keys
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
    use k8s_openapi::api::core::v1::ReplicationController;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use knet_apimachinery::labels;
    use std::sync::Arc;

    /// A ReplicaSet `name` in namespace "ns" selecting `app=<selector>` (everything when `None`).
    pub(crate) fn rs(name: &str, uid: &str, selector: Option<&str>) -> ReplicaSet {
        let mut r = ReplicaSet::default();
        r.metadata.namespace = Some("ns".into());
        r.metadata.name = Some(name.into());
        r.metadata.uid = Some(uid.into());
        r.spec = Some(ReplicaSetSpec {
            selector: LabelSelector {
                match_labels: selector.map(|app| [("app".to_string(), app.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        });
        r
    }

    fn rs_selector(r: &ReplicaSet) -> Result<Selector, LabelSelectorError> {
        labels::from_optional_label_selector(r.spec.as_ref().map(|s| &s.selector))
    }

    #[test]
    fn resolves_only_the_kind_and_uid_of_the_reference() {
        let rss = Store::new();
        let web = rs("web", "u-web", Some("web"));
        rss.apply(Arc::new(web.clone()));
        let mut meta = ObjectMeta { namespace: Some("ns".into()), ..Default::default() };
        meta.owner_references = Some(vec![pods::controller_ref(&web)]);
        assert_eq!(resolve(&meta, &rss), Some(ObjectKey::new("ns", "web")));

        let rcs: Store<ReplicationController> = Store::new();
        rcs.apply(Arc::new(ReplicationController { metadata: web.metadata.clone(), ..Default::default() }));
        assert_eq!(resolve(&meta, &rcs), None, "an RS's dependent is not the RC's of the same name and UID");

        rss.apply(Arc::new(rs("web", "u-web-2", Some("web"))));
        assert_eq!(resolve(&meta, &rss), None, "a newer object of the same name is not the controller");
    }

    #[test]
    fn selecting_skips_empty_and_other_selectors() {
        let rss = Store::new();
        rss.apply(Arc::new(rs("web", "u1", Some("web"))));
        rss.apply(Arc::new(rs("db", "u2", Some("db"))));
        rss.apply(Arc::new(rs("all", "u3", None)));
        let meta = ObjectMeta {
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(selecting(&meta, &rss, rs_selector), vec![ObjectKey::new("ns", "web")]);
        let elsewhere = ObjectMeta { namespace: Some("other".into()), ..meta };
        assert!(selecting(&elsewhere, &rss, rs_selector).is_empty());
    }

    #[test]
    fn updates_wake_the_former_controller_and_new_selectors() {
        let rss = Store::new();
        let web = rs("web", "u1", Some("web"));
        rss.apply(Arc::new(web.clone()));
        rss.apply(Arc::new(rs("db", "u2", Some("db"))));
        let labelled = |app: &str, owner: Option<&ReplicaSet>| ObjectMeta {
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), app.to_string())].into()),
            owner_references: owner.map(|o| vec![pods::controller_ref(o)]),
            ..Default::default()
        };
        let (web_key, db_key) = (ObjectKey::new("ns", "web"), ObjectKey::new("ns", "db"));
        // Released by web and relabelled: web hears of it, and db may adopt it.
        let updated_keys = updated(&labelled("web", Some(&web)), &labelled("db", None), &rss, rs_selector);
        assert_eq!(updated_keys, vec![web_key.clone(), db_key.clone()]);
        // An owned object relabelled wakes only its controller (which will release it).
        assert_eq!(
            updated(&labelled("web", Some(&web)), &labelled("db", Some(&web)), &rss, rs_selector),
            vec![web_key]
        );
        // An orphan whose labels did not change wakes nobody.
        assert!(updated(&labelled("db", None), &labelled("db", None), &rss, rs_selector).is_empty());
        assert_eq!(updated(&labelled("x", None), &labelled("db", None), &rss, rs_selector), vec![db_key]);
    }
}
