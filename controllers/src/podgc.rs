//! Pod garbage collection (upstream pkg/controller/podgc), the `podgc` entry of `--controllers`: force-deletes pods
//! bound to Nodes that no longer exist (after a quarantine, and a live GET of the Node answering 404),
//! terminating pods that were never scheduled, terminating pods on NotReady Nodes tainted out-of-service, and
//! the oldest terminated pods past `--terminated-pod-gc-threshold`. Pods whose node agent is alive are never
//! touched: their graceful deletion is the agent's to finish.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::Api;

use crate::context::Context;
use crate::runtime::conditions::node_is_ready;

/// The taint an administrator puts on a Node that is shut down for good.
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// What can go wrong while collecting a pod (logged; the next pass tries again).
#[derive(Debug, thiserror::Error)]
pub enum PodGcError {
    /// The live GET that confirms a Node is gone failed.
    #[error("checking whether node {node} still exists: {source}")]
    GetNode {
        /// The Node.
        node: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Marking a pod Failed with its `DisruptionTarget` condition failed.
    #[error("marking pod {pod} failed before deleting it: {source}")]
    MarkFailed {
        /// `namespace/name` of the pod.
        pod: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The force-delete failed.
    #[error("force-deleting pod {pod}: {source}")]
    Delete {
        /// `namespace/name` of the pod.
        pod: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Why a pod is force-deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Its Node no longer exists.
    NodeGone,
    /// It is terminating and was never scheduled.
    UnscheduledTerminating,
    /// It is terminating on a NotReady Node tainted out-of-service.
    OutOfService,
    /// It is terminated and there are more terminated pods than the threshold.
    TerminatedOverThreshold,
}

impl Cause {
    /// The `DisruptionTarget` condition message written before deleting a pod that has not terminated
    /// (`None`: the pod is deleted as it is).
    fn message(self) -> Option<&'static str> {
        match self {
            Cause::NodeGone => Some("PodGC: node no longer exists"),
            Cause::OutOfService => Some("PodGC: node is out-of-service"),
            Cause::UnscheduledTerminating | Cause::TerminatedOverThreshold => None,
        }
    }
}

/// One pod to force-delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collect {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// Uid of the pod (delete precondition).
    pub uid: String,
    /// Why.
    pub cause: Cause,
    /// Whether the pod is not terminated yet (it is marked Failed first).
    pub running: bool,
}

fn terminated(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn out_of_service(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE && t.effect == "NoExecute"))
}

