//! The scheduler's filters (upstream's Filter plugins, in the default profile's order): NodeUnschedulable,
//! TaintToleration, NodeAffinity (nodeSelector and required node affinity) and NodeResourcesFit. Each answers
//! whether a pod may run on a node and, if not, why, in upstream's words. Pure.
//!
//! A Node whose Ready condition is not True counts as tainted `node.kubernetes.io/not-ready:NoSchedule`
//! (`unreachable` when Unknown), as the node lifecycle controller and the kubelet would taint it, so a pod
//! lands only on Ready nodes unless it tolerates that.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration};

use super::resources::{allocatable, Resources};
use crate::runtime::conditions::node_ready_status;

/// The taint of a node that is not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint a pod must tolerate to land on a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// NodeUnschedulable's reason.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeAffinity's reason.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeResourcesFit's reason when the node has no room for another pod.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// Why a node was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Upstream's reasons (NodeResourcesFit may give several).
    pub reasons: Vec<String>,
    /// Whether evicting pods could not help (upstream's UnschedulableAndUnresolvable).
    pub unresolvable: bool,
}

impl Rejection {
    fn unresolvable(reason: impl Into<String>) -> Rejection {
        Rejection { reasons: vec![reason.into()], unresolvable: true }
    }
}

/// What is in use on a node (bound and assumed pods).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// How many pods.
    pub pods: i64,
    /// What they request.
    pub requested: Resources,
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            key == taint.key && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn pod_tolerates(pod: &Pod, taint: &Taint) -> bool {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_ref()).is_some_and(|ts| ts.iter().any(|t| tolerates(t, taint)))
}

/// The node's taints, plus the not-ready/unreachable taint its Ready condition implies when the node does
/// not carry it already.
pub fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let implied = match node_ready_status(node) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    if let Some(key) = implied {
        if !taints.iter().any(|t| t.key == key && t.effect == "NoSchedule") {
            taints.push(Taint { key: key.into(), effect: "NoSchedule".into(), ..Default::default() });
        }
    }
    taints
}

/// NodeUnschedulable: a cordoned node takes only pods that tolerate `node.kubernetes.io/unschedulable`.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    if !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        return Ok(());
    }
    let taint = Taint { key: TAINT_UNSCHEDULABLE.into(), effect: "NoSchedule".into(), ..Default::default() };
    if pod_tolerates(pod, &taint) {
        Ok(())
    } else {
        Err(Rejection::unresolvable(REASON_UNSCHEDULABLE))
    }
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated.
pub fn taint_toleration(pod: &Pod, taints: &[Taint]) -> Result<(), Rejection> {
    for t in taints.iter().filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute") {
        if !pod_tolerates(pod, t) {
            let reason = format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or(""));
            return Err(Rejection::unresolvable(reason));
        }
    }
    Ok(())
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else { return false };
            let Ok(bound) = bound.parse::<i64>() else { return false };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether one node selector term matches (an empty term matches nothing, as upstream).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref();
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, name))
}

/// NodeAffinity: the pod's nodeSelector and required node affinity must match the node.
pub fn node_affinity(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    let Some(spec) = pod.spec.as_ref() else { return Ok(()) };
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    let affinity_ok = required.is_none_or(|sel| sel.node_selector_terms.iter().any(|t| term_matches(t, node)));
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Rejection::unresolvable(REASON_NODE_AFFINITY))
    }
}

/// NodeResourcesFit: room for one more pod, and for its CPU and memory requests.
pub fn resources_fit(requests: Resources, node: &Node, usage: &Usage) -> Result<(), Rejection> {
    let alloc = allocatable(node);
    let mut reasons = Vec::new();
    if alloc.pods.is_some_and(|max| usage.pods + 1 > max) {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let free = alloc.resources.minus(usage.requested);
    if requests.milli_cpu > 0 && requests.milli_cpu > free.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if requests.memory > 0 && requests.memory > free.memory {
        reasons.push("Insufficient memory".into());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection { reasons, unresolvable: false })
    }
}

