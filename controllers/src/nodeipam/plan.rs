//! Deciding node IPAM from the Nodes alone (pure): which Node owns which subnet when the allocation state is
//! rebuilt (on start and at every repair), and what is wrong with the podCIDRs Nodes carry.
//!
//! The state is a function of the Nodes: a Node's `spec.podCIDR` is immutable once set, so the Nodes are the
//! record. When two Nodes claim overlapping CIDRs the older one (creationTimestamp, then name) keeps it and
//! the other is reported; nothing can be rewritten on it.

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use super::cidrset::{CidrSet, CidrSetError};

/// What the planner needs of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCidrs {
    /// The Node's name (the owner of its subnet).
    pub name: String,
    /// Its creationTimestamp as RFC 3339 text ("" when unknown); older wins a conflict.
    pub created: String,
    /// `spec.podCIDRs` (or `spec.podCIDR` when the list is empty).
    pub pod_cidrs: Vec<String>,
}

impl NodeCidrs {
    /// The view of `node`.
    pub fn of(node: &Node) -> NodeCidrs {
        let spec = node.spec.as_ref();
        let mut pod_cidrs = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
        if pod_cidrs.is_empty() {
            if let Some(c) = spec.and_then(|s| s.pod_cidr.clone()).filter(|c| !c.is_empty()) {
                pod_cidrs.push(c);
            }
        }
        NodeCidrs {
            name: node.metadata.name.clone().unwrap_or_default(),
            created: node.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
            pod_cidrs,
        }
    }
}

/// Something wrong with a Node's podCIDR, reported as an event on the Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The podCIDR does not parse.
    Invalid { cidr: String },
    /// The podCIDR lies outside the cluster CIDR.
    OutOfRange { cidr: IpNet, cluster: IpNet },
    /// The podCIDR overlaps subnets that older Nodes hold.
    Conflict { cidr: IpNet, holders: Vec<String> },
}

impl Problem {
    /// The event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::Invalid { .. } | Problem::OutOfRange { .. } => "PodCIDRNotInClusterCIDR",
            Problem::Conflict { .. } => "PodCIDRConflict",
        }
    }

    /// The event message about node `node`.
    pub fn message(&self, node: &str) -> String {
        match self {
            Problem::Invalid { cidr } => {
                format!("Node {node} has podCIDR {cidr:?}, which is not a CIDR; node IPAM does not track it")
            }
            Problem::OutOfRange { cidr, cluster } => format!(
                "Node {node} has podCIDR {cidr}, outside the cluster CIDR {cluster}; node IPAM does not track it"
            ),
            Problem::Conflict { cidr, holders } => format!(
                "Node {node} has podCIDR {cidr}, which overlaps the podCIDR of node(s) {}; podCIDR is immutable: \
                 delete and re-create this Node to get a free one",
                holders.join(", ")
            ),
        }
    }
}

/// The CIDRs of `node` in the cluster CIDR's family, or the problem with them.
fn family_cidrs(node: &NodeCidrs, cluster: IpNet) -> Result<Vec<IpNet>, Problem> {
    let mut out = Vec::new();
    for c in &node.pod_cidrs {
        let Ok(net) = c.parse::<IpNet>() else { return Err(Problem::Invalid { cidr: c.clone() }) };
        if matches!((net, cluster), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Marks the podCIDR of `node` in `set`, returning what is wrong with it, if anything.
pub fn occupy(set: &mut CidrSet, node: &NodeCidrs) -> Option<Problem> {
    let cidrs = match family_cidrs(node, set.cluster()) {
        Ok(c) => c,
        Err(p) => return Some(p),
    };
    for cidr in cidrs {
        match set.occupy(cidr, &node.name) {
            Ok(Ok(())) => {}
            Ok(Err(holders)) => return Some(Problem::Conflict { cidr, holders }),
            Err(CidrSetError::OutOfRange { cidr, cluster }) => return Some(Problem::OutOfRange { cidr, cluster }),
            Err(_) => return None,
        }
    }
    None
}

/// Rebuilds the allocation state from `nodes` into the empty `set`: older Nodes first, so conflicts resolve
/// the same way every time. Returns each Node's problem.
pub fn rebuild(set: &mut CidrSet, nodes: &[NodeCidrs]) -> Vec<(String, Problem)> {
    let mut order: Vec<&NodeCidrs> = nodes.iter().collect();
    order.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    let mut problems = Vec::new();
    for n in order {
        if let Some(p) = occupy(set, n) {
            problems.push((n.name.clone(), p));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, created: &str, cidrs: &[&str]) -> NodeCidrs {
        NodeCidrs {
            name: name.into(),
            created: created.into(),
            pod_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set() -> CidrSet {
        CidrSet::new("10.244.0.0/16".parse().unwrap(), 24).unwrap()
    }

    #[test]
    fn rebuild_keeps_every_node_cidr_and_allocates_around_them() {
        let mut s = set();
        let problems = rebuild(
            &mut s,
            &[
                node("b", "2024-01-01T00:00:01Z", &["10.244.0.0/24"]),
                node("a", "2024-01-01T00:00:00Z", &["10.244.2.0/24", "fd00::/64"]),
                node("c", "2024-01-01T00:00:02Z", &[]),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.allocate("c"), Some("10.244.1.0/24".parse().unwrap()));
    }

    #[test]
    fn conflicts_go_to_the_younger_node_whatever_the_input_order() {
        for flip in [false, true] {
            let mut nodes = vec![
                node("old", "2024-01-01T00:00:00Z", &["10.244.7.0/24"]),
                node("young", "2024-01-02T00:00:00Z", &["10.244.7.0/24"]),
            ];
            if flip {
                nodes.reverse();
            }
            let mut s = set();
            let problems = rebuild(&mut s, &nodes);
            assert_eq!(
                problems,
                vec![(
                    "young".to_string(),
                    Problem::Conflict { cidr: "10.244.7.0/24".parse().unwrap(), holders: vec!["old".into()] }
                )]
            );
            assert_eq!(s.owned_by("old"), vec!["10.244.7.0/24".parse::<IpNet>().unwrap()]);
            assert!(s.owned_by("young").is_empty());
        }
    }

    #[test]
    fn out_of_range_and_invalid_are_reported() {
        let mut s = set();
        let problems = rebuild(
            &mut s,
            &[node("x", "1", &["10.1.0.0/24"]), node("y", "2", &["bogus"]), node("z", "3", &["fd00::/64"])],
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].1.reason(), "PodCIDRNotInClusterCIDR");
        assert!(problems[0].1.message("x").contains("outside the cluster CIDR 10.244.0.0/16"));
        assert!(problems[1].1.message("y").contains("\"bogus\""));
        assert_eq!(s.used(), 0);
    }
}
