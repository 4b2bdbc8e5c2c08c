//! What the workload controllers ask of a pod (upstream `podutil` and `controller_utils.go`): is it active,
//! terminating, ready, available after `minReadySeconds`; who controls it; and the pod a controller creates
//! from its template.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::runtime::conditions::{pod_condition, pod_is_ready};

/// The longest name a Kubernetes object may have (a DNS subdomain).
const MAX_NAME_LENGTH: usize = 253;

/// `controller.IsPodActive`: not Succeeded, not Failed, not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// `controller.IsPodTerminating`: being deleted but not yet in a terminal phase.
pub fn is_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's phase ("" when it has none yet).
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// `podutil.IsPodReady`: the `Ready` condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod_is_ready(pod)
}

/// When a ready pod became ready (the Ready condition's last transition), if known.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod_condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// `podutil.IsPodAvailable`: ready, and ready for longer than `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    available_at(pod, min_ready_seconds).is_some_and(|at| at < now)
}

/// When a ready pod becomes available: its ready time plus `min_ready_seconds`.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    since.checked_add(Duration::from_secs(u64::try_from(min_ready_seconds.max(0)).unwrap_or(0))).ok()
}

/// The owner reference marked `controller: true`, if any (`metav1.GetControllerOf`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// `metav1.NewControllerRef`: a reference to `owner` that marks it as the controller and blocks the owner's
/// foreground deletion until the dependent is gone.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `namespace/name` of a pod, as expectations track deletions.
pub fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or(""))
}

/// The template has no labels, so a pod made from it could never be selected (upstream refuses too).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unable to create pods, no labels")]
pub struct NoLabels;

/// `controller.GetPodFromTemplate`: the pod a controller named `owner_name` creates from `template`, with a
/// generated name `<owner>-xxxxx`, the template's labels, annotations and finalizers, and `owner_ref`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner_name: &str,
    owner_ref: OwnerReference,
) -> Result<Pod, NoLabels> {
    let meta = template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.filter(|l| !l.is_empty()).ok_or(NoLabels)?;
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name_prefix(owner_name)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: meta.annotations.filter(|a| !a.is_empty()),
            finalizers: meta.finalizers.filter(|f| !f.is_empty()),
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// `getPodsPrefix`: `<name>-` unless that would be too long for a name, then `<name>`.
fn generate_name_prefix(owner_name: &str) -> String {
    if owner_name.len() < MAX_NAME_LENGTH {
        format!("{owner_name}-")
    } else {
        owner_name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod_with(phase: &str, ready: Option<(&str, i64)>, deleting: bool) -> Pod {
        let mut p = Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready.map(|(status, at)| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: status.into(),
                        last_transition_time: Some(Time(Timestamp::from_second(at).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).unwrap()));
        }
        p
    }

    #[test]
    fn active_and_terminating() {
        assert!(is_active(&pod_with("Running", None, false)));
        assert!(is_active(&pod_with("", None, false)));
        assert!(!is_active(&pod_with("Succeeded", None, false)));
        assert!(!is_active(&pod_with("Failed", None, false)));
        assert!(!is_active(&pod_with("Running", None, true)));
        assert!(is_terminating(&pod_with("Running", None, true)));
        assert!(!is_terminating(&pod_with("Failed", None, true)));
        assert!(!is_terminating(&pod_with("Running", None, false)));
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Timestamp::from_second(1000).unwrap();
        let p = pod_with("Running", Some(("True", 990)), false);
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now), "ready exactly 10 s ago is not yet available (strictly before)");
        assert!(!is_available(&p, 20, now));
        assert_eq!(available_at(&p, 20), Some(Timestamp::from_second(1010).unwrap()));
        let not_ready = pod_with("Running", Some(("False", 100)), false);
        assert!(!is_available(&not_ready, 0, now));
        assert_eq!(ready_since(&not_ready), None);
    }

    #[test]
    fn pods_from_templates_carry_labels_and_the_controller_ref() {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web-abc".into());
        rs.metadata.uid = Some("u1".into());
        let r = controller_ref(&rs);
        assert_eq!((r.api_version.as_str(), r.kind.as_str()), ("apps/v1", "ReplicaSet"));
        assert_eq!((r.controller, r.block_owner_deletion), (Some(true), Some(true)));
        let mut t = PodTemplateSpec::default();
        assert_eq!(pod_from_template(&t, "ns", "web-abc", r.clone()), Err(NoLabels));
        t.metadata = Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            annotations: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        });
        let p = pod_from_template(&t, "ns", "web-abc", r.clone()).unwrap();
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(p.metadata.labels, t.metadata.as_ref().unwrap().labels);
        assert_eq!(p.metadata.annotations, t.metadata.as_ref().unwrap().annotations);
        assert_eq!(p.metadata.owner_references, Some(vec![r.clone()]));
        assert_eq!(controller_of(&p.metadata), Some(&r));
        let long = "x".repeat(253);
        assert_eq!(generate_name_prefix(&long), long);
    }
}
