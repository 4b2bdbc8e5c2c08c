//! The status a Deployment reports (upstream `calculateStatus` in sync.go and `syncRolloutStatus` in
//! progress.go): replica counts summed over its ReplicaSets, the `Available` condition, the `Progressing`
//! condition that tells a rollout that is making progress, complete, or past its deadline, and the
//! `ReplicaFailure` condition copied from a ReplicaSet that cannot create pods.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};

use super::fenceposts;
use super::util::{self, reason};

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn name_of(d: &Deployment) -> &str {
    d.metadata.name.as_deref().unwrap_or("")
}

/// `calculateStatus`: counts over `all` (the new ReplicaSet included), the updated count of `new`, and the
/// Available condition; other conditions are kept as they are.
pub fn calculate_status(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let current = d.status.clone().unwrap_or_default();
    let available = util::sum_available(all);
    let total = util::sum_sizes(all);
    let unavailable = (total - available).max(0);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation.filter(|g| *g != 0),
        replicas: nonzero(util::sum_status_replicas(all)),
        updated_replicas: nonzero(new.map_or(0, util::status_replicas)),
        ready_replicas: nonzero(util::sum_ready(all)),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        terminating_replicas: util::sum_terminating(all),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
    };
    let cond = if available >= util::desired_replicas(d) - fenceposts::max_unavailable(d) {
        util::new_condition(
            reason::AVAILABLE,
            "True",
            reason::MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        util::new_condition(
            reason::AVAILABLE,
            "False",
            reason::MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    util::set_condition(&mut status, cond);
    status
}

/// `getReplicaFailures`: the ReplicaFailure condition of the new ReplicaSet, else of an old one, as a
/// Deployment condition.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failing = |rs: &ReplicaSet| {
        rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == reason::REPLICA_FAILURE).cloned()
    };
    let cond = new.and_then(failing).or_else(|| all.iter().find_map(|rs| failing(rs)))?;
    Some(DeploymentCondition {
        type_: cond.type_,
        status: cond.status,
        reason: cond.reason,
        message: cond.message,
        last_update_time: cond.last_transition_time.clone(),
        last_transition_time: cond.last_transition_time,
    })
}

