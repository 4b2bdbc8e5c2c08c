//! The scheduler's scores (upstream's Score plugins, with the default profile's weights): spreading the pods
//! of one controller across nodes (like PodTopologySpread's default constraint, weight 2; the nodes with the
//! fewest of the controller's pods are clearly preferred), least allocated CPU and
//! memory (NodeResourcesFit, weight 1), fewest untolerated PreferNoSchedule taints (TaintToleration, weight 3)
//! and preferred node affinity (NodeAffinity, weight 2). Each plugin scores 0..=100 per node. Pure.

use k8s_openapi::api::core::v1::{Node, Pod};

use super::cache::NodeUsage;
use super::filter::{effective_taints, term_matches, tolerates};
use super::resources::{allocatable, Resources};

/// The most a plugin gives a node.
pub const MAX_SCORE: i64 = 100;

/// A node that passed the filters.
pub struct Candidate<'a> {
    pub node: &'a Node,
    pub usage: NodeUsage,
}

/// `MAX_SCORE` for the lowest value, 0 for the highest (all `MAX_SCORE` when they are all 0).
fn fewer_is_better(values: &[i64]) -> Vec<i64> {
    let max = values.iter().copied().max().unwrap_or(0);
    values.iter().map(|v| if max <= 0 { MAX_SCORE } else { MAX_SCORE * (max - v) / max }).collect()
}

fn spread(owner: Option<&str>, cands: &[Candidate]) -> Vec<i64> {
    let Some(owner) = owner else { return vec![0; cands.len()] };
    let counts: Vec<i64> = cands.iter().map(|c| c.usage.owners.get(owner).copied().unwrap_or(0)).collect();
    let (min, max) = (counts.iter().copied().min().unwrap_or(0), counts.iter().copied().max().unwrap_or(0));
    // The least loaded nodes get the full score and the rest at most half of it, so that (unless taints or
    // preferred affinity say otherwise) replicas stay within one of each other whatever else nodes run.
    counts.iter().map(|&c| if c == min { MAX_SCORE } else { MAX_SCORE / 2 * (max - c) / (max - min) }).collect()
}

fn least_allocated(non_zero: Resources, cands: &[Candidate]) -> Vec<i64> {
    let part = |cap: i64, used: i64| if cap <= 0 { 0 } else { ((cap - used) * MAX_SCORE / cap).max(0) };
    cands
        .iter()
        .map(|c| {
            let cap = allocatable(c.node).resources;
            let used = c.usage.non_zero.plus(non_zero);
            (part(cap.milli_cpu, used.milli_cpu) + part(cap.memory, used.memory)) / 2
        })
        .collect()
}

fn prefer_no_schedule(pod: &Pod, cands: &[Candidate]) -> Vec<i64> {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
    let counts: Vec<i64> = cands
        .iter()
        .map(|c| {
            let untolerated = effective_taints(c.node)
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule" && !tolerations.iter().any(|tol| tolerates(tol, t)))
                .count();
            i64::try_from(untolerated).unwrap_or(i64::MAX)
        })
        .collect();
    fewer_is_better(&counts)
}

fn preferred_affinity(pod: &Pod, cands: &[Candidate]) -> Vec<i64> {
    let preferred = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.clone())
        .unwrap_or_default();
    let sums: Vec<i64> = cands
        .iter()
        .map(|c| preferred.iter().filter(|p| term_matches(&p.preference, c.node)).map(|p| i64::from(p.weight)).sum())
        .collect();
    let max = sums.iter().copied().max().unwrap_or(0);
    sums.iter().map(|s| if max <= 0 { 0 } else { MAX_SCORE * s / max }).collect()
}

/// The weighted total score of each candidate for `pod` (owned by controller `owner`, requesting `non_zero`
/// with the scoring defaults).
pub fn score(pod: &Pod, owner: Option<&str>, non_zero: Resources, cands: &[Candidate]) -> Vec<i64> {
    let parts = [
        (2, spread(owner, cands)),
        (1, least_allocated(non_zero, cands)),
        (3, prefer_no_schedule(pod, cands)),
        (2, preferred_affinity(pod, cands)),
    ];
    (0..cands.len()).map(|i| parts.iter().map(|(w, s)| w * s[i]).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, PodSpec, PreferredSchedulingTerm,
        Taint,
    };

    fn node(name: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n
    }

    fn usage(owner_pods: i64) -> NodeUsage {
        let mut u = NodeUsage { pods: owner_pods, ..Default::default() };
        if owner_pods > 0 {
            u.owners.insert("rs".into(), owner_pods);
        }
        u
    }

    #[test]
    fn nodes_with_fewer_pods_of_the_owner_score_higher() {
        let (a, b) = (node("a"), node("b"));
        let cands = [Candidate { node: &a, usage: usage(2) }, Candidate { node: &b, usage: usage(1) }];
        let s = score(&Pod::default(), Some("rs"), Resources::default(), &cands);
        assert!(s[1] > s[0], "{s:?}");
        let s = score(&Pod::default(), None, Resources::default(), &cands);
        assert_eq!(s[0], s[1], "pods without a controller are not spread");
    }

    #[test]
    fn prefer_no_schedule_and_preferred_affinity_weigh_in() {
        let mut a = node("a");
        a.spec = Some(NodeSpec {
            taints: Some(vec![Taint { key: "k".into(), effect: "PreferNoSchedule".into(), ..Default::default() }]),
            ..Default::default()
        });
        a.metadata.labels = Some([("fast".to_string(), "yes".to_string())].into());
        let b = node("b");
        let cands = [Candidate { node: &a, usage: usage(0) }, Candidate { node: &b, usage: usage(0) }];
        let plain = Pod { spec: Some(PodSpec::default()), ..Default::default() };
        let s = score(&plain, None, Resources::default(), &cands);
        assert!(s[1] > s[0], "{s:?}");
        let mut fond = plain.clone();
        fond.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![PreferredSchedulingTerm {
                    weight: 100,
                    preference: NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "fast".into(),
                            operator: "Exists".into(),
                            values: None,
                        }]),
                        ..Default::default()
                    },
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let s2 = score(&fond, None, Resources::default(), &cands);
        assert_eq!(s2[0] - s[0], 200, "preferred affinity adds weight 2 x 100");
    }
}
