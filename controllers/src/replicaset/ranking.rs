//! Which pods a ReplicaSet or ReplicationController deletes first when it has too many (upstream
//! `ActivePodsWithRanks` with pod deletion cost and logarithmic scale-down): unscheduled before scheduled,
//! Pending before Unknown before Running, not ready before ready, lower `pod-deletion-cost` first, pods
//! doubled up on a node with related pods first, then the most recently ready, the most restarted, and the
//! newest.
//!
//! Upstream's comparison is not a strict total order (its time buckets break ties by UID before the later
//! criteria apply); Rust's sort needs one, so here each pod gets a key compared lexicographically: the same
//! criteria in the same order, times compared by their power-of-two age bucket, the UID last.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::collections::HashSet;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pods;

/// The annotation that lets users say which pods to delete first (lower cost first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// `podPhaseToOrdinal`: Pending (and no phase) < Unknown < Running.
fn phase_ordinal(phase: &str) -> u8 {
    match phase {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// A time's rank: 0 for none, then the power-of-two bucket of its age at `now` (newer is smaller).
fn time_rank(t: Option<Timestamp>, now: Timestamp) -> (u8, i32) {
    match t {
        None => (0, 0),
        Some(t) => {
            let nanos = now.as_nanosecond() - t.as_nanosecond();
            let bucket = if nanos > 0 {
                // floor(log2(nanos)), as upstream's int(math.Log2(float64(d))).
                i32::try_from(127 - nanos.leading_zeros()).unwrap_or(i32::MAX)
            } else {
                -1
            };
            (1, bucket)
        }
    }
}

/// The deletion cost of a pod; missing or invalid annotations count as 0.
fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

/// Restarts of regular containers and of sidecars (init containers with `restartPolicy: Always`).
fn max_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else { return (0, 0) };
    let regular = status.container_statuses.iter().flatten().map(|c| c.restart_count).max().unwrap_or(0);
    let sidecars: HashSet<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular, sidecar)
}

type RankKey = (bool, u8, bool, i32, Reverse<usize>, (u8, i32), Reverse<(i32, i32)>, (u8, i32), String);

fn key(pod: &Pod, colocated: usize, now: Timestamp) -> RankKey {
    let ready = pods::is_ready(pod);
    let assigned = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let ready_rank = if ready { time_rank(pods::ready_since(pod), now) } else { (0, 0) };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        assigned,
        phase_ordinal(pods::phase(pod)),
        ready,
        deletion_cost(pod),
        Reverse(colocated),
        ready_rank,
        Reverse(max_restarts(pod)),
        time_rank(created, now),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// Orders `candidates` so the pods to delete first come first. `related` are the active pods of the owner
/// and its siblings (the ReplicaSets of the same Deployment): a candidate on a node with more of them is
/// deleted before one that is alone, to spread what remains.
pub fn sort_for_deletion<P: AsRef<Pod>>(candidates: &mut [P], related: &[P], now: Timestamp) {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().map(AsRef::as_ref).filter(|p| pods::is_active(p)) {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let colocated = |p: &Pod| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| on_node.get(n)).copied().unwrap_or(0)
    };
    candidates.sort_by_cached_key(|p| key(p.as_ref(), colocated(p.as_ref()), now));
}

