//! Node IPAM: gives each Node a `spec.podCIDR` from the cluster CIDR (upstream pkg/controller/nodeipam, range
//! allocator). A Node without one gets the lowest free subnet; the allocation state is rebuilt from the Nodes
//! on start and at every repair (`--repair-interval`), so it is stable across restarts and a deleted Node's
//! subnet is free again. Problems (cluster CIDR full, a podCIDR out of range or overlapping another Node's)
//! are reported as events on the Node.

pub mod cidrset;
pub mod plan;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::Api;

use crate::context::Context;
use crate::runtime::allocator::{AllocatorKey, Ledger};
use crate::runtime::{
    enqueue_changes, every, resync, run_workers, Action, EventRecorder, Reconciler, Store, WorkQueue,
};
use cidrset::{CidrSet, CidrSetError};
use plan::{NodeCidrs, Problem};

/// The component name of node IPAM's events (upstream's range allocator reports as "cidrAllocator").
pub const COMPONENT: &str = "cidrAllocator";

/// What stops node IPAM or fails one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum NodeIpamError {
    /// `--cluster-cidr` / `--node-cidr-mask-size` are unusable.
    #[error("node IPAM configuration: {0}")]
    Config(#[from] CidrSetError),
    /// Writing a Node's podCIDR failed.
    #[error("setting the podCIDR of node {node} to {cidr}: {source}")]
    Patch {
        node: String,
        cidr: IpNet,
        #[source]
        source: kube::Error,
    },
}

/// A work item: the Node with this name, or a repair pass (rebuild the allocation state from the Nodes and
/// report problems).
pub type Key = AllocatorKey<String>;

struct State {
    set: CidrSet,
    /// By Node name: podCIDR patches in flight, problems reported, Nodes waiting for a free subnet.
    ledger: Ledger<String>,
}

/// The node IPAM reconciler.
pub struct NodeIpam {
    nodes: Store<Node>,
    api: Api<Node>,
    recorder: EventRecorder,
    queue: WorkQueue<Key>,
    cluster: IpNet,
    mask: u8,
    state: Mutex<State>,
}

/// Runs node IPAM until the process ends (idles when `--allocate-node-cidrs=false`).
pub async fn run(ctx: Context) -> Result<(), NodeIpamError> {
    if !ctx.config.allocate_node_cidrs {
        tracing::info!("node IPAM disabled (--allocate-node-cidrs=false)");
        return std::future::pending().await;
    }
    let set = CidrSet::new(ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size)?;
    let informer = ctx.informers.nodes.clone();
    let queue: WorkQueue<Key> = WorkQueue::new();
    tokio::spawn(enqueue_changes(informer.subscribe(), queue.clone(), |c| {
        c.key().map(|k| Key::Object(k.name)).into_iter().collect()
    }));
    informer.wait_synced().await;
    let r = Arc::new(NodeIpam {
        nodes: informer.store(),
        api: Api::all(ctx.client.clone()),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
        cluster: set.cluster(),
        mask: ctx.config.node_cidr_mask_size,
        state: Mutex::new(State { set, ledger: Ledger::default() }),
    });
    // Every existing podCIDR is taken before any Node gets a new one.
    r.repair();
    tracing::info!(cluster_cidr = %r.cluster, mask = r.mask, used = r.lock().set.used(), "node IPAM synced");
    let q = queue.clone();
    every(ctx.config.repair_interval, move || q.add(Key::Repair));
    resync(r.nodes.clone(), queue.clone(), ctx.config.resync_period, |n: &Node| {
        n.metadata.name.clone().map(Key::Object)
    });
    run_workers(r, queue, 1, ctx.metrics.clone()).await;
    Ok(())
}

impl Reconciler for NodeIpam {
    type Key = Key;
    type Error = NodeIpamError;

    fn name(&self) -> &'static str {
        "node-ipam-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, NodeIpamError> {
        match key {
            Key::Repair => {
                self.repair();
                Ok(Action::Done)
            }
            Key::Object(name) => self.reconcile_node(name).await,
        }
    }
}

impl NodeIpam {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `problem` about `node` as an event unless that exact message was the last one reported; `None`
    /// forgets what was reported.
    fn report(&self, st: &mut State, node: &Node, name: &str, problem: Option<(&str, String, bool)>) {
        match problem {
            None => st.ledger.clear_report(name),
            Some((reason, message, warning)) => {
                if !st.ledger.first_report(name, &message) {
                    return;
                }
                tracing::info!(node = name, reason, "{message}");
                if warning {
                    self.recorder.warning(node, reason, "Allocating", message);
                } else {
                    self.recorder.normal(node, reason, "Allocating", message);
                }
            }
        }
    }

    /// After subnets were freed: Nodes waiting for one, or in conflict, try again.
    fn wake(&self, st: &State) {
        for n in st.ledger.waiting().chain(st.ledger.reported()) {
            self.queue.add(Key::Object(n.clone()));
        }
    }

