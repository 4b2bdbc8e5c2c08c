//! What the Deployment controller knows about its ReplicaSets (upstream `deployment_util.go`): revisions
//! and the annotations that carry them, the new and old ReplicaSets, replica sums, the orders ReplicaSets
//! are scaled in, and the Deployment's conditions.

use std::cmp::Ordering;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use knet_apimachinery::labels::{self, LabelSelectorError, Selector};

use super::hash;

/// The revision of a ReplicaSet (and, copied, of its Deployment).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of a ReplicaSet that was rolled back to.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when it last scaled the ReplicaSet.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when it last scaled the ReplicaSet.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// kubectl apply's record, never copied to ReplicaSets.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The rollback request of old API versions, never copied.
const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// How long the revision-history annotation may grow.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Condition types and reasons, as upstream.
pub mod reason {
    pub const AVAILABLE: &str = "Available";
    pub const PROGRESSING: &str = "Progressing";
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const PAUSED: &str = "DeploymentPaused";
    pub const RESUMED: &str = "DeploymentResumed";
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The Deployment's `spec.selector`.
pub fn selector(d: &Deployment) -> Result<Selector, LabelSelectorError> {
    labels::from_optional_label_selector(d.spec.as_ref().map(|s| &s.selector))
}

/// `spec.replicas` of the Deployment (1 when unset, as defaulted).
pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet.
pub fn size(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Sets `spec.replicas` of a ReplicaSet.
pub fn set_size(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

/// `status.replicas` of a ReplicaSet.
pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// Available pods of a ReplicaSet that will still be there once it reaches its size: a ReplicaSet that was
/// just scaled down may still report pods it is about to delete.
pub fn lasting_available(rs: &ReplicaSet) -> i32 {
    available(rs).min(size(rs))
}

/// Sum of `spec.replicas` (`GetReplicaCountForReplicaSets`).
pub fn sum_sizes(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|r| size(r)).sum()
}

/// Sum of `status.replicas` (`GetActualReplicaCountForReplicaSets`).
pub fn sum_status_replicas(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|r| status_replicas(r)).sum()
}

/// Sum of `status.readyReplicas`.
pub fn sum_ready(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().filter_map(|r| r.status.as_ref()?.ready_replicas).sum()
}

/// Sum of `status.availableReplicas`.
pub fn sum_available(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|r| available(r)).sum()
}

/// Sum of `status.terminatingReplicas`, unknown if any ReplicaSet does not report it.
pub fn sum_terminating(rss: &[&ReplicaSet]) -> Option<i32> {
    rss.iter().map(|r| r.status.as_ref().and_then(|s| s.terminating_replicas)).sum()
}

/// `FilterActiveReplicaSets`: those with a non-zero size.
pub fn is_active(rs: &ReplicaSet) -> bool {
    size(rs) > 0
}

/// The revision of a ReplicaSet; 0 when it has none or it is not a number.
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The largest revision among `rss`.
pub fn max_revision(rss: &[&ReplicaSet]) -> i64 {
    rss.iter().map(|r| revision(r)).max().unwrap_or(0)
}

/// The desired-replicas annotation of a ReplicaSet.
pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS)?.parse().ok()
}

/// The max-replicas annotation of a ReplicaSet.
pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS)?.parse().ok()
}

/// Annotations a Deployment does not copy to its ReplicaSets.
fn skip_copy(key: &str) -> bool {
    matches!(key, LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | DEPRECATED_ROLLBACK_TO)
}

/// `copyDeploymentAnnotationsToReplicaSet`: the Deployment's own annotations onto the ReplicaSet.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// `SetReplicasAnnotations`: records the Deployment's size and maximum on the ReplicaSet.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(rs, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision to
/// `new_revision` (remembering the old one in the revision history when a ReplicaSet comes back), and for a
/// ReplicaSet about to be created records the replica annotations. Returns whether anything changed.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    max_surge: i32,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    let old = a.get(REVISION).cloned();
    let old_revision: i64 = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse() {
            Ok(n) => n,
            Err(_) => return changed,
        },
    };
    if old_revision < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    a.insert(REVISION_HISTORY.into(), joined);
                }
            }
        }
    }
    if !exists {
        let desired = desired_replicas(d);
        if set_replicas_annotations(rs, desired, desired + max_surge) {
            changed = true;
        }
    }
    changed
}

