//! The taints the node lifecycle controller keeps on Nodes (upstream doNoScheduleTaintingPass and
//! processTaintBaseEviction): NoSchedule taints mirroring the node's conditions and `spec.unschedulable`,
//! and `not-ready`/`unreachable` NoExecute taints while its Ready condition is False/Unknown — except in a
//! zone in partial disruption (no new NoExecute taints) or when every zone is fully disrupted (none at all:
//! the controller cannot tell a network partition of its own from dead nodes). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::conditions::{node_condition, node_is_ready, node_ready_status};

/// Ready is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Ready is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `spec.unschedulable` is set.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Conditions that are mirrored as NoSchedule taints when True.
const CONDITION_TAINTS: [(&str, &str); 4] = [
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "node.kubernetes.io/network-unavailable"),
];

/// Share of not-ready nodes from which a zone is partially disrupted (upstream's default 0.55).
pub const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;

/// A zone's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Nodes fail one by one: taint them.
    Normal,
    /// Many nodes are not ready: add no new NoExecute taints.
    PartialDisruption,
    /// No node is ready.
    FullDisruption,
}

/// How NoExecute taints are handled for a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoExecute {
    /// Taint per the Ready condition.
    Apply,
    /// Keep (and swap) existing NoExecute taints but add none.
    KeepExisting,
    /// Remove them all (every zone fully disrupted).
    Remove,
}

/// The zone key of a node (`region:zone` from the topology labels).
pub fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!("{}:{}", get("topology.kubernetes.io/region"), get("topology.kubernetes.io/zone"))
}

/// Each zone's state from its nodes' Ready conditions.
pub fn zone_states<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> BTreeMap<String, ZoneState> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in nodes {
        let c = counts.entry(zone_of(n)).or_default();
        if node_is_ready(n) {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(z, (ready, not_ready))| {
            let state = if ready == 0 && not_ready > 0 {
                ZoneState::FullDisruption
            } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD {
                ZoneState::PartialDisruption
            } else {
                ZoneState::Normal
            };
            (z, state)
        })
        .collect()
}

/// The NoExecute policy for a node in `zone`, given every zone's state.
pub fn no_execute_policy(states: &BTreeMap<String, ZoneState>, zone: &str) -> NoExecute {
    if !states.is_empty() && states.values().all(|s| *s == ZoneState::FullDisruption) {
        return NoExecute::Remove;
    }
    match states.get(zone) {
        Some(ZoneState::PartialDisruption) => NoExecute::KeepExisting,
        _ => NoExecute::Apply,
    }
}

fn managed(t: &Taint) -> bool {
    t.key == NOT_READY
        || t.key == UNREACHABLE
        || (t.key == UNSCHEDULABLE && t.effect == "NoSchedule")
        || CONDITION_TAINTS.iter().any(|(_, k)| *k == t.key && t.effect == "NoSchedule")
}

fn same(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect && a.value == b.value
}

fn taint(key: &str, effect: &str, added: Option<&Time>) -> Taint {
    Taint { key: key.into(), effect: effect.into(), value: None, time_added: added.cloned() }
}