/// Runs every filter in order; the first rejection is the node's.
pub fn run_filters(pod: &Pod, requests: Resources, node: &Node, usage: &Usage) -> Result<(), Rejection> {
    node_unschedulable(pod, node)?;
    taint_toleration(pod, &effective_taints(node))?;
    node_affinity(pod, node)?;
    resources_fit(requests, node, usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus, PodSpec,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn node(name: &str, ready: &str, labels: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: ready.into(), ..Default::default() }]),
            allocatable: Some(
                [("cpu", "2"), ("memory", "4Gi"), ("pods", "3")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.into())))
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    fn pod() -> Pod {
        Pod { spec: Some(PodSpec::default()), ..Default::default() }
    }

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: Some(key.into()).filter(|s: &String| !s.is_empty()),
            operator: Some(op.into()),
            value: Some(value.into()).filter(|s: &String| !s.is_empty()),
            effect: Some(effect.into()).filter(|s: &String| !s.is_empty()),
            ..Default::default()
        }
    }

    #[test]
    fn tolerations_match_like_upstream() {
        let taint =
            Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), ..Default::default() };
        assert!(tolerates(&toleration("k", "Equal", "v", "NoSchedule"), &taint));
        assert!(tolerates(&toleration("k", "Equal", "v", ""), &taint), "empty effect matches all effects");
        assert!(!tolerates(&toleration("k", "Equal", "w", "NoSchedule"), &taint));
        assert!(!tolerates(&toleration("k", "Equal", "v", "NoExecute"), &taint));
        assert!(tolerates(&toleration("k", "Exists", "", ""), &taint));
        assert!(tolerates(&toleration("", "Exists", "", ""), &taint), "empty key with Exists tolerates everything");
        assert!(!tolerates(&toleration("other", "Exists", "", ""), &taint));
    }

    #[test]
    fn not_ready_nodes_are_tainted_and_the_taint_names_the_reason() {
        let p = pod();
        assert!(run_filters(&p, Resources::default(), &node("a", "True", &[]), &Usage::default()).is_ok());
        let e = run_filters(&p, Resources::default(), &node("a", "False", &[]), &Usage::default()).unwrap_err();
        assert_eq!(e.reasons, ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]);
        assert!(e.unresolvable);
        let e = run_filters(&p, Resources::default(), &node("a", "Unknown", &[]), &Usage::default()).unwrap_err();
        assert_eq!(e.reasons, ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]);
        let mut tolerant = pod();
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![toleration(TAINT_NOT_READY, "Exists", "", "")]);
        assert!(run_filters(&tolerant, Resources::default(), &node("a", "False", &[]), &Usage::default()).is_ok());
        let mut tainted = node("a", "True", &[]);
        tainted.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoExecute".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let e = run_filters(&p, Resources::default(), &tainted, &Usage::default()).unwrap_err();
        assert_eq!(e.reasons, ["node(s) had untolerated taint {dedicated: gpu}"]);
        tainted.spec.as_mut().unwrap().taints.as_mut().unwrap()[0].effect = "PreferNoSchedule".into();
        assert!(run_filters(&p, Resources::default(), &tainted, &Usage::default()).is_ok());
    }

    #[test]
    fn cordoned_nodes_are_rejected_first() {
        let mut n = node("a", "False", &[]);
        n.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        let e = run_filters(&pod(), Resources::default(), &n, &Usage::default()).unwrap_err();
        assert_eq!(e.reasons, [REASON_UNSCHEDULABLE]);
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let mut p = pod();
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        assert!(node_affinity(&p, &node("a", "True", &[("disk", "ssd")])).is_ok());
        assert_eq!(
            node_affinity(&p, &node("a", "True", &[("disk", "hdd")])).unwrap_err().reasons,
            [REASON_NODE_AFFINITY]
        );
        let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let mut q = pod();
        q.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![
                        NodeSelectorTerm {
                            match_expressions: Some(vec![req("zone", "In", &["a", "b"]), req("gen", "Gt", &["3"])]),
                            ..Default::default()
                        },
                        NodeSelectorTerm {
                            match_fields: Some(vec![req("metadata.name", "In", &["special"])]),
                            ..Default::default()
                        },
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(node_affinity(&q, &node("x", "True", &[("zone", "b"), ("gen", "4")])).is_ok());
        assert!(node_affinity(&q, &node("x", "True", &[("zone", "b"), ("gen", "3")])).is_err());
        assert!(node_affinity(&q, &node("x", "True", &[("zone", "c"), ("gen", "9")])).is_err());
        assert!(node_affinity(&q, &node("special", "True", &[])).is_ok(), "terms are ORed");
        assert!(!term_matches(&NodeSelectorTerm::default(), &node("x", "True", &[])), "an empty term matches nothing");
        assert!(requirement_matches(&req("k", "NotIn", &["a"]), None));
        assert!(requirement_matches(&req("k", "DoesNotExist", &[]), None));
        assert!(!requirement_matches(&req("k", "Exists", &[]), None));
    }

    #[test]
    fn resources_fit_counts_pods_cpu_and_memory() {
        let n = node("a", "True", &[]);
        let full = Usage { pods: 3, requested: Resources::default() };
        assert_eq!(resources_fit(Resources::default(), &n, &full).unwrap_err().reasons, [REASON_TOO_MANY_PODS]);
        let busy = Usage { pods: 1, requested: Resources { milli_cpu: 1900, memory: 0 } };
        let e = resources_fit(Resources { milli_cpu: 200, memory: 5 << 30 }, &n, &busy).unwrap_err();
        assert_eq!(e.reasons, ["Insufficient cpu", "Insufficient memory"]);
        assert!(!e.unresolvable);
        assert!(resources_fit(Resources { milli_cpu: 100, memory: 1 << 30 }, &n, &busy).is_ok());
    }
}
