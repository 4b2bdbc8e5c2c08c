//! The status a ReplicaSet or RC reports (upstream `calculateStatus` in replica_set_utils.go): counts of its
//! active pods — fully labeled, ready, available after `minReadySeconds` — and a `ReplicaFailure` condition
//! while creating or deleting pods fails.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::pods;
use super::workload::{Condition, ReplicaStatus};

/// The condition type set while pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Why the last attempt to create or delete pods failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManageFailure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    /// The error.
    pub message: String,
}

/// What the status is computed from.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The pods the controller owns that are active (after pods it just deleted were taken out).
    pub active: &'a [&'a Pod],
    /// How many owned pods are terminating, when the kind reports it.
    pub terminating: Option<i32>,
    /// The labels of the pod template.
    pub template_labels: &'a BTreeMap<String, String>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `metadata.generation` of the controller.
    pub generation: i64,
    /// The result of managing replicas this time.
    pub failure: Option<ManageFailure>,
}

/// The new status from the current one and what was observed at `now`.
pub fn calculate(current: &ReplicaStatus, seen: &Observed<'_>, now: Timestamp) -> ReplicaStatus {
    let mut status = current.clone();
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for pod in seen.active {
        let labels = pod.metadata.labels.as_ref();
        if seen.template_labels.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v)) {
            fully_labeled += 1;
        }
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, seen.min_ready_seconds, now) {
                available += 1;
            }
        }
    }
    let has_failure = status.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match &seen.failure {
        Some(f) if !has_failure => status.conditions.push(Condition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        None if has_failure => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    status.replicas = count(seen.active.len());
    status.fully_labeled_replicas = fully_labeled;
    status.ready_replicas = ready;
    status.available_replicas = available;
    status.terminating_replicas = seen.terminating;
    status.observed_generation = seen.generation;
    status
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// How long until the next ready pod becomes available, when some are waiting for `minReadySeconds`
/// (the controller checks again then; upstream requeues after `minReadySeconds`).
pub fn next_availability_check(active: &[&Pod], min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    active
        .iter()
        .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready_seconds, now))
        .filter_map(|p| pods::available_at(p, min_ready_seconds))
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
        .min()
        .map(|d| d + Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod(labels: &[(&str, &str)], ready_at: Option<i64>) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready_at.is_some() { "True" } else { "False" }.into(),
                last_transition_time: ready_at.map(|t| Time(Timestamp::from_second(t).unwrap())),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn counts_and_failure_condition() {
        let now = Timestamp::from_second(100).unwrap();
        let a = pod(&[("app", "web"), ("tier", "fe")], Some(10));
        let b = pod(&[("app", "web")], Some(95));
        let c = pod(&[("app", "web"), ("tier", "fe")], None);
        let active = [&a, &b, &c];
        let template: BTreeMap<String, String> =
            [("app", "web"), ("tier", "fe")].map(|(k, v)| (k.into(), v.into())).into();
        let mut seen = Observed {
            active: &active,
            terminating: Some(1),
            template_labels: &template,
            min_ready_seconds: 10,
            generation: 3,
            failure: Some(ManageFailure { reason: "FailedCreate", message: "quota".into() }),
        };
        let s = calculate(&ReplicaStatus::default(), &seen, now);
        assert_eq!((s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas), (3, 2, 2, 1));
        assert_eq!((s.terminating_replicas, s.observed_generation), (Some(1), 3));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].reason.as_deref(), Some("FailedCreate"));
        // The condition is kept as it was while failures go on, and removed once they stop.
        let later = Timestamp::from_second(200).unwrap();
        seen.failure = Some(ManageFailure { reason: "FailedCreate", message: "other".into() });
        let s2 = calculate(&s, &seen, later);
        assert_eq!(s2.conditions, s.conditions);
        seen.failure = None;
        assert!(calculate(&s2, &seen, later).conditions.is_empty());
        // b becomes available 10 s after 95.
        assert_eq!(next_availability_check(&active, 10, now), Some(Duration::from_millis(5100)));
        assert_eq!(next_availability_check(&active, 0, now), None);
    }
}
