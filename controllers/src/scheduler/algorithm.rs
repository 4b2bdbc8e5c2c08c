//! One scheduling decision (pure): filter every node, score those left, pick the best — or explain, in
//! upstream's words, why no node fits ("0/3 nodes are available: … preemption: …").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::cache::{controller_uid, SchedulerCache};
use super::filter::run_filters;
use super::resources::pod_requests;
use super::score::{score, Candidate};

/// The message when the cluster has no nodes at all (upstream's `ErrNoNodesAvailable`).
pub const NO_NODES: &str = "no nodes available to schedule pods";
/// What preemption says of a node where evicting pods would not help.
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// What preemption says of a node where it found nothing to evict (knet never preempts).
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Why a pod fits no node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes were considered.
    pub num_nodes: usize,
    /// Each filter reason and on how many nodes it applied.
    pub reasons: BTreeMap<String, usize>,
    /// Each preemption verdict and on how many nodes.
    pub preemption: BTreeMap<&'static str, usize>,
}

/// Upstream's `sortReasonsHistogram`: "count reason" entries sorted as strings, joined with ", ".
fn histogram<K: fmt::Display>(m: &BTreeMap<K, usize>) -> String {
    let mut entries: Vec<String> = m.iter().map(|(k, v)| format!("{v} {k}")).collect();
    entries.sort();
    entries.join(", ")
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_nodes == 0 {
            return f.write_str(NO_NODES);
        }
        let n = self.num_nodes;
        write!(f, "0/{n} nodes are available: {}.", histogram(&self.reasons))?;
        write!(f, " preemption: 0/{n} nodes are available: {}.", histogram(&self.preemption))
    }
}

/// Picks the node for `pod` among `nodes` (nodes being deleted are skipped), given what `cache` says they
/// run. Ties go to the node with fewer pods, then to the first name.
pub fn schedule(pod: &Pod, nodes: &[Arc<Node>], cache: &SchedulerCache) -> Result<String, FitError> {
    let (requests, non_zero) = pod_requests(pod);
    let owner = controller_uid(pod);
    let mut err = FitError::default();
    let mut cands: Vec<Candidate> = Vec::new();
    for node in nodes.iter().filter(|n| n.metadata.deletion_timestamp.is_none()) {
        err.num_nodes += 1;
        let usage = cache.node(node.metadata.name.as_deref().unwrap_or(""));
        match run_filters(pod, requests, node, &usage.usage()) {
            Ok(()) => cands.push(Candidate { node, usage }),
            Err(rej) => {
                for r in rej.reasons {
                    *err.reasons.entry(r).or_default() += 1;
                }
                let verdict = if rej.unresolvable { PREEMPTION_NOT_HELPFUL } else { NO_VICTIMS };
                *err.preemption.entry(verdict).or_default() += 1;
            }
        }
    }
    if cands.is_empty() {
        return Err(err);
    }
    let scores = score(pod, owner.as_deref(), non_zero, &cands);
    let best = cands
        .iter()
        .zip(&scores)
        .max_by(|(a, sa), (b, sb)| {
            sa.cmp(sb)
                .then_with(|| b.usage.pods.cmp(&a.usage.pods))
                .then_with(|| b.node.metadata.name.cmp(&a.node.metadata.name))
        })
        .map(|(c, _)| c.node.metadata.name.clone().unwrap_or_default());
    best.ok_or(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, PodSpec, Taint};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use proptest::prelude::*;

    fn node(name: &str, labels: &[(&str, &str)]) -> Arc<Node> {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            allocatable: Some(
                [("cpu", "2"), ("memory", "4Gi"), ("pods", "110")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.into())))
                    .collect(),
            ),
            ..Default::default()
        });
        Arc::new(n)
    }

    fn pod(uid: &str, owner: &str) -> Pod {
        let mut p = Pod { spec: Some(PodSpec::default()), ..Default::default() };
        p.metadata.uid = Some(uid.into());
        p.metadata.owner_references =
            Some(vec![OwnerReference { uid: owner.into(), controller: Some(true), ..Default::default() }]);
        p
    }

    #[test]
    fn the_message_reads_like_upstream() {
        let mut cordoned = (*node("c", &[])).clone();
        cordoned.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        let mut tainted = (*node("t", &[])).clone();
        tainted.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "gpu".into(),
                value: Some("yes".into()),
                effect: "NoSchedule".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let mut not_ready = (*node("n", &[])).clone();
        not_ready.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        let nodes = vec![node("a", &[]), Arc::new(cordoned), Arc::new(tainted), Arc::new(not_ready)];
        let mut p = pod("u", "rs");
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        let e = schedule(&p, &nodes, &SchedulerCache::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) had untolerated taint {gpu: yes}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
             1 node(s) were unschedulable. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
        );
        assert_eq!(schedule(&p, &[], &SchedulerCache::new()).unwrap_err().to_string(), NO_NODES);
    }

    #[test]
    fn full_nodes_say_no_victims() {
        let mut full = (*node("a", &[("x", "z")])).clone();
        full.status.as_mut().unwrap().allocatable.as_mut().unwrap().insert("pods".into(), Quantity("0".into()));
        let nodes = vec![Arc::new(full), node("b", &[("x", "y")])];
        let mut p = pod("u", "rs");
        p.spec.as_mut().unwrap().node_selector = Some([("x".to_string(), "z".to_string())].into());
        assert_eq!(
            schedule(&p, &nodes, &SchedulerCache::new()).unwrap_err().to_string(),
            "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn a_burst_of_replicas_spreads_evenly_thanks_to_assume() {
        let nodes = vec![node("node-a", &[]), node("node-b", &[])];
        let mut cache = SchedulerCache::new();
        for i in 0..6 {
            let p = pod(&format!("u{i}"), "rs");
            let n = schedule(&p, &nodes, &cache).unwrap();
            cache.assume(&p, &n);
        }
        assert_eq!(cache.node("node-a").pods, 3);
        assert_eq!(cache.node("node-b").pods, 3);
    }

    proptest! {
        /// Replicas of one owner scheduled one after another onto identical nodes (some already running
        /// other pods) never differ by more than one per node.
        #[test]
        fn replicas_of_one_owner_stay_balanced(nodes in 1usize..6, replicas in 1usize..30, others in proptest::collection::vec(0usize..5, 0..10)) {
            let ns: Vec<Arc<Node>> = (0..nodes).map(|i| node(&format!("n{i}"), &[])).collect();
            let mut cache = SchedulerCache::new();
            for (i, o) in others.iter().enumerate() {
                cache.assume(&pod(&format!("other{i}"), "someone-else"), &format!("n{}", o % nodes));
            }
            let mut per_node = vec![0i64; nodes];
            for i in 0..replicas {
                let p = pod(&format!("r{i}"), "rs");
                let n = schedule(&p, &ns, &cache).unwrap();
                cache.assume(&p, &n);
                let idx: usize = n[1..].parse().unwrap();
                per_node[idx] += 1;
            }
            let max = per_node.iter().max().unwrap();
            let min = per_node.iter().min().unwrap();
            prop_assert!(max - min <= 1, "{per_node:?}");
        }
    }
}
