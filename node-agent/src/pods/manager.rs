//! The pod manager: watches the pods bound to this node, runs one worker per pod, adopts what a previous agent
//! left running (same processes, same IPs) and removes what no pod owns any more; a periodic sweep repeats the
//! cleanup and CNI GC.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::watcher;
use kube::Api;
use tokio::sync::mpsc;

use super::orphans;
use super::runtime::PodRuntime;
use super::worker::{self, Msg};

/// How often orphans are swept and CNI GC runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn uid_of(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn terminal(p: &Pod) -> bool {
    matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// The manager's state.
struct Manager {
    rt: Arc<PodRuntime>,
    workers: HashMap<String, mpsc::Sender<Msg>>,
    done_tx: mpsc::Sender<String>,
}

impl Manager {
    async fn apply(&mut self, pod: Pod) {
        let uid = uid_of(&pod);
        if uid.is_empty() {
            return;
        }
        if let Some(tx) = self.workers.get(&uid) {
            if tx.send(Msg::Update(Box::new(pod))).await.is_err() {
                self.workers.remove(&uid);
            }
            return;
        }
        let on_disk = self.rt.layout.pod_dir(&uid).exists();
        if !on_disk && pod.metadata.deletion_timestamp.is_some() {
            // Never ran here (or already cleaned up): nothing to stop; finish the deletion as kubelet does.
            let api: Api<Pod> =
                Api::namespaced(self.rt.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
                ..Default::default()
            };
            let _ = api.delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp).await;
            return;
        }
        if !on_disk && terminal(&pod) {
            return;
        }
        let tx = worker::spawn(self.rt.clone(), pod, on_disk, self.done_tx.clone());
        self.workers.insert(uid, tx);
    }

    async fn delete(&mut self, pod: &Pod) {
        if let Some(tx) = self.workers.get(&uid_of(pod)) {
            let _ = tx.send(Msg::Deleted).await;
        }
    }

    fn live(&self) -> HashSet<String> {
        self.workers.keys().cloned().collect()
    }
}

/// Runs the pod runtime until the process ends.
pub async fn run(rt: Arc<PodRuntime>) {
    let (done_tx, mut done_rx) = mpsc::channel::<String>(256);
    let mut m = Manager { rt: rt.clone(), workers: HashMap::new(), done_tx };
    let api: Api<Pod> = Api::all(rt.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", rt.node_name));
    let mut stream = watcher::watcher(api, cfg).boxed();
    let mut listing: Vec<Pod> = Vec::new();
    let mut first = true;
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.reset();
    loop {
        tokio::select! {
            ev = stream.next() => {
                let Some(ev) = ev else { break };
                match ev {
                    Ok(watcher::Event::Init) => listing.clear(),
                    Ok(watcher::Event::InitApply(p)) => listing.push(p),
                    Ok(watcher::Event::InitDone) => {
                        let seen: HashSet<String> = listing.iter().map(uid_of).collect();
                        if first {
                            first = false;
                            // Adopt what belongs to a pod that still exists; remove the rest.
                            orphans::sweep(&rt, &seen.iter().filter(|u| rt.layout.pod_dir(u).exists()).cloned().collect()).await;
                        }
                        for uid in m.live() {
                            if !seen.contains(&uid) {
                                if let Some(tx) = m.workers.get(&uid) {
                                    let _ = tx.send(Msg::Deleted).await;
                                }
                            }
                        }
                        for p in std::mem::take(&mut listing) {
                            m.apply(p).await;
                        }
                    }
                    Ok(watcher::Event::Apply(p)) => m.apply(p).await,
                    Ok(watcher::Event::Delete(p)) => m.delete(&p).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "watching pods failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            Some(uid) = done_rx.recv() => {
                m.workers.remove(&uid);
            }
            _ = sweep.tick() => {
                if !first {
                    let live = m.live();
                    orphans::sweep(&rt, &live).await;
                    for s in orphans::stale_sockets(&rt.layout.sock_dir()) {
                        let _ = std::fs::remove_file(s);
                    }
                }
                rt.metrics.running_pods.set(m.workers.len() as i64);
            }
        }
    }
}
