//! The decisions of a sync, as pure functions of the cached ReplicaSets (upstream `scale` in sync.go and
//! `reconcileNewReplicaSet` / `reconcileOldReplicaSets` / `cleanupUnhealthyReplicas` /
//! `scaleDownOldReplicaSetsForRollingUpdate` in rolling.go): which sizes the ReplicaSets should get.
//! The callers write them.
//!
//! Scale-downs of old ReplicaSets count, per ReplicaSet, only the available pods that will remain once it
//! reaches its size ([`util::lasting_available`]): a ReplicaSet that was just scaled down may report pods it
//! is about to delete, and counting those could take availability below `replicas - maxUnavailable`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::fenceposts::{self, NotAPercentage};
use super::util;

/// `scale`'s proportional step: the sizes of the active ReplicaSets `active` when a rolling Deployment is
/// resized mid-rollout, and whether that is a scale "up" or "down". `active` must be sorted as upstream sorts
/// it (by size, newer first when scaling up, older first when scaling down): see [`proportional_order`].
pub fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> Vec<i32> {
    let desired = util::desired_replicas(d);
    let allowed = if desired > 0 { desired + fenceposts::max_surge(d) } else { 0 };
    let to_add = allowed - util::sum_sizes(active);
    let mut added = 0;
    let mut sizes: Vec<i32> = active
        .iter()
        .map(|rs| {
            if to_add == 0 {
                return util::size(rs);
            }
            let p = fenceposts::proportion(rs, d, to_add, added);
            added += p;
            util::size(rs) + p
        })
        .collect();
    if let Some(first) = sizes.first_mut() {
        if to_add != 0 {
            *first = (*first + to_add - added).max(0);
        }
    }
    sizes
}

/// How the active ReplicaSets are ordered for [`proportional_sizes`], and the word for the events.
pub fn proportional_order(d: &Deployment, active: &mut [&ReplicaSet]) -> &'static str {
    let desired = util::desired_replicas(d);
    let allowed = if desired > 0 { desired + fenceposts::max_surge(d) } else { 0 };
    let to_add = allowed - util::sum_sizes(active);
    if to_add > 0 {
        active.sort_by(|a, b| util::by_size_newer(a, b));
        "up"
    } else if to_add < 0 {
        active.sort_by(|a, b| util::by_size_older(a, b));
        "down"
    } else {
        ""
    }
}

/// `reconcileNewReplicaSet`: the size the new ReplicaSet should get now, if it should change.
pub fn new_replica_set_size(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Result<Option<i32>, NotAPercentage> {
    let desired = util::desired_replicas(d);
    let size = util::size(new);
    if size == desired {
        return Ok(None);
    }
    if size > desired {
        return Ok(Some(desired));
    }
    let target = fenceposts::new_rs_new_replicas(d, all, new)?;
    Ok((target != size).then_some(target))
}

/// `reconcileOldReplicaSets`' budget: how many old pods may go now without taking availability below
/// `replicas - maxUnavailable`, counting the new ReplicaSet's not-yet-available pods as unavailable.
pub fn scale_down_budget(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let min_available = util::desired_replicas(d) - fenceposts::max_unavailable(d);
    let new_unavailable = util::size(new) - util::lasting_available(new);
    util::sum_sizes(all) - min_available - new_unavailable
}

/// Shrinks old ReplicaSets oldest first, each by at most `cap(rs)` pods and all together by at most
/// `budget`. Returns (index in `old`, new size) for each ReplicaSet to shrink, and the total taken.
fn shrink_oldest_first(old: &[&ReplicaSet], budget: i32, cap: impl Fn(&ReplicaSet) -> i32) -> (Vec<(usize, i32)>, i32) {
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|a, b| util::by_creation(old[*a], old[*b]));
    let mut plan = Vec::new();
    let mut total = 0;
    for i in order {
        if total >= budget {
            break;
        }
        let size = util::size(old[i]);
        let most = cap(old[i]);
        if size == 0 || most <= 0 {
            continue;
        }
        let count = (budget - total).min(most);
        plan.push((i, size - count));
        total += count;
    }
    (plan, total)
}

/// `cleanupUnhealthyReplicas`: shrink old ReplicaSets (oldest first) by their unavailable pods, at most
/// `budget` in total. Returns (index in `old`, new size) for each ReplicaSet to shrink, and the total.
pub fn cleanup_unhealthy(old: &[&ReplicaSet], budget: i32) -> (Vec<(usize, i32)>, i32) {
    shrink_oldest_first(old, budget, |rs| util::size(rs) - util::lasting_available(rs))
}