/// The Deployment's revision annotation.
pub fn deployment_revision(d: &Deployment) -> Option<&str> {
    d.metadata.annotations.as_ref()?.get(REVISION).map(String::as_str)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// `ReplicaSetsByCreationTimestamp`: oldest first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a).cmp(&created(b)).then_with(|| name(a).cmp(name(b)))
}

/// `ReplicaSetsBySizeOlder`: largest first, older first among equals.
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    size(b).cmp(&size(a)).then_with(|| by_creation(a, b))
}

/// `ReplicaSetsBySizeNewer`: largest first, newer first among equals.
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    size(b).cmp(&size(a)).then_with(|| by_creation(b, a))
}

/// `ReplicaSetsByRevision`: lowest revision first, then by creation.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a).cmp(&revision(b)).then_with(|| by_creation(a, b))
}

/// `FindNewReplicaSet`: the oldest ReplicaSet whose template is the Deployment's (ignoring the hash label).
pub fn find_new<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    let mut matching: Vec<&ReplicaSet> = rss
        .iter()
        .filter(|rs| {
            rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| hash::equal_ignore_hash(t, template))
        })
        .collect();
    matching.sort_by(|a, b| by_creation(a, b));
    matching.into_iter().next()
}

/// `FindActiveOrLatest`: the one active ReplicaSet, or the newest when none is active; `None` when several
/// are active.
pub fn find_active_or_latest<'a>(new: Option<&'a ReplicaSet>, old: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut olds: Vec<&ReplicaSet> = old.iter().collect();
    olds.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = olds.iter().copied().chain(new).filter(|r| is_active(r)).collect();
    match active.len() {
        0 => new.or(olds.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// `IsSaturated`: the new ReplicaSet has the Deployment's size, was scaled for it, and all its pods are
/// available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let desired = desired_replicas(d);
    size(rs) == desired && desired_replicas_annotation(rs) == Some(desired) && available(rs) == desired
}

/// Whether the Deployment has a progress deadline (`HasProgressDeadline`).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).is_some_and(|s| s != i32::MAX)
}

/// The Deployment's condition of type `type_`.
pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// `NewDeploymentCondition` at `now`.
pub fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `SetDeploymentCondition`: nothing changes if a condition of that type has the same status and reason;
/// otherwise it is replaced, keeping its transition time when only the reason changed.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// `RemoveDeploymentCondition`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

/// The status counts of a Deployment, zero when unset.
pub struct Counts {
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

/// The counts of a status.
pub fn counts(s: &DeploymentStatus) -> Counts {
    Counts {
        replicas: s.replicas.unwrap_or(0),
        updated: s.updated_replicas.unwrap_or(0),
        ready: s.ready_replicas.unwrap_or(0),
        available: s.available_replicas.unwrap_or(0),
    }
}

/// `DeploymentComplete`: every replica is updated and available and the latest spec was observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = desired_replicas(d);
    let c = counts(status);
    c.updated == desired
        && c.replicas == desired
        && c.available == desired
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, ready or available pods than before, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = counts(&d.status.clone().unwrap_or_default());
    let new = counts(new);
    new.updated > old.updated
        || (new.replicas - new.updated) < (old.replicas - old.updated)
        || new.ready > old.ready
        || new.available > old.available
}

