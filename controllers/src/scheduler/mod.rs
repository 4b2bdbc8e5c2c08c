//! The scheduler (kube-scheduler's default profile, reduced): binds each pending pod of `default-scheduler`
//! to a Ready node through `pods/binding`, spreading the replicas of one controller across nodes and honoring
//! nodeSelector, required node affinity, taints, cordons and node capacity. A pod that fits nowhere stays
//! Pending with `PodScheduled=False` (reason Unschedulable) and a FailedScheduling event worded as
//! upstream's; it is retried when nodes change, when a bound pod goes away, and every `--resync-period`.
//!
//! Pods are scheduled one at a time (one worker), each decision counting the pods assumed onto nodes whose
//! binding the informer has not shown yet ([`cache`]), so a burst of replicas spreads evenly. As upstream's
//! binding cycle, bindings run in the background (at most [`MAX_BINDINGS_IN_FLIGHT`] at once) while the
//! next pod is scheduled; a failed binding forgets the assumption and retries the pod with backoff.

pub mod algorithm;
pub mod cache;
pub mod filter;
pub mod resources;
pub mod score;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::context::Context;
use crate::runtime::conditions::node_ready_status;
use crate::runtime::queue::backoff;
use crate::runtime::{every, run_workers, Action, Change, EventRecorder, ObjectKey, Reconciler, Store, WorkQueue};
use cache::SchedulerCache;

/// The scheduler's name: pods with this `spec.schedulerName` (or none) are ours; also the events' reporter.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// How many bindings may be in flight at once.
pub const MAX_BINDINGS_IN_FLIGHT: usize = 32;

/// What fails one scheduling attempt (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Writing the PodScheduled condition failed.
    #[error("setting the PodScheduled condition of pod {pod}: {source}")]
    Condition {
        pod: ObjectKey,
        #[source]
        source: kube::Error,
    },
}

/// Whether `pod` waits for this scheduler: no node yet, ours, not terminating or terminated, not gated.
pub fn needs_scheduling(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    spec.node_name.as_deref().is_none_or(str::is_empty)
        && spec.scheduler_name.as_deref().is_none_or(|s| s.is_empty() || s == SCHEDULER_NAME)
        && spec.scheduling_gates.as_ref().is_none_or(Vec::is_empty)
        && pod.metadata.deletion_timestamp.is_none()
        && phase != "Succeeded"
        && phase != "Failed"
}

/// Whether a Node change could let a pod fit that did not (labels, taints, cordon, readiness, capacity).
pub fn node_change_matters(old: Option<&Node>, new: Option<&Node>) -> bool {
    match (old, new) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(o), Some(n)) => {
            let taints = |x: &Node| x.spec.as_ref().map(|s| (s.taints.clone(), s.unschedulable));
            o.metadata.labels != n.metadata.labels
                || taints(o) != taints(n)
                || node_ready_status(o) != node_ready_status(n)
                || resources::allocatable(o) != resources::allocatable(n)
        }
    }
}

/// A failed attempt: nothing is retried until the cluster or the pod changed since.
struct Attempt {
    generation: u64,
    resource_version: String,
}

struct State {
    cache: SchedulerCache,
    unschedulable: HashMap<ObjectKey, Attempt>,
    /// Failed bindings in a row, by pod (for the retry backoff).
    bind_failures: HashMap<ObjectKey, u32>,
    /// Bumped whenever something changes that could make an unschedulable pod fit.
    generation: u64,
}

/// The scheduler's reconciler.
pub struct Scheduler {
    pods: Store<Pod>,
    nodes: Store<Node>,
    client: Client,
    recorder: EventRecorder,
    queue: WorkQueue<ObjectKey>,
    state: Arc<Mutex<State>>,
    bindings: Arc<Semaphore>,
}

