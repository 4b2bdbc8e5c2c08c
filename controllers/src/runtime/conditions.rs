//! Reading the status conditions of cached Nodes and Pods (upstream's nodeutil.GetNodeCondition,
//! podutil.GetPodCondition and IsPodReady), for every controller that judges readiness.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition};

/// The Node's condition of type `type_` (e.g. "Ready"), if it reports one.
pub fn node_condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The status of the Node's Ready condition ("True", "False", "Unknown"; `None` when it has none).
pub fn node_ready_status(node: &Node) -> Option<&str> {
    node_condition(node, "Ready").map(|c| c.status.as_str())
}

/// Whether the Node's Ready condition is True.
pub fn node_is_ready(node: &Node) -> bool {
    node_ready_status(node) == Some("True")
}

/// The Pod's condition of type `type_` (e.g. "Ready", "PodScheduled"), if it reports one.
pub fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Whether the Pod's Ready condition is True (upstream IsPodReady).
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeStatus, PodStatus};

    fn node(conds: &[(&str, &str)]) -> Node {
        let c =
            conds.iter().map(|(t, s)| NodeCondition { type_: (*t).into(), status: (*s).into(), ..Default::default() });
        Node { status: Some(NodeStatus { conditions: Some(c.collect()), ..Default::default() }), ..Default::default() }
    }

    fn pod(conds: &[(&str, &str)]) -> Pod {
        let c =
            conds.iter().map(|(t, s)| PodCondition { type_: (*t).into(), status: (*s).into(), ..Default::default() });
        Pod { status: Some(PodStatus { conditions: Some(c.collect()), ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn node_readiness_reads_the_ready_condition_only() {
        assert_eq!(node_ready_status(&Node::default()), None);
        assert_eq!(node_ready_status(&node(&[("MemoryPressure", "True")])), None);
        assert_eq!(node_ready_status(&node(&[("MemoryPressure", "False"), ("Ready", "Unknown")])), Some("Unknown"));
        assert!(node_is_ready(&node(&[("Ready", "True")])));
        assert!(!node_is_ready(&node(&[("Ready", "False")])));
    }

    #[test]
    fn pod_readiness_reads_the_ready_condition_only() {
        assert!(!pod_is_ready(&Pod::default()));
        assert!(!pod_is_ready(&pod(&[("PodScheduled", "True"), ("Ready", "False")])));
        assert!(pod_is_ready(&pod(&[("PodScheduled", "False"), ("Ready", "True")])));
        assert_eq!(
            pod_condition(&pod(&[("PodScheduled", "False")]), "PodScheduled").map(|c| c.status.as_str()),
            Some("False")
        );
    }
}