/// `DeploymentTimedOut`: no progress for `progressDeadlineSeconds` since the Progressing condition was last
/// updated (and the rollout had not completed).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = condition(status, reason::PROGRESSING) else { return false };
    match cond.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => false,
        Some(reason::TIMED_OUT) => true,
        _ => {
            let deadline = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(0);
            let Some(from) = cond.last_update_time.as_ref() else { return false };
            let until = from.0.checked_add(jiff::SignedDuration::from_secs(i64::from(deadline)));
            until.is_ok_and(|u| u < now)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    pub(crate) fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }],
                ..Default::default()
            }),
        }
    }

    /// A Deployment `name` of `replicas` with strategy `strategy` and (surge, unavailable).
    pub(crate) fn deployment(
        name: &str,
        replicas: i32,
        strategy: &str,
        rolling: Option<(IntOrString, IntOrString)>,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                strategy: Some(DeploymentStrategy {
                    type_: Some(strategy.into()),
                    rolling_update: rolling
                        .map(|(s, u)| RollingUpdateDeployment { max_surge: Some(s), max_unavailable: Some(u) }),
                }),
                template: template("nginx:1"),
                progress_deadline_seconds: Some(600),
                revision_history_limit: Some(10),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// A ReplicaSet `name` of size `size` reporting `replicas` pods of which `available` are available,
    /// at revision `revision` (also its creation second).
    pub(crate) fn rs(name: &str, size: i32, replicas: i32, available: i32, revision: i64) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(Timestamp::from_second(revision).unwrap_or_default())),
                annotations: Some([(REVISION.to_string(), revision.to_string())].into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec { replicas: Some(size), template: Some(template(name)), ..Default::default() }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn new_replica_set_annotations_track_revisions() {
        let mut d = deployment("web", 3, "RollingUpdate", Some((IntOrString::Int(1), IntOrString::Int(0))));
        d.metadata.annotations =
            Some([("team".to_string(), "a".to_string()), (REVISION.to_string(), "9".to_string())].into());
        let mut r = rs("web-1", 0, 0, 0, 1);
        r.metadata.annotations = None;
        assert!(set_new_replica_set_annotations(&d, &mut r, 1, false, 1));
        let a = r.metadata.annotations.clone().unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(a.get("team").map(String::as_str), Some("a"));
        assert_eq!((a.get(DESIRED_REPLICAS).unwrap().as_str(), a.get(MAX_REPLICAS).unwrap().as_str()), ("3", "4"));
        assert!(!set_new_replica_set_annotations(&d, &mut r, 1, true, 1), "nothing new");
        // Rolled back to: the revision moves up and the old one is remembered.
        assert!(set_new_replica_set_annotations(&d, &mut r, 3, true, 1));
        assert!(set_new_replica_set_annotations(&d, &mut r, 5, true, 1));
        let a = r.metadata.annotations.unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("5"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    }

    #[test]
    fn orders_and_the_active_or_latest() {
        let a = rs("a", 2, 2, 2, 1);
        let b = rs("b", 2, 2, 2, 2);
        let c = rs("c", 5, 5, 5, 3);
        let mut v = [a.clone(), c.clone(), b.clone()];
        v.sort_by(by_size_older);
        assert_eq!(v.iter().map(name).collect::<Vec<_>>(), ["c", "a", "b"]);
        v.sort_by(by_size_newer);
        assert_eq!(v.iter().map(name).collect::<Vec<_>>(), ["c", "b", "a"]);
        v.sort_by(by_revision);
        assert_eq!(v.iter().map(name).collect::<Vec<_>>(), ["a", "b", "c"]);
        let zero_a = rs("a", 0, 0, 0, 1);
        let zero_b = rs("b", 0, 0, 0, 2);
        assert_eq!(find_active_or_latest(None, &[zero_a.clone(), zero_b.clone()]).map(name), Some("b"));
        assert_eq!(find_active_or_latest(Some(&c), std::slice::from_ref(&zero_a)).map(name), Some("c"));
        assert_eq!(find_active_or_latest(Some(&c), std::slice::from_ref(&a)).map(name), None);
    }

    #[test]
    fn conditions_keep_transition_times() {
        let t0 = Timestamp::from_second(100).unwrap();
        let t1 = Timestamp::from_second(200).unwrap();
        let mut s = DeploymentStatus::default();
        set_condition(&mut s, new_condition(reason::PROGRESSING, "True", reason::NEW_RS_CREATED, "x".into(), t0));
        set_condition(&mut s, new_condition(reason::PROGRESSING, "True", reason::NEW_RS_CREATED, "y".into(), t1));
        assert_eq!(condition(&s, reason::PROGRESSING).unwrap().message.as_deref(), Some("x"), "same reason: no change");
        set_condition(&mut s, new_condition(reason::PROGRESSING, "True", reason::NEW_RS_AVAILABLE, "z".into(), t1));
        let c = condition(&s, reason::PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Some(Time(t0)));
        assert_eq!(c.last_update_time, Some(Time(t1)));
        remove_condition(&mut s, reason::PROGRESSING);
        assert!(s.conditions.is_none());
    }
}