/// Runs the scheduler until the process ends.
pub async fn run(ctx: Context) -> Result<(), SchedulerError> {
    let pods = ctx.informers.pods.clone();
    let nodes = ctx.informers.nodes.clone();
    let mut pod_changes = pods.subscribe();
    let mut node_changes = nodes.subscribe();
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let s = Arc::new(Scheduler {
        pods: pods.store(),
        nodes: nodes.store(),
        client: ctx.client.clone(),
        recorder: ctx.recorder(SCHEDULER_NAME),
        queue: queue.clone(),
        state: Arc::new(Mutex::new(State {
            cache: SchedulerCache::new(),
            unschedulable: HashMap::new(),
            bind_failures: HashMap::new(),
            generation: 0,
        })),
        bindings: Arc::new(Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
    });
    {
        let mut st = s.lock();
        for p in s.pods.list() {
            st.cache.sync(None, Some(&p));
        }
    }
    let s2 = s.clone();
    tokio::spawn(async move {
        while let Some(c) = pod_changes.recv().await {
            s2.on_pod_change(&c);
        }
    });
    let s2 = s.clone();
    tokio::spawn(async move {
        while let Some(c) = node_changes.recv().await {
            s2.on_node_change(&c);
        }
    });
    s.resync();
    let s2 = s.clone();
    every(ctx.config.resync_period, move || s2.resync());
    run_workers(s, queue, 1, ctx.metrics.clone()).await;
    Ok(())
}

impl Reconciler for Scheduler {
    type Key = ObjectKey;
    type Error = SchedulerError;

    fn name(&self) -> &'static str {
        SCHEDULER_NAME
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, SchedulerError> {
        let Some(pod) = self.pods.get(key) else {
            self.lock().unschedulable.remove(key);
            return Ok(Action::Done);
        };
        if !needs_scheduling(&pod) {
            self.lock().unschedulable.remove(key);
            return Ok(Action::Done);
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rv = pod.metadata.resource_version.clone().unwrap_or_default();
        let (result, generation) = {
            let mut st = self.lock();
            if st.cache.is_assumed(&uid) {
                return Ok(Action::Done); // bound; the informer has not shown it yet
            }
            if let Some(a) = st.unschedulable.get(key) {
                if a.generation == st.generation && a.resource_version == rv {
                    return Ok(Action::Done); // nothing changed since it did not fit
                }
            }
            let nodes = self.nodes.list();
            let result = algorithm::schedule(&pod, &nodes, &st.cache);
            if let Ok(node) = &result {
                st.cache.assume(&pod, node);
            }
            (result, st.generation)
        };
        match result {
            Ok(node) => {
                // Closed never: the semaphore lives as long as the scheduler.
                if let Ok(permit) = self.bindings.clone().acquire_owned().await {
                    tokio::spawn(self.binder().bind(pod, key.clone(), uid, node, permit));
                }
                Ok(Action::Done)
            }
            Err(fit) => self.record_unschedulable(&pod, key, &rv, generation, &fit.to_string()).await,
        }
    }
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    fn binder(&self) -> Binder {
        Binder {
            client: self.client.clone(),
            recorder: self.recorder.clone(),
            queue: self.queue.clone(),
            state: self.state.clone(),
        }
    }

    /// Keeps the cache current and queues pods that wait; a bound pod going away retries the unschedulable.
    fn on_pod_change(&self, change: &Change<Pod>) {
        let Some(key) = change.key() else { return };
        let current = self.pods.get(&key);
        let old = change.old.as_deref();
        let old_uid = old.and_then(|p| p.metadata.uid.as_deref());
        let was_bound =
            old.is_some_and(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty()));
        let still_there = current.as_deref().is_some_and(|p| {
            p.metadata.uid.as_deref() == old_uid
                && !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
        });
        let mut st = self.lock();
        st.cache.sync(old_uid, current.as_deref());
        if current.as_deref().is_some_and(needs_scheduling) {
            self.queue.add(key);
        } else {
            st.unschedulable.remove(&key);
            st.bind_failures.remove(&key);
        }
        if was_bound && !still_there && !st.unschedulable.is_empty() {
            self.retry_unschedulable(&mut st);
        }
    }

    fn on_node_change(&self, change: &Change<Node>) {
        if node_change_matters(change.old.as_deref(), change.new.as_deref()) {
            let mut st = self.lock();
            self.retry_unschedulable(&mut st);
        }
    }

    fn retry_unschedulable(&self, st: &mut State) {
        st.generation += 1;
        for k in st.unschedulable.keys() {
            self.queue.add(k.clone());
        }
    }

    /// Queues every waiting pod (the periodic flush of upstream's unschedulable queue).
    fn resync(&self) {
        self.lock().generation += 1;
        for p in self.pods.list().iter().filter(|p| needs_scheduling(p)) {
            self.queue.add(ObjectKey::of(p.as_ref()));
        }
    }

    /// Reports that `pod` fits nowhere: a FailedScheduling event, and `PodScheduled=False` with the reason.
    async fn record_unschedulable(
        &self,
        pod: &Pod,
        key: &ObjectKey,
        rv: &str,
        generation: u64,
        message: &str,
    ) -> Result<Action, SchedulerError> {
        tracing::info!(pod = %key, "unschedulable: {message}");
        self.recorder.warning(pod, "FailedScheduling", "Scheduling", message.to_string());
        let cond = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let up_to_date = cond.is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(message)
        });
        let mut seen_rv = rv.to_string();
        if !up_to_date {
            let since = cond
                .filter(|c| c.status == "False")
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| Time(jiff::Timestamp::now()));
            let patch = json!({ "status": { "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": since,
            }]}});
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
            match api.patch_status(&key.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                Ok(p) => seen_rv = p.metadata.resource_version.unwrap_or_default(),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::Done),
                Err(source) => return Err(SchedulerError::Condition { pod: key.clone(), source }),
            }
        }
        self.lock().unschedulable.insert(key.clone(), Attempt { generation, resource_version: seen_rv });
        Ok(Action::Done)
    }
}

