//! Rolling-update arithmetic (upstream `deployment_util.go`): `maxSurge`/`maxUnavailable` as numbers of pods
//! (percentages of `spec.replicas`, surge rounded up and unavailability rounded down, never both zero), how
//! far the new ReplicaSet may grow, and each ReplicaSet's share when a Deployment is scaled mid-rollout.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::util;

/// A `maxSurge`/`maxUnavailable` value that is neither a number nor a percentage.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value for IntOrString: invalid type: string is not a percentage: {0:?}")]
pub struct NotAPercentage(pub String);

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, or `p%` of `total`, rounded up or down.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, NotAPercentage> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i32 =
                s.strip_suffix('%').and_then(|p| p.parse().ok()).ok_or_else(|| NotAPercentage(s.clone()))?;
            let exact = f64::from(percent) * f64::from(total) / 100.0;
            let rounded = if round_up { exact.ceil() } else { exact.floor() };
            // Percentages of an i32 stay far inside the i32 range for any sane input; saturate otherwise.
            Ok(rounded.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32)
        }
    }
}

/// `ResolveFenceposts`: (surge, unavailable) in pods for `desired` replicas. When both resolve to zero,
/// unavailable becomes 1 so that a rollout can always make progress.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), NotAPercentage> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// Whether the Deployment rolls with the RollingUpdate strategy.
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

/// `spec.strategy.type` ("RollingUpdate" when unset, as defaulted).
pub fn strategy_type(d: &Deployment) -> &str {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    // Validation rejects bad values; an invalid one counts as 0 here.
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        util::desired_replicas(d),
    )
    .unwrap_or((0, 1))
}

/// `MaxSurge`: how many pods above `spec.replicas` a rolling update may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// `MaxUnavailable`: how many of `spec.replicas` may be unavailable during a rolling update (0 for Recreate
/// or no replicas; never more than `spec.replicas`).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = util::desired_replicas(d);
    if !is_rolling_update(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// `NewRSNewReplicas`: the size the new ReplicaSet may have now. For RollingUpdate it grows while all
/// ReplicaSets together stay within `spec.replicas + maxSurge`; each ReplicaSet counts for the larger of its
/// size and the pods it still reports (a scaled-down ReplicaSet whose pods are not gone yet still counts
/// them), so the surge holds for real pods, not only for sizes. Recreate uses `spec.replicas` at once.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> Result<i32, NotAPercentage> {
    let desired = util::desired_replicas(d);
    let new_size = util::size(new_rs);
    if !is_rolling_update(d) {
        return Ok(desired);
    }
    let surge = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_surge.as_ref())
        .map_or(Ok(0), |v| scaled_value(v, desired, true))?;
    let current: i32 = all.iter().map(|rs| util::size(rs).max(util::status_replicas(rs))).sum();
    let max_total = desired + surge;
    if current >= max_total {
        return Ok(new_size);
    }
    let scale_up = (max_total - current).min(desired - new_size);
    Ok(new_size + scale_up.max(0))
}

/// `RoundToInt32`: halves away from zero.
fn round_to_i32(x: f64) -> i32 {
    let r = if x < 0.0 { x - 0.5 } else { x + 0.5 };
    r.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// `getReplicaSetFraction`: the change of `rs`'s size if the whole Deployment moves from the size recorded
/// in its max-replicas annotation to `spec.replicas + maxSurge`.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let desired = util::desired_replicas(d);
    let size = util::size(rs);
    if desired == 0 {
        return -size;
    }
    let max_now = desired + max_surge(d);
    let before = util::max_replicas_annotation(rs)
        .filter(|m| *m != 0)
        .or_else(|| d.status.as_ref().and_then(|s| s.replicas))
        .unwrap_or(0);
    if before == 0 {
        return 0;
    }
    let new_size = f64::from(size) * f64::from(max_now) / f64::from(before);
    round_to_i32(new_size) - size
}