/// `getPodsToDelete`: the `count` pods of `active` to delete, in order.
pub fn pods_to_delete<P: AsRef<Pod> + Clone>(active: &[P], related: &[P], count: usize, now: Timestamp) -> Vec<P> {
    let mut sorted = active.to_vec();
    if count < sorted.len() {
        sort_for_deletion(&mut sorted, related, now);
    }
    sorted.truncate(count);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use proptest::prelude::*;
    use std::sync::Arc;

    const NOW: i64 = 1_000_000;

    #[derive(Clone, Debug)]
    struct Spec {
        node: Option<&'static str>,
        phase: &'static str,
        ready_at: Option<i64>,
        created: i64,
        restarts: i32,
        cost: Option<i32>,
    }

    fn pod(name: &str, s: &Spec) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(s.created).unwrap()));
        if let Some(c) = s.cost {
            p.metadata.annotations = Some([(POD_DELETION_COST.to_string(), c.to_string())].into());
        }
        p.spec = Some(PodSpec { node_name: s.node.map(str::to_string), ..Default::default() });
        p.status = Some(PodStatus {
            phase: Some(s.phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if s.ready_at.is_some() { "True" } else { "False" }.into(),
                last_transition_time: s.ready_at.map(|t| Time(Timestamp::from_second(t).unwrap())),
                ..Default::default()
            }]),
            container_statuses: Some(vec![ContainerStatus { restart_count: s.restarts, ..Default::default() }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn base() -> Spec {
        Spec {
            node: Some("n1"),
            phase: "Running",
            ready_at: Some(NOW - 5000),
            created: NOW - 6000,
            restarts: 0,
            cost: None,
        }
    }

    fn first_of(a: Spec, b: Spec) -> String {
        let now = Timestamp::from_second(NOW).unwrap();
        let mut v = vec![pod("b", &b), pod("a", &a)];
        sort_for_deletion(&mut v, &[], now);
        v[0].metadata.name.clone().unwrap()
    }

    #[test]
    fn upstream_criteria_in_order() {
        // 1. unscheduled first
        assert_eq!(first_of(Spec { node: None, ..base() }, base()), "a");
        // 2. Pending < Unknown < Running
        assert_eq!(
            first_of(Spec { phase: "Pending", ready_at: None, ..base() }, Spec { ready_at: None, ..base() }),
            "a"
        );
        assert_eq!(first_of(Spec { phase: "Unknown", ..base() }, base()), "a");
        // 3. not ready first
        assert_eq!(first_of(Spec { ready_at: None, ..base() }, base()), "a");
        // 4. lower deletion cost first, even if ready for longer
        assert_eq!(first_of(Spec { cost: Some(-5), ..base() }, Spec { ready_at: Some(NOW - 1), ..base() }), "a");
        // 6. ready more recently first (different power-of-two buckets)
        assert_eq!(first_of(Spec { ready_at: Some(NOW - 10), ..base() }, base()), "a");
        // 7. more restarts first
        assert_eq!(first_of(Spec { restarts: 3, ..base() }, base()), "a");
        // 8. newer first
        assert_eq!(first_of(Spec { created: NOW - 20, ..base() }, base()), "a");
    }

    #[test]
    fn doubled_up_pods_go_first() {
        let now = Timestamp::from_second(NOW).unwrap();
        let alone = pod("alone", &Spec { node: Some("n2"), ..base() });
        let crowded = pod("crowded", &base());
        let other = pod("other", &base());
        let related = vec![alone.clone(), crowded.clone(), other.clone()];
        let out = pods_to_delete(&[alone.clone(), crowded.clone()], &related, 1, now);
        assert_eq!(out[0].metadata.name.as_deref(), Some("crowded"));
        // deleting everything skips sorting but returns all
        assert_eq!(pods_to_delete(&[alone, crowded], &related, 5, now).len(), 2);
    }

    fn arb_spec() -> impl Strategy<Value = Spec> {
        (
            prop::option::of(prop_oneof![Just("n1"), Just("n2")]),
            prop_oneof![Just("Pending"), Just("Running"), Just("Unknown"), Just("")],
            prop::option::of(0i64..NOW + 10),
            0i64..NOW + 10,
            0i32..3,
            prop::option::of(-2i32..2),
        )
            .prop_map(|(node, phase, ready_at, created, restarts, cost)| Spec {
                node,
                phase,
                ready_at,
                created,
                restarts,
                cost,
            })
    }

    proptest! {
        /// Whatever the pods, the order is total (sorting never panics and is deterministic), the
        /// unscheduled and not-ready pods come before the scheduled ready ones of the same phase, and the
        /// pods to delete are a prefix of that order.
        #[test]
        fn order_is_total_and_respects_the_first_criteria(specs in prop::collection::vec(arb_spec(), 0..12), n in 0usize..14) {
            let now = Timestamp::from_second(NOW).unwrap();
            let pods: Vec<Arc<Pod>> = specs.iter().enumerate().map(|(i, s)| pod(&format!("p{i}"), s)).collect();
            let mut a = pods.clone();
            sort_for_deletion(&mut a, &pods, now);
            let mut b: Vec<Arc<Pod>> = pods.iter().rev().cloned().collect();
            sort_for_deletion(&mut b, &pods, now);
            let names = |v: &[Arc<Pod>]| v.iter().map(|p| p.metadata.name.clone().unwrap()).collect::<Vec<_>>();
            prop_assert_eq!(names(&a), names(&b));
            for w in a.windows(2) {
                let k0 = key(&w[0], 0, now);
                let k1 = key(&w[1], 0, now);
                prop_assert!((k0.0, k0.1, k0.2) <= (k1.0, k1.1, k1.2));
            }
            let chosen = pods_to_delete(&pods, &pods, n, now);
            prop_assert_eq!(chosen.len(), n.min(pods.len()));
            if n < pods.len() {
                prop_assert_eq!(names(&chosen), names(&a[..n]));
            }
        }
    }
}