/// What a background binding needs.
struct Binder {
    client: Client,
    recorder: EventRecorder,
    queue: WorkQueue<ObjectKey>,
    state: Arc<Mutex<State>>,
}

impl Binder {
    /// POSTs the pod's binding to `node`; on failure forgets the assumption and retries the pod later.
    async fn bind(self, pod: Arc<Pod>, key: ObjectKey, uid: String, node: String, _permit: OwnedSemaphorePermit) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": { "name": key.name, "namespace": key.namespace, "uid": uid },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node },
        });
        match api.create_subresource::<_, Value>("binding", &key.name, &PostParams::default(), &binding).await {
            Ok(_) => {
                tracing::info!(pod = %key, node, "bound");
                let mut st = lock_state(&self.state);
                st.unschedulable.remove(&key);
                st.bind_failures.remove(&key);
                drop(st);
                let msg = format!("Successfully assigned {key} to {node}");
                self.recorder.normal(pod.as_ref(), "Scheduled", "Binding", msg);
            }
            // Bound by someone else, being deleted, or gone: the informer will show what happened.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                tracing::debug!(pod = %key, node, reason = %s.message, "binding refused");
                let mut st = lock_state(&self.state);
                st.cache.forget(&uid);
                st.bind_failures.remove(&key);
            }
            Err(e) => {
                let failures = {
                    let mut st = lock_state(&self.state);
                    st.cache.forget(&uid);
                    let n = st.bind_failures.entry(key.clone()).or_default();
                    *n = n.saturating_add(1);
                    *n
                };
                tracing::warn!(pod = %key, node, failures, error = %e, "binding failed; retrying");
                self.queue.add_after(key, backoff(failures - 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, PodStatus};

    #[test]
    fn only_pending_pods_of_this_scheduler_are_scheduled() {
        let pod = |spec: PodSpec| Pod { spec: Some(spec), ..Default::default() };
        assert!(needs_scheduling(&pod(PodSpec::default())));
        assert!(needs_scheduling(&pod(PodSpec { scheduler_name: Some(SCHEDULER_NAME.into()), ..Default::default() })));
        assert!(!needs_scheduling(&pod(PodSpec { scheduler_name: Some("other".into()), ..Default::default() })));
        assert!(!needs_scheduling(&pod(PodSpec { node_name: Some("n".into()), ..Default::default() })));
        let mut done = pod(PodSpec::default());
        done.status = Some(PodStatus { phase: Some("Failed".into()), ..Default::default() });
        assert!(!needs_scheduling(&done));
        let mut deleting = pod(PodSpec::default());
        deleting.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert!(!needs_scheduling(&deleting));
    }

    #[test]
    fn only_scheduling_relevant_node_changes_matter() {
        let mut a = Node::default();
        a.metadata.name = Some("a".into());
        assert!(node_change_matters(None, Some(&a)));
        assert!(!node_change_matters(Some(&a), None));
        let mut b = a.clone();
        b.metadata.resource_version = Some("9".into());
        assert!(!node_change_matters(Some(&a), Some(&b)), "a heartbeat is not a change");
        b.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        assert!(node_change_matters(Some(&a), Some(&b)));
        let mut c = a.clone();
        c.metadata.labels = Some([("disk".to_string(), "ssd".to_string())].into());
        assert!(node_change_matters(Some(&a), Some(&c)));
    }
}
