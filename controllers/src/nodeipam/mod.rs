//! Node IPAM: gives each Node a `spec.podCIDR` from the cluster CIDR (upstream pkg/controller/nodeipam, range
//! allocator). A Node without one gets the lowest free subnet; the allocation state is rebuilt from the Nodes
//! on start and at every repair (`--repair-interval`), so it is stable across restarts and a deleted Node's
//! subnet is free again. Problems (cluster CIDR full, a podCIDR out of range or overlapping another Node's)
//! are reported as events on the Node.

pub mod cidrset;
pub mod plan;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::Api;

use crate::context::Context;
use crate::runtime::{enqueue_changes, run_workers, Action, EventRecorder, Reconciler, Store, WorkQueue};
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

/// A work item: one Node, or a repair pass over all of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Reconcile the Node with this name.
    Node(String),
    /// Rebuild the allocation state from the Nodes and report problems.
    Repair,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Node(n) => write!(f, "node/{n}"),
            Key::Repair => f.write_str("repair"),
        }
    }
}

struct State {
    set: CidrSet,
    /// Node name → the resourceVersion of the cached Node our podCIDR patch was based on: until the cache
    /// shows a newer version, the Node is not patched again.
    patched: HashMap<String, String>,
    /// Node name → the last event message reported about it (each problem is reported once).
    reported: HashMap<String, String>,
    /// Nodes waiting for a free subnet.
    waiting: BTreeSet<String>,
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
        c.key().map(|k| Key::Node(k.name)).into_iter().collect()
    }));
    informer.wait_synced().await;
    let r = Arc::new(NodeIpam {
        nodes: informer.store(),
        api: Api::all(ctx.client.clone()),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
        cluster: set.cluster(),
        mask: ctx.config.node_cidr_mask_size,
        state: Mutex::new(State { set, patched: HashMap::new(), reported: HashMap::new(), waiting: BTreeSet::new() }),
    });
    // Every existing podCIDR is taken before any Node gets a new one.
    r.repair();
    tracing::info!(cluster_cidr = %r.cluster, mask = r.mask, used = r.lock().set.used(), "node IPAM synced");
    spawn_periodic(&ctx, r.nodes.clone(), queue.clone());
    run_workers(r, queue, 1, ctx.metrics.clone()).await;
    Ok(())
}

/// Queues a repair every `--repair-interval` and every Node every `--resync-period`.
fn spawn_periodic(ctx: &Context, nodes: Store<Node>, queue: WorkQueue<Key>) {
    let repair = ctx.config.repair_interval;
    let resync = ctx.config.resync_period;
    let q = queue.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + repair, repair);
        loop {
            tick.tick().await;
            q.add(Key::Repair);
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
        loop {
            tick.tick().await;
            for k in nodes.keys() {
                queue.add(Key::Node(k.name));
            }
        }
    });
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
            Key::Node(name) => self.reconcile_node(name).await,
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
            None => {
                st.reported.remove(name);
            }
            Some((reason, message, warning)) => {
                if st.reported.get(name) == Some(&message) {
                    return;
                }
                tracing::info!(node = name, reason, "{message}");
                if warning {
                    self.recorder.warning(node, reason, "Allocating", message.clone());
                } else {
                    self.recorder.normal(node, reason, "Allocating", message.clone());
                }
                st.reported.insert(name.to_string(), message);
            }
        }
    }

    /// After subnets were freed: Nodes waiting for one, or in conflict, try again.
    fn wake(&self, st: &State) {
        for n in st.waiting.iter().chain(st.reported.keys()) {
            self.queue.add(Key::Node(n.clone()));
        }
    }

    fn problem_event(p: &Problem, name: &str) -> (&'static str, String, bool) {
        (p.reason(), p.message(name), true)
    }

    async fn reconcile_node(&self, name: &str) -> Result<Action, NodeIpamError> {
        let Some(node) = self.nodes.get_named("", name) else {
            let mut st = self.lock();
            st.patched.remove(name);
            st.reported.remove(name);
            st.waiting.remove(name);
            if st.set.release_owner(name) {
                tracing::info!(node = name, "node deleted; its pod CIDR is free again");
                self.wake(&st);
            }
            return Ok(Action::Done);
        };
        let view = NodeCidrs::of(&node);
        if !view.pod_cidrs.is_empty() {
            let mut st = self.lock();
            st.patched.remove(name);
            st.waiting.remove(name);
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
            if st.patched.get(name) == Some(&rv) {
                return Ok(Action::Done); // patched; the cache has not caught up yet
            }
            let held = st.set.owned_by(name).first().copied();
            match held.or_else(|| st.set.allocate(name)) {
                Some(c) => {
                    st.waiting.remove(name);
                    c
                }
                None => {
                    st.waiting.insert(name.to_string());
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
                st.patched.insert(name.to_string(), rv);
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
            let in_flight =
                st.patched.get(&view.name).is_some_and(|p| Some(p) == node.metadata.resource_version.as_ref());
            if in_flight {
                for c in st.set.owned_by(&view.name) {
                    if !matches!(fresh.occupy(c, &view.name), Ok(Ok(()))) {
                        st.patched.remove(&view.name);
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
        st.patched.retain(|n, _| live.contains(n.as_str()));
        st.waiting.retain(|n| live.contains(n.as_str()));
        st.reported.retain(|n, _| live.contains(n.as_str()));
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
            self.queue.add(Key::Node(v.name.clone()));
        }
    }
}