/// `syncRolloutStatus`'s computation: [`calculate_status`] plus the Progressing and ReplicaFailure
/// conditions.
pub fn rollout_status(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate_status(all, new, d, now);
    if !util::has_progress_deadline(d) {
        util::remove_condition(&mut status, reason::PROGRESSING);
    }
    let old_status = d.status.clone().unwrap_or_default();
    let current = util::condition(&old_status, reason::PROGRESSING);
    let counts = util::counts(&status);
    let complete_before = counts.replicas == counts.updated
        && current.is_some_and(|c| c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE));
    if util::has_progress_deadline(d) && !complete_before {
        let subject = match new {
            Some(rs) => format!("ReplicaSet {:?}", rs.metadata.name.as_deref().unwrap_or("")),
            None => format!("Deployment {:?}", name_of(d)),
        };
        if util::deployment_complete(d, &status) {
            let msg = format!("{subject} has successfully progressed.");
            util::set_condition(
                &mut status,
                util::new_condition(reason::PROGRESSING, "True", reason::NEW_RS_AVAILABLE, msg, now),
            );
        } else if util::deployment_progressing(d, &status) {
            let msg = format!("{subject} is progressing.");
            let mut cond = util::new_condition(reason::PROGRESSING, "True", reason::REPLICA_SET_UPDATED, msg, now);
            // Progress refreshes lastUpdateTime even with the same reason; the transition time stays.
            if let Some(c) = current {
                if c.status == "True" {
                    cond.last_transition_time = c.last_transition_time.clone();
                }
                util::remove_condition(&mut status, reason::PROGRESSING);
            }
            util::set_condition(&mut status, cond);
        } else if util::deployment_timed_out(d, &status, now) {
            let msg = format!("{subject} has timed out progressing.");
            util::set_condition(
                &mut status,
                util::new_condition(reason::PROGRESSING, "False", reason::TIMED_OUT, msg, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(cond) => util::set_condition(&mut status, cond),
        None => util::remove_condition(&mut status, reason::REPLICA_FAILURE),
    }
    status
}

/// `requeueStuckDeployment`: when a rollout shows no progress, how long until its deadline passes (so the
/// controller looks again then and can report ProgressDeadlineExceeded).
pub fn stuck_requeue(d: &Deployment, new_status: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let status = d.status.clone().unwrap_or_default();
    let current = util::condition(&status, reason::PROGRESSING)?;
    if !util::has_progress_deadline(d)
        || util::deployment_complete(d, new_status)
        || current.reason.as_deref() == Some(reason::TIMED_OUT)
    {
        return None;
    }
    let deadline = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(0);
    let updated = current.last_update_time.as_ref()?.0;
    let due = updated.checked_add(jiff::SignedDuration::from_secs(i64::from(deadline))).ok()?;
    let after = Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO);
    Some(if after < Duration::from_secs(1) { Duration::from_secs(1) } else { after + Duration::from_secs(1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::{deployment, rs};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn d4() -> Deployment {
        deployment("web", 4, "RollingUpdate", Some((IntOrString::Int(1), IntOrString::Int(1))))
    }

    #[test]
    fn counts_and_availability() {
        let d = d4();
        let old = rs("web-old", 3, 3, 3, 1);
        let new = rs("web-new", 2, 2, 1, 2);
        let now = Timestamp::from_second(1000).unwrap();
        let s = calculate_status(&[&old, &new], Some(&new), &d, now);
        assert_eq!(
            (s.replicas, s.updated_replicas, s.ready_replicas, s.available_replicas, s.unavailable_replicas),
            (Some(5), Some(2), Some(4), Some(4), Some(1))
        );
        assert_eq!(s.observed_generation, Some(1));
        let avail = util::condition(&s, reason::AVAILABLE).unwrap();
        assert_eq!(
            (avail.status.as_str(), avail.reason.as_deref()),
            ("True", Some(reason::MINIMUM_REPLICAS_AVAILABLE))
        );
        let low = rs("web-new", 4, 4, 2, 2);
        let s = calculate_status(&[&low], Some(&low), &d, now);
        let avail = util::condition(&s, reason::AVAILABLE).unwrap();
        assert_eq!(avail.reason.as_deref(), Some(reason::MINIMUM_REPLICAS_UNAVAILABLE));
    }

    #[test]
    fn progressing_complete_and_timed_out() {
        let now = Timestamp::from_second(1000).unwrap();
        let mut d = d4();
        let new = rs("web-new", 4, 2, 2, 2);
        let s = rollout_status(&[&new], Some(&new), &d, now);
        let p = util::condition(&s, reason::PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(reason::REPLICA_SET_UPDATED));
        assert_eq!(p.message.as_deref(), Some("ReplicaSet \"web-new\" is progressing."));
        // No progress since: stays, and after the deadline it times out.
        d.status = Some(s.clone());
        let later = Timestamp::from_second(1000 + 601).unwrap();
        assert_eq!(stuck_requeue(&d, &s, now), Some(Duration::from_secs(601)));
        let s2 = rollout_status(&[&new], Some(&new), &d, later);
        let p = util::condition(&s2, reason::PROGRESSING).unwrap();
        assert_eq!((p.status.as_str(), p.reason.as_deref()), ("False", Some(reason::TIMED_OUT)));
        // Complete.
        let done = rs("web-new", 4, 4, 4, 2);
        let s3 = rollout_status(&[&done], Some(&done), &d, later);
        let p = util::condition(&s3, reason::PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(reason::NEW_RS_AVAILABLE));
        assert_eq!(p.message.as_deref(), Some("ReplicaSet \"web-new\" has successfully progressed."));
        assert_eq!(stuck_requeue(&d, &s3, later), None);
        // Once complete, an unchanged state writes nothing new.
        d.status = Some(s3.clone());
        assert_eq!(rollout_status(&[&done], Some(&done), &d, later), s3);
    }

    #[test]
    fn replica_failures_are_copied() {
        use k8s_openapi::api::apps::v1::ReplicaSetCondition;
        let now = Timestamp::from_second(1000).unwrap();
        let d = d4();
        let mut new = rs("web-new", 4, 0, 0, 2);
        new.status.as_mut().unwrap().conditions = Some(vec![ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("quota".into()),
            last_transition_time: None,
        }]);
        let s = rollout_status(&[&new], Some(&new), &d, now);
        assert_eq!(util::condition(&s, reason::REPLICA_FAILURE).unwrap().reason.as_deref(), Some("FailedCreate"));
    }
}