/// `GetProportion`: how many replicas `rs` gains (or loses) of the `to_add` the Deployment adds, after
/// `added` were already handed out; never more than what is left.
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if util::size(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::{deployment, rs};
    use proptest::prelude::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percentages_round_as_upstream() {
        assert_eq!(scaled_value(&pct("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&pct("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&IntOrString::Int(3), 10, false), Ok(3));
        assert!(scaled_value(&pct("25"), 10, false).is_err());
        assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 1), Ok((1, 0)));
        assert_eq!(resolve_fenceposts(Some(&pct("0%")), Some(&pct("25%")), 1), Ok((0, 1)), "never both zero");
        assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 4), Ok((1, 1)));
    }

    #[test]
    fn surge_and_unavailability_of_deployments() {
        let d = deployment("web", 4, "RollingUpdate", Some((IntOrString::Int(1), IntOrString::Int(1))));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 1));
        let d = deployment("web", 2, "RollingUpdate", Some((IntOrString::Int(0), IntOrString::Int(5))));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
        let d = deployment("web", 4, "Recreate", None);
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
    }

    #[test]
    fn new_rs_grows_within_the_surge() {
        let d = deployment("web", 4, "RollingUpdate", Some((IntOrString::Int(1), IntOrString::Int(1))));
        let old = rs("web-old", 4, 4, 4, 1);
        let new = rs("web-new", 0, 0, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(1));
        let new1 = rs("web-new", 1, 1, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new1], &new1), Ok(1), "4 + 1 = 5 already");
        // The old ReplicaSet was scaled to 3 but still reports 4 pods: no growth yet.
        let old3 = rs("web-old", 3, 4, 4, 1);
        assert_eq!(new_rs_new_replicas(&d, &[&old3, &new1], &new1), Ok(1));
        let old3 = rs("web-old", 3, 3, 3, 1);
        assert_eq!(new_rs_new_replicas(&d, &[&old3, &new1], &new1), Ok(2));
        let d = deployment("web", 4, "Recreate", None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(4));
    }

    proptest! {
        /// The new ReplicaSet never grows past `spec.replicas`, never shrinks, and never takes the sum of
        /// (what counts of) all ReplicaSets above `replicas + maxSurge` when it grows.
        #[test]
        fn new_rs_never_breaks_the_surge(replicas in 0i32..20, surge in 0i32..5, unavailable in 0i32..5,
                                          old in 0i32..25, old_status in 0i32..25, new in 0i32..20) {
            let d = deployment("web", replicas, "RollingUpdate", Some((IntOrString::Int(surge), IntOrString::Int(unavailable.max(1)))));
            let o = rs("web-old", old, old_status, old_status, 1);
            let new = new.min(replicas);
            let n = rs("web-new", new, new, new, 2);
            let got = new_rs_new_replicas(&d, &[&o, &n], &n).unwrap();
            prop_assert!(got >= new);
            prop_assert!(got <= replicas.max(new));
            if got > new {
                prop_assert!(old.max(old_status) + got <= replicas + surge);
            }
        }

        /// Percentages: surge rounds up, unavailability down, and they are never both zero.
        #[test]
        fn fenceposts_round_and_never_both_zero(s in 0i32..=100, u in 0i32..=100, desired in 0i32..1000) {
            let (surge, unavailable) =
                resolve_fenceposts(Some(&pct(&format!("{s}%"))), Some(&pct(&format!("{u}%"))), desired).unwrap();
            prop_assert_eq!(i64::from(surge), (i64::from(s) * i64::from(desired) + 99) / 100);
            let floor = i64::from(u) * i64::from(desired) / 100;
            prop_assert!(i64::from(unavailable) == floor || (floor == 0 && surge == 0 && unavailable == 1));
            prop_assert!(surge + unavailable > 0);
        }
    }

    #[test]
    fn proportions_follow_the_annotation() {
        // A Deployment of 10 (surge 3 → max 13) scaled to 20 (max 23): an RS of 5 of 13 gets ~ 5*23/13.
        let mut d = deployment("web", 20, "RollingUpdate", Some((pct("25%"), pct("25%"))));
        let mut r = rs("web-a", 5, 5, 5, 1);
        util::set_replicas_annotations(&mut r, 10, 13);
        assert_eq!(proportion(&r, &d, 10, 0), 5, "round(5 * 25 / 13) - 5");
        assert_eq!(proportion(&r, &d, 2, 0), 2, "never more than what is left");
        d.spec.as_mut().unwrap().replicas = Some(0);
        assert_eq!(proportion(&r, &d, -5, 0), -5);
    }
}