/// The taints `node` should have; `None` when it has them already. Taints the controller does not manage,
/// and the `timeAdded` of kept taints, are preserved.
pub fn desired_taints(node: &Node, policy: NoExecute, now: &Time) -> Option<Vec<Taint>> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let mut want = Vec::new();
    match node_ready_status(node) {
        Some("False") => want.push(taint(NOT_READY, "NoSchedule", None)),
        Some("Unknown") => want.push(taint(UNREACHABLE, "NoSchedule", None)),
        _ => {}
    }
    for (cond, key) in CONDITION_TAINTS {
        if node_condition(node, cond).is_some_and(|c| c.status == "True") {
            want.push(taint(key, "NoSchedule", None));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        want.push(taint(UNSCHEDULABLE, "NoSchedule", None));
    }
    let no_execute = match node_ready_status(node) {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    };
    let has_no_execute =
        current.iter().any(|t| (t.key == NOT_READY || t.key == UNREACHABLE) && t.effect == "NoExecute");
    let add_no_execute = match policy {
        NoExecute::Apply => no_execute,
        NoExecute::KeepExisting => no_execute.filter(|_| has_no_execute),
        NoExecute::Remove => None,
    };
    if let Some(key) = add_no_execute {
        want.push(taint(key, "NoExecute", Some(now)));
    }
    let mut out: Vec<Taint> =
        current.iter().filter(|t| !managed(t) || want.iter().any(|w| same(w, t))).cloned().collect();
    for w in want {
        if !out.iter().any(|t| same(t, &w)) {
            out.push(w);
        }
    }
    let unchanged = out.len() == current.len() && out.iter().zip(&current).all(|(a, b)| same(a, b));
    (!unchanged).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn node(zone: &str, ready: &str, taints: Vec<Taint>) -> Node {
        let mut n = Node::default();
        n.metadata.labels = Some([("topology.kubernetes.io/zone".to_string(), zone.to_string())].into());
        n.spec = Some(NodeSpec { taints: Some(taints), ..Default::default() });
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: ready.into(), ..Default::default() }]),
            ..Default::default()
        });
        n
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_000).unwrap())
    }

    fn keys(t: &[Taint]) -> Vec<String> {
        t.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect()
    }

    #[test]
    fn unreachable_nodes_get_both_taints_and_lose_them_when_ready() {
        let custom = taint("example.com/dedicated", "NoSchedule", None);
        let n = node("a", "Unknown", vec![custom.clone()]);
        let t = desired_taints(&n, NoExecute::Apply, &now()).unwrap();
        assert_eq!(
            keys(&t),
            [
                "example.com/dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        assert_eq!(t[2].time_added, Some(now()));
        let tainted = node("a", "Unknown", t.clone());
        assert_eq!(desired_taints(&tainted, NoExecute::Apply, &now()), None, "no write when nothing changes");
        let back = node("a", "True", t);
        assert_eq!(desired_taints(&back, NoExecute::Apply, &now()), Some(vec![custom]));
    }

    #[test]
    fn not_ready_swaps_the_taints_and_keeps_time_added() {
        let old = Time(jiff::Timestamp::from_second(5).unwrap());
        let n = node("a", "False", vec![taint(UNREACHABLE, "NoExecute", Some(&old))]);
        let t = desired_taints(&n, NoExecute::KeepExisting, &now()).unwrap();
        assert_eq!(keys(&t), ["node.kubernetes.io/not-ready:NoSchedule", "node.kubernetes.io/not-ready:NoExecute"]);
        let n = node("a", "False", vec![]);
        assert_eq!(
            keys(&desired_taints(&n, NoExecute::KeepExisting, &now()).unwrap()),
            ["node.kubernetes.io/not-ready:NoSchedule"]
        );
        let kept = node("a", "Unknown", vec![taint(UNREACHABLE, "NoExecute", Some(&old))]);
        let t = desired_taints(&kept, NoExecute::Apply, &now()).unwrap();
        assert_eq!(t.iter().find(|t| t.effect == "NoExecute").unwrap().time_added, Some(old));
    }

    #[test]
    fn zone_states_and_policy() {
        let nodes = vec![node("a", "True", vec![]), node("a", "Unknown", vec![]), node("b", "Unknown", vec![])];
        let states = zone_states(&nodes);
        assert_eq!(states[":a"], ZoneState::Normal);
        assert_eq!(states[":b"], ZoneState::FullDisruption);
        assert_eq!(no_execute_policy(&states, ":a"), NoExecute::Apply);
        assert_eq!(no_execute_policy(&states, ":b"), NoExecute::Apply);
        let all_down = zone_states(&nodes[1..]);
        assert_eq!(no_execute_policy(&all_down, ":a"), NoExecute::Remove);
        let many: Vec<Node> = (0..5).map(|i| node("c", if i < 2 { "True" } else { "False" }, vec![])).collect();
        let states = zone_states(&many);
        assert_eq!(states[":c"], ZoneState::PartialDisruption);
        assert_eq!(no_execute_policy(&states, ":c"), NoExecute::KeepExisting);
    }

    #[test]
    fn unschedulable_and_pressure_conditions_are_mirrored() {
        let mut n = node("a", "True", vec![]);
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        n.status.as_mut().unwrap().conditions.as_mut().unwrap().push(NodeCondition {
            type_: "DiskPressure".into(),
            status: "True".into(),
            ..Default::default()
        });
        assert_eq!(
            keys(&desired_taints(&n, NoExecute::Apply, &now()).unwrap()),
            ["node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"]
        );
    }
}
