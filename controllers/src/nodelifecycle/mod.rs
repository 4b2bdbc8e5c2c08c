//! The node lifecycle controller (upstream pkg/controller/nodelifecycle): a Node whose kubelet stopped
//! renewing its Lease and posting status for `--node-monitor-grace-period` gets Ready=Unknown ([`health`]),
//! its pods get Ready=False (so their endpoints become not ready), and it gets `unreachable`/`not-ready`
//! taints ([`taints`]); the taints go when the kubelet reports Ready again. Each Node is checked every
//! `--node-monitor-period`.

pub mod health;
pub mod taints;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::context::{Context, NODE_LEASE_NAMESPACE};
use crate::runtime::conditions::{node_ready_status, pod_is_ready};
use crate::runtime::{
    enqueue_all, enqueue_changes, run_workers, Action, EventRecorder, Informer, Reconciler, WorkQueue,
};
use health::HealthTracker;

/// What can go wrong checking a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeLifecycleError {
    /// Writing a Node or Pod failed.
    #[error("{what} {name}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The object.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The work queue stopped.
    #[error("the node lifecycle controller's work queue stopped")]
    Stopped,
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), NodeLifecycleError> {
    let queue: WorkQueue<String> = WorkQueue::new();
    let inf = &ctx.informers;
    let recorder = ctx.recorder("node-controller");
    let rec = recorder.clone();
    tokio::spawn(enqueue_changes(inf.nodes.subscribe(), queue.clone(), move |c| {
        match (&c.old, &c.new) {
            (None, Some(n)) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                rec.normal(
                    n.as_ref(),
                    "RegisteredNode",
                    "Register",
                    format!("Node {name} event: Registered Node {name} in Controller"),
                );
            }
            (Some(o), None) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                rec.normal(
                    o.as_ref(),
                    "RemovingNode",
                    "Remove",
                    format!("Node {name} event: Removing Node {name} from Controller"),
                );
            }
            _ => {}
        }
        c.key().map(|k| k.name).into_iter().collect()
    }));
    tokio::spawn(enqueue_changes(inf.node_leases.subscribe(), queue.clone(), |c| {
        c.key().filter(|k| k.namespace == NODE_LEASE_NAMESPACE).map(|k| k.name).into_iter().collect()
    }));
    // A pod reported Ready on a node that is not: mark it again (upstream processPod).
    let nodes = inf.nodes.store();
    tokio::spawn(enqueue_changes(inf.pods.subscribe(), queue.clone(), move |c| {
        let Some(p) = c.new.as_deref() else { return Vec::new() };
        let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else { return Vec::new() };
        let not_ready = nodes.get_named("", &node).is_some_and(|n| node_ready_status(&n).is_some_and(|s| s != "True"));
        if not_ready && pod_is_ready(p) {
            vec![node]
        } else {
            Vec::new()
        }
    }));
    inf.nodes.wait_synced().await;
    inf.node_leases.wait_synced().await;
    inf.pods.wait_synced().await;
    // Every Node once; each then comes back every --node-monitor-period (RequeueAfter).
    enqueue_all(&inf.nodes.store(), &queue, |n: &Node| n.metadata.name.clone());
    let r = NodeLifecycle {
        client: ctx.client.clone(),
        nodes: inf.nodes.clone(),
        leases: inf.node_leases.clone(),
        pods: inf.pods.clone(),
        recorder,
        health: Mutex::new(HealthTracker::default()),
        monitor_period: ctx.config.node_monitor_period.max(Duration::from_millis(100)),
        grace: ctx.config.node_monitor_grace_period,
        startup_grace: ctx.config.node_startup_grace_period,
    };
    run_workers(Arc::new(r), queue, 1, ctx.metrics.clone()).await;
    Err(NodeLifecycleError::Stopped)
}

struct NodeLifecycle {
    client: Client,
    nodes: Informer<Node>,
    leases: Informer<k8s_openapi::api::coordination::v1::Lease>,
    pods: Informer<Pod>,
    recorder: EventRecorder,
    health: Mutex<HealthTracker>,
    monitor_period: Duration,
    grace: Duration,
    startup_grace: Duration,
}

fn api_err<'a>(what: &'static str, name: &'a str) -> impl FnOnce(kube::Error) -> NodeLifecycleError + 'a {
    move |source| NodeLifecycleError::Api { what, name: name.to_string(), source }
}

impl NodeLifecycle {
    fn health(&self) -> std::sync::MutexGuard<'_, HealthTracker> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets Ready=False on every Ready pod bound to `node` (upstream MarkPodsNotReady).
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), NodeLifecycleError> {
        let now = Time(jiff::Timestamp::now());
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .list()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node) && pod_is_ready(p))
            .collect();
        for p in pods {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let mut conds = p.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(now.clone());
            }
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": p.metadata.resource_version},
                "status": {"conditions": conds},
            });
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            tracing::info!(pod = %format!("{ns}/{name}"), node, "marking pod not ready: its node is not ready");
            match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.recorder.warning(p.as_ref(), "NodeNotReady", "MarkNotReady", "Node is not ready".into());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(api_err("marking not ready pod", &format!("{ns}/{name}"))(e)),
            }
        }
        Ok(())
    }
}

impl Reconciler for NodeLifecycle {
    type Key = String;
    type Error = NodeLifecycleError;

    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    async fn reconcile(&self, name: &String) -> Result<Action, NodeLifecycleError> {
        let Some(cached) = self.nodes.store().get_named("", name) else {
            self.health().forget(name);
            return Ok(Action::Done);
        };
        let mut node: Node = (*cached).clone();
        let api: Api<Node> = Api::all(self.client.clone());
        let lease_renew = self
            .leases
            .store()
            .get_named(NODE_LEASE_NAMESPACE, name)
            .and_then(|l| l.spec.as_ref()?.renew_time.clone())
            .map(|t| t.0);
        let probe = self.health().observe(&node, lease_renew, Instant::now());
        let grace = health::grace_period(&node, self.grace, self.startup_grace);
        if probe.elapsed() > grace {
            if let Some(conds) = health::silent_conditions(&node, &Time(jiff::Timestamp::now())) {
                let was = node_ready_status(&node).map(str::to_string);
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": node.metadata.resource_version},
                    "status": {"conditions": conds},
                });
                tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
                node = api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err("marking unknown node", name))?;
                if was.as_deref() != Some("Unknown") {
                    self.recorder.normal(
                        &node,
                        "NodeNotReady",
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    );
                }
            }
        }
        if node_ready_status(&node).is_some_and(|s| s != "True") {
            self.mark_pods_not_ready(name).await?;
        }
        let all: Vec<Arc<Node>> = self.nodes.store().list();
        let others = all.iter().filter(|n| n.metadata.name.as_deref() != Some(name.as_str())).map(|n| n.as_ref());
        let states = taints::zone_states(others.chain(std::iter::once(&node)));
        let policy = taints::no_execute_policy(&states, &taints::zone_of(&node));
        if let Some(t) = taints::desired_taints(&node, policy, &Time(jiff::Timestamp::now())) {
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": t},
            });
            tracing::info!(node = %name, taints = ?t.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect::<Vec<_>>(), "updating node taints");
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(api_err("tainting node", name))?;
        }
        Ok(Action::RequeueAfter(self.monitor_period))
    }
}
