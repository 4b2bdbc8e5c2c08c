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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
    use k8s_openapi::api::core::v1::ReplicationController;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use knet_apimachinery::labels;
    use std::sync::Arc;

    fn rs(name: &str, uid: &str, selector: Option<&str>) -> ReplicaSet {
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
}