/// `scaleDownOldReplicaSetsForRollingUpdate`: shrink old ReplicaSets (oldest first) by as many available
/// pods as exceed `replicas - maxUnavailable` across all ReplicaSets.
pub fn scale_down_old(d: &Deployment, all: &[&ReplicaSet], old: &[&ReplicaSet]) -> Vec<(usize, i32)> {
    let min_available = util::desired_replicas(d) - fenceposts::max_unavailable(d);
    let available: i32 = all.iter().map(|rs| util::lasting_available(rs)).sum();
    shrink_oldest_first(old, available - min_available, util::size).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::{deployment, rs};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;

    fn d(replicas: i32, surge: i32, unavailable: i32) -> Deployment {
        deployment("web", replicas, "RollingUpdate", Some((IntOrString::Int(surge), IntOrString::Int(unavailable))))
    }

    #[test]
    fn a_rolling_update_of_four_with_one_and_one() {
        let d = d(4, 1, 1);
        // New RS created at 1 (surge), old still 4.
        let old = rs("old", 4, 4, 4, 1);
        let new = rs("new", 1, 1, 0, 2);
        assert_eq!(new_replica_set_size(&d, &[&old, &new], &new), Ok(None));
        // min available 3; 5 pods, new has 1 unavailable → may remove 1.
        assert_eq!(scale_down_budget(&d, &[&old, &new], &new), 1);
        assert_eq!(cleanup_unhealthy(&[&old], 1), (vec![], 0));
        assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![(0, 3)]);
        // The old RS is at 3 but still reports 4 available: only 3 count.
        let old = rs("old", 3, 4, 4, 1);
        assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![]);
        assert_eq!(new_replica_set_size(&d, &[&old, &new], &new), Ok(None), "4 pods still reported");
        let old = rs("old", 3, 3, 3, 1);
        assert_eq!(new_replica_set_size(&d, &[&old, &new], &new), Ok(Some(2)));
    }

    #[test]
    fn unhealthy_old_pods_go_first() {
        let old_a = rs("a", 3, 3, 1, 1);
        let old_b = rs("b", 2, 2, 0, 2);
        assert_eq!(cleanup_unhealthy(&[&old_b, &old_a], 3), (vec![(1, 1), (0, 1)], 3));
        assert_eq!(cleanup_unhealthy(&[&old_b, &old_a], 1), (vec![(1, 2)], 1));
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        // 10 replicas, 25% surge (3): old 8 and new 5 (13 = 10 + 3). Scaled to 20 (max 25).
        let mut dep = deployment(
            "web",
            20,
            "RollingUpdate",
            Some((IntOrString::String("25%".into()), IntOrString::String("25%".into()))),
        );
        let mut old = rs("old", 8, 8, 8, 1);
        let mut new = rs("new", 5, 5, 5, 2);
        util::set_replicas_annotations(&mut old, 10, 13);
        util::set_replicas_annotations(&mut new, 10, 13);
        let mut active = vec![&new, &old];
        assert_eq!(proportional_order(&dep, &mut active), "up");
        let sizes = proportional_sizes(&dep, &active);
        assert_eq!(active[0].metadata.name.as_deref(), Some("old"));
        assert_eq!(sizes.iter().sum::<i32>(), 25);
        assert_eq!(sizes, vec![15, 10]);
        dep.spec.as_mut().unwrap().replicas = Some(0);
        let mut active = vec![&new, &old];
        assert_eq!(proportional_order(&dep, &mut active), "down");
        assert_eq!(proportional_sizes(&dep, &active), vec![0, 0]);
    }

    proptest! {
        /// Following the plans step by step (each ReplicaSet then reaching its size, pods becoming available
        /// or not) never takes the lasting available pods below `replicas - maxUnavailable` once they were
        /// above it, never takes the pods above `replicas + maxSurge`, and ends with only the new
        /// ReplicaSet at full size when pods become available.
        #[test]
        fn rolling_plans_keep_the_fenceposts(replicas in 1i32..12, surge in 0i32..4, unavailable in 0i32..4,
                                             ready_steps in prop::collection::vec(any::<bool>(), 60)) {
            let unavailable = if surge == 0 { unavailable.max(1) } else { unavailable };
            let dep = d(replicas, surge, unavailable);
            let (max_s, max_u) = (fenceposts::max_surge(&dep), fenceposts::max_unavailable(&dep));
            let mut old = rs("old", replicas, replicas, replicas, 1);
            let mut new = rs("new", 0, 0, 0, 2);
            for (step, ready) in ready_steps.into_iter().enumerate() {
                // The ReplicaSet controllers: each reaches its size; new pods may become available.
                let s = util::size(&new);
                let avail = if ready { s } else { util::available(&new) };
                new = rs("new", s, s, avail.min(s), 2);
                let s = util::size(&old);
                old = rs("old", s, s, util::available(&old).min(s), 1);
                // The Deployment controller: scale up, else scale down.
                if let Some(n) = new_replica_set_size(&dep, &[&old, &new], &new).unwrap() {
                    util::set_size(&mut new, n);
                } else if util::size(&old) > 0 && scale_down_budget(&dep, &[&old, &new], &new) > 0 {
                    let budget = scale_down_budget(&dep, &[&old, &new], &new);
                    let (plan, _) = cleanup_unhealthy(&[&old], budget);
                    for (_, n) in plan { util::set_size(&mut old, n); }
                    for (_, n) in scale_down_old(&dep, &[&old, &new], &[&old]) { util::set_size(&mut old, n); }
                }
                prop_assert!(util::size(&old) + util::size(&new) <= replicas + max_s, "step {step}");
                let lasting = util::lasting_available(&old) + util::lasting_available(&new);
                prop_assert!(lasting >= replicas - max_u, "step {step}: {lasting} available");
            }
            // With every pod becoming available at once, the rollout completes.
            for _ in 0..(4 * replicas + 4) {
                let s = util::size(&new);
                new = rs("new", s, s, s, 2);
                let s = util::size(&old);
                old = rs("old", s, s, s, 1);
                if let Some(n) = new_replica_set_size(&dep, &[&old, &new], &new).unwrap() {
                    util::set_size(&mut new, n);
                } else if scale_down_budget(&dep, &[&old, &new], &new) > 0 {
                    for (_, n) in scale_down_old(&dep, &[&old, &new], &[&old]) { util::set_size(&mut old, n); }
                }
            }
            prop_assert_eq!((util::size(&old), util::size(&new)), (0, replicas));
        }
    }
}