    fn problem_event(p: &Problem, name: &str) -> (&'static str, String, bool) {
        (p.reason(), p.message(name), true)
    }

    async fn reconcile_node(&self, name: &str) -> Result<Action, NodeIpamError> {
        let Some(node) = self.nodes.get_named("", name) else {
            let mut st = self.lock();
            st.ledger.forget(name);
            if st.set.release_owner(name) {
                tracing::info!(node = name, "node deleted; its pod CIDR is free again");
                self.wake(&st);
            }
            return Ok(Action::Done);
        };
        let view = NodeCidrs::of(&node);
        if !view.pod_cidrs.is_empty() {
            let mut st = self.lock();
            st.ledger.forget_write(name);
            st.ledger.set_waiting(name, false);
            let held: Vec<IpNet> = st.set.owned_by(name);
            st.set.release_owner(name);
            let problem = plan::occupy(&mut st.set, &view);
            let freed = held.iter().any(|c| !st.set.owned_by(name).contains(c));
            self.report(&mut st, &node, name, problem.as_ref().map(|p| Self::problem_event(p, name)));
            if freed {
                self.wake(&st);
            }
            return Ok(Action::Done);
        }
        if node.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let rv = node.metadata.resource_version.clone().unwrap_or_default();
        let cidr = {
            let mut st = self.lock();
            if st.ledger.in_flight(name, Some(&rv)) {
                return Ok(Action::Done); // patched; the cache has not caught up yet
            }
            let held = st.set.owned_by(name).first().copied();
            match held.or_else(|| st.set.allocate(name)) {
                Some(c) => {
                    st.ledger.set_waiting(name, false);
                    c
                }
                None => {
                    st.ledger.set_waiting(name, true);
                    let msg = format!("Node {name} status is now: CIDRNotAvailable");
                    self.report(&mut st, &node, name, Some(("CIDRNotAvailable", msg, false)));
                    return Ok(Action::Done);
                }
            }
        };
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": rv },
            "spec": { "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] },
        });
        match self.api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(node = name, pod_cidr = %cidr, "allocated pod CIDR");
                let mut st = self.lock();
                st.ledger.wrote(name.to_string(), rv);
                self.report(&mut st, &node, name, None);
                Ok(Action::Done)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let mut st = self.lock();
                if st.set.release_owner(name) {
                    self.wake(&st);
                }
                Ok(Action::Done)
            }
            // A conflict means the Node changed meanwhile: retry with the newer one, keeping the subnet.
            Err(source) => Err(NodeIpamError::Patch { node: name.to_string(), cidr, source }),
        }
    }

    /// Rebuilds the allocation state from the cached Nodes (keeping subnets just patched onto Nodes the cache
    /// does not show with them yet), reports problems, and queues the Nodes that need a subnet.
    fn repair(&self) {
        let nodes = self.nodes.list();
        let views: Vec<NodeCidrs> = nodes.iter().map(|n| NodeCidrs::of(n)).collect();
        let Ok(mut fresh) = CidrSet::new(self.cluster, self.mask) else { return };
        let problems = plan::rebuild(&mut fresh, &views);
        let mut st = self.lock();
        for (node, view) in nodes.iter().zip(&views) {
            if !view.pod_cidrs.is_empty() {
                continue;
            }
            let in_flight = st.ledger.in_flight(view.name.as_str(), node.metadata.resource_version.as_deref());
            if in_flight {
                for c in st.set.owned_by(&view.name) {
                    if !matches!(fresh.occupy(c, &view.name), Ok(Ok(()))) {
                        st.ledger.forget_write(view.name.as_str());
                    }
                }
            }
        }
        let before = st.set.owners();
        let after = fresh.owners();
        for stale in before.difference(&after) {
            tracing::warn!(node = %stale, "repair: released a pod CIDR held for a node that does not have it");
        }
        for adopted in after.difference(&before) {
            tracing::debug!(node = %adopted, "repair: tracked a pod CIDR");
        }
        let released = before.difference(&after).next().is_some();
        st.set = fresh;
        let live: BTreeSet<&str> = views.iter().map(|v| v.name.as_str()).collect();
        st.ledger.retain(|n| live.contains(n.as_str()));
        let with_problem: BTreeSet<&str> = problems.iter().map(|(n, _)| n.as_str()).collect();
        for (node, view) in nodes.iter().zip(&views) {
            if !view.pod_cidrs.is_empty() && !with_problem.contains(view.name.as_str()) {
                self.report(&mut st, node, &view.name, None);
            }
        }
        for (name, p) in &problems {
            if let Some(node) = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name.as_str())) {
                self.report(&mut st, node, name, Some(Self::problem_event(p, name)));
            }
        }
        if released {
            self.wake(&st);
        }
        for v in views.iter().filter(|v| v.pod_cidrs.is_empty()) {
            self.queue.add(Key::Object(v.name.clone()));
        }
    }
}