/// The pods to collect, given the cached `pods` and `nodes`, the names of Nodes verified deleted, and the
/// terminated-pod threshold (0: no limit).
pub fn select(
    pods: &[Arc<Pod>],
    nodes: &BTreeMap<String, Arc<Node>>,
    gone: &BTreeSet<String>,
    threshold: usize,
) -> Vec<Collect> {
    let mut out = Vec::new();
    let collect = |p: &Pod, cause: Cause| Collect {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        cause,
        running: !terminated(p),
    };
    let mut terminated_pods = Vec::new();
    for p in pods {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let deleting = p.metadata.deletion_timestamp.is_some();
        if !node.is_empty() && gone.contains(&node) && !nodes.contains_key(&node) {
            out.push(collect(p, Cause::NodeGone));
        } else if node.is_empty() && deleting {
            out.push(collect(p, Cause::UnscheduledTerminating));
        } else if deleting && nodes.get(&node).is_some_and(|n| !node_is_ready(n) && out_of_service(n)) {
            out.push(collect(p, Cause::OutOfService));
        } else if terminated(p) && !deleting {
            terminated_pods.push(p);
        }
    }
    if threshold > 0 && terminated_pods.len() > threshold {
        terminated_pods.sort_by(|a, b| {
            let ts = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            ts(a).cmp(&ts(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let excess = terminated_pods.len() - threshold;
        out.extend(terminated_pods.iter().take(excess).map(|p| collect(p, Cause::TerminatedOverThreshold)));
    }
    out
}

/// Nodes that pods reference but the cache does not have, and since when (upstream's quarantine queue).
#[derive(Debug, Default)]
pub struct Quarantine {
    missing_since: HashMap<String, Instant>,
}

impl Quarantine {
    /// Records which referenced nodes are missing now; returns those missing for at least `quarantine`.
    pub fn observe(&mut self, missing: &BTreeSet<String>, now: Instant, quarantine: Duration) -> Vec<String> {
        self.missing_since.retain(|n, _| missing.contains(n));
        for n in missing {
            self.missing_since.entry(n.clone()).or_insert(now);
        }
        let mut due: Vec<String> = self
            .missing_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= quarantine)
            .map(|(n, _)| n.clone())
            .collect();
        due.sort();
        due
    }
}

/// Runs pod GC every `--node-monitor-period` until the process ends. Failures are logged and retried on the
/// next pass, so it never returns an error.
pub async fn run(ctx: Context) -> Result<(), PodGcError> {
    let pods = ctx.informers.pods.clone();
    let nodes = ctx.informers.nodes.clone();
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let node_api: Api<Node> = Api::all(ctx.client.clone());
    let mut quarantine = Quarantine::default();
    let period = ctx.config.node_monitor_period.max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let all_pods = pods.store().list();
        let node_map: BTreeMap<String, Arc<Node>> =
            nodes.store().list().into_iter().map(|n| (n.metadata.name.clone().unwrap_or_default(), n)).collect();
        let missing: BTreeSet<String> = all_pods
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
            .filter(|n| !n.is_empty() && !node_map.contains_key(n))
            .collect();
        let mut gone = BTreeSet::new();
        for n in quarantine.observe(&missing, Instant::now(), ctx.config.node_monitor_grace_period) {
            match node_api.get_opt(&n).await {
                Ok(None) => {
                    gone.insert(n);
                }
                Ok(Some(_)) => {}
                Err(source) => {
                    tracing::warn!(error = %PodGcError::GetNode { node: n, source }, "pod GC: pass incomplete")
                }
            }
        }
        let threshold = ctx.config.terminated_pod_gc_threshold;
        for c in select(&all_pods, &node_map, &gone, threshold) {
            let pod = pods.store().get_named(&c.namespace, &c.name);
            if let Err(e) = collect(&ctx, &c, pod.as_deref()).await {
                tracing::warn!(error = %e, "pod GC: pass incomplete");
            }
        }
    }
}

/// Marks `c`'s pod Failed with a `DisruptionTarget` condition if it still runs, then force-deletes it.
async fn collect(ctx: &Context, c: &Collect, pod: Option<&Pod>) -> Result<(), PodGcError> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &c.namespace);
    let name = || format!("{}/{}", c.namespace, c.name);
    if let (true, Some(message), Some(pod)) = (c.running, c.cause.message(), pod) {
        let mut conditions: Vec<PodCondition> =
            pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        conditions.retain(|c| c.type_ != "DisruptionTarget");
        conditions.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("DeletionByPodGC".into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(jiff::Timestamp::now())),
            ..Default::default()
        });
        let patch = serde_json::json!({"status": {"phase": "Failed", "conditions": conditions}});
        match api.patch_status(&c.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(source) => return Err(PodGcError::MarkFailed { pod: name(), source }),
        }
    }
    tracing::info!(pod = %name(), cause = ?c.cause, "pod GC: force-deleting pod");
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(c.uid.clone()), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&c.name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(source) => Err(PodGcError::Delete { pod: name(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, Taint};

    fn pod(name: &str, node: &str, phase: &str, deleting: bool, created_s: i64) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.namespace = Some("ns".into());
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(created_s).unwrap()));
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        }
        p.spec = Some(PodSpec { node_name: (!node.is_empty()).then(|| node.into()), ..Default::default() });
        p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
        Arc::new(p)
    }

    fn node(name: &str, ready: bool, out_of_service: bool) -> (String, Arc<Node>) {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "Unknown" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        if out_of_service {
            n.spec = Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: TAINT_OUT_OF_SERVICE.into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        (name.into(), Arc::new(n))
    }

    fn picked(v: Vec<Collect>) -> Vec<(String, Cause)> {
        v.into_iter().map(|c| (c.name, c.cause)).collect()
    }

    #[test]
    fn collects_only_pods_without_a_live_agent() {
        let nodes: BTreeMap<_, _> =
            [node("alive", true, false), node("down", false, false), node("oos", false, true)].into_iter().collect();
        let pods = vec![
            pod("on-alive", "alive", "Running", true, 1),
            pod("on-down", "down", "Running", true, 2),
            pod("on-gone", "gone", "Running", false, 3),
            pod("on-unverified", "maybe", "Running", false, 4),
            pod("unscheduled", "", "Pending", true, 5),
            pod("on-oos", "oos", "Running", true, 6),
            pod("on-oos-not-deleting", "oos", "Running", false, 7),
        ];
        let gone = BTreeSet::from(["gone".to_string()]);
        assert_eq!(
            picked(select(&pods, &nodes, &gone, 0)),
            [
                ("on-gone".to_string(), Cause::NodeGone),
                ("unscheduled".to_string(), Cause::UnscheduledTerminating),
                ("on-oos".to_string(), Cause::OutOfService),
            ]
        );
    }

    #[test]
    fn terminated_pods_over_the_threshold_go_oldest_first() {
        let nodes: BTreeMap<_, _> = [node("n", true, false)].into_iter().collect();
        let pods = vec![
            pod("c", "n", "Succeeded", false, 30),
            pod("a", "n", "Failed", false, 10),
            pod("b", "n", "Succeeded", false, 20),
            pod("run", "n", "Running", false, 1),
        ];
        assert_eq!(
            picked(select(&pods, &nodes, &BTreeSet::new(), 1)),
            [("a".to_string(), Cause::TerminatedOverThreshold), ("b".to_string(), Cause::TerminatedOverThreshold),]
        );
        assert!(select(&pods, &nodes, &BTreeSet::new(), 0).is_empty());
        assert!(select(&pods, &nodes, &BTreeSet::new(), 3).is_empty());
    }

    #[test]
    fn quarantine_waits_and_forgets_nodes_that_come_back() {
        let mut q = Quarantine::default();
        let t0 = Instant::now();
        let q40 = Duration::from_secs(40);
        let missing = BTreeSet::from(["x".to_string()]);
        assert!(q.observe(&missing, t0, q40).is_empty());
        assert!(q.observe(&missing, t0 + Duration::from_secs(39), q40).is_empty());
        assert_eq!(q.observe(&missing, t0 + q40, q40), ["x"]);
        assert!(q.observe(&BTreeSet::new(), t0 + q40, q40).is_empty());
        assert!(q.observe(&missing, t0 + q40 * 2, q40).is_empty(), "the clock restarts after the node came back");
    }
}
