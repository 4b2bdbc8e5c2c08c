//! A fake node for controller tests that need no kernel networking: it registers a Ready Node, renews its
//! heartbeat Lease in `kube-node-lease`, and does through the API what a node agent does for the pods bound
//! to it — gives each an IP from the Node's `spec.podCIDR`, reports it Running and Ready through the status
//! subresource, and completes graceful deletions. Nothing runs and no packet is sent: the addresses only
//! appear in API objects.
//!
//! Like a kubelet it is level-triggered: whatever changes a pod's or the Node's status (the node lifecycle
//! controller marking it not ready, say), the fake puts back what it wants to report while it is "alive".

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, HostIP, Node, NodeAddress, NodeCondition, NodeStatus,
    NodeSystemInfo, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::task::JoinHandle;

/// How a [`FakeNode`] behaves.
#[derive(Clone, Debug)]
pub struct FakeNodeOptions {
    /// Extra Node labels (besides `kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch`).
    pub labels: BTreeMap<String, String>,
    /// The Node's InternalIP as reported in its status (never used for traffic).
    pub internal_ip: Ipv4Addr,
    /// How often the heartbeat Lease is renewed.
    pub lease_renew_interval: Duration,
    /// Whether new pods are reported Ready at once (otherwise Running but not Ready until
    /// [`FakeNode::set_pod_ready`]).
    pub pods_ready: bool,
    /// Pod CIDR to use when the Node gets none from node IPAM within 5 s.
    pub fallback_pod_cidr: (Ipv4Addr, u8),
}

impl Default for FakeNodeOptions {
    fn default() -> Self {
        FakeNodeOptions {
            labels: BTreeMap::new(),
            internal_ip: Ipv4Addr::new(192, 168, 56, 11),
            lease_renew_interval: Duration::from_secs(1),
            pods_ready: true,
            fallback_pod_cidr: (Ipv4Addr::new(10, 250, 0, 0), 24),
        }
    }
}

struct State {
    /// Pod uid → its IP.
    ips: HashMap<String, Ipv4Addr>,
    next_host: u32,
    /// The pod CIDR in use, once known.
    cidr: Option<(Ipv4Addr, u8)>,
    /// Readiness to report, by `namespace/name`, overriding `pods_ready`.
    ready: HashMap<String, bool>,
}

/// A registered fake node; its tasks stop on drop.
pub struct FakeNode {
    name: String,
    client: Client,
    heartbeat: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    options: FakeNodeOptions,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeNode {
    /// Registers node `name` as Ready and starts acting as its agent.
    pub async fn start(client: Client, name: &str) -> Result<FakeNode> {
        Self::start_with(client, name, FakeNodeOptions::default()).await
    }

    /// [`FakeNode::start`] with options.
    pub async fn start_with(client: Client, name: &str, options: FakeNodeOptions) -> Result<FakeNode> {
        let nodes: Api<Node> = Api::all(client.clone());
        let mut labels = options.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), name.into());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        let node = Node {
            metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        };
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("registering node {name}")),
        }
        let heartbeat = Arc::new(AtomicBool::new(true));
        let state =
            Arc::new(Mutex::new(State { ips: HashMap::new(), next_host: 2, cidr: None, ready: HashMap::new() }));
        let mut fake = FakeNode {
            name: name.into(),
            client: client.clone(),
            heartbeat: heartbeat.clone(),
            state,
            options,
            tasks: Vec::new(),
        };
        fake.post_node_status().await?;
        fake.renew_lease().await?;
        fake.tasks.push(tokio::spawn(heartbeat_loop(fake.clone_handle())));
        fake.tasks.push(tokio::spawn(pod_loop(fake.clone_handle())));
        Ok(fake)
    }

    fn clone_handle(&self) -> Handle {
        Handle {
            name: self.name.clone(),
            client: self.client.clone(),
            heartbeat: self.heartbeat.clone(),
            state: self.state.clone(),
            options: self.options.clone(),
        }
    }

    /// The Node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops renewing the Lease and reporting status, as if the node died (pods keep their last status).
    pub fn pause_heartbeat(&self) {
        self.heartbeat.store(false, Ordering::SeqCst);
    }

    /// Resumes the heartbeat; within a heartbeat interval the node reports Ready again and every pod bound to
    /// it gets the status this node wants to report (readiness restored).
    pub fn resume_heartbeat(&self) {
        self.heartbeat.store(true, Ordering::SeqCst);
    }

    /// Sets the readiness this node reports for pod `namespace/name` and reports it now.
    pub async fn set_pod_ready(&self, namespace: &str, name: &str, ready: bool) -> Result<()> {
        lock(&self.state).ready.insert(format!("{namespace}/{name}"), ready);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = pods.get(name).await.with_context(|| format!("reading pod {namespace}/{name}"))?;
        self.clone_handle().sync_pod(&pod).await
    }

    async fn post_node_status(&self) -> Result<()> {
        self.clone_handle().post_node_status().await
    }

    async fn renew_lease(&self) -> Result<()> {
        self.clone_handle().renew_lease().await
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Handle {
    name: String,
    client: Client,
    heartbeat: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    options: FakeNodeOptions,
}

fn now_time() -> Time {
    Time(jiff::Timestamp::now())
}

async fn heartbeat_loop(h: Handle) {
    let mut ticks: u64 = 0;
    let mut was_alive = true;
    loop {
        tokio::time::sleep(h.options.lease_renew_interval).await;
        let alive = h.heartbeat.load(Ordering::SeqCst);
        let resumed = alive && !was_alive;
        was_alive = alive;
        if !alive {
            continue;
        }
        if resumed {
            // Pod changes were ignored while "dead": report every bound pod again, as a restarted kubelet does.
            if let Err(e) = h.resync_pods().await {
                tracing::debug!(node = %h.name, error = %format!("{e:#}"), "fake node: pod resync failed");
            }
        }
        if let Err(e) = h.renew_lease().await {
            tracing::debug!(node = %h.name, error = %format!("{e:#}"), "fake node: lease renewal failed");
        }
        ticks += 1;
        // Like a kubelet, put the Ready condition back if something else changed it.
        if ticks.is_multiple_of(2) {
            if let Err(e) = h.ensure_ready().await {
                tracing::debug!(node = %h.name, error = %format!("{e:#}"), "fake node: status update failed");
            }
        }
    }
}

async fn pod_loop(h: Handle) {
    let pods: Api<Pod> = Api::all(h.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", h.name));
    let mut stream = watcher::watcher(pods, cfg).boxed();
    while let Some(ev) = stream.next().await {
        let pod = match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
            Ok(watcher::Event::Delete(p)) => {
                if let Some(uid) = p.metadata.uid.as_ref() {
                    lock(&h.state).ips.remove(uid);
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(node = %h.name, error = %e, "fake node: pod watch failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if !h.heartbeat.load(Ordering::SeqCst) {
            continue;
        }
        if let Err(e) = h.sync_pod(&pod).await {
            tracing::debug!(node = %h.name, error = %format!("{e:#}"), "fake node: pod sync failed");
        }
    }
}

impl Handle {
    async fn renew_lease(&self) -> Result<()> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let spec = LeaseSpec {
            holder_identity: Some(self.name.clone()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..Default::default()
        };
        match leases.get_opt(&self.name).await? {
            Some(mut lease) => {
                lease.spec = Some(spec);
                leases.replace(&self.name, &PostParams::default(), &lease).await.context("renewing the lease")?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some("kube-node-lease".into()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                leases.create(&PostParams::default(), &lease).await.context("creating the lease")?;
            }
        }
        Ok(())
    }

    fn node_status(&self) -> NodeStatus {
        let now = now_time();
        let quantity = |s: &str| Quantity(s.to_string());
        let resources: BTreeMap<String, Quantity> =
            [("cpu".to_string(), quantity("2")), ("memory".into(), quantity("4Gi")), ("pods".into(), quantity("110"))]
                .into_iter()
                .collect();
        NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("kubelet is posting ready status".into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(now),
            }]),
            addresses: Some(vec![
                NodeAddress { type_: "InternalIP".into(), address: self.options.internal_ip.to_string() },
                NodeAddress { type_: "Hostname".into(), address: self.name.clone() },
            ]),
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            node_info: Some(NodeSystemInfo {
                architecture: "amd64".into(),
                operating_system: "linux".into(),
                kubelet_version: "v1.34.0-knet-fake".into(),
                kube_proxy_version: String::new(),
                container_runtime_version: "knet://fake".into(),
                os_image: "fake".into(),
                kernel_version: "fake".into(),
                machine_id: String::new(),
                system_uuid: String::new(),
                boot_id: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn post_node_status(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({ "status": self.node_status() });
        nodes
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("posting status of node {}", self.name))?;
        Ok(())
    }

    async fn ensure_ready(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = nodes.get(&self.name).await?;
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if !ready {
            self.post_node_status().await?;
        }
        Ok(())
    }

    /// Reports the status of every pod bound to this node.
    async fn resync_pods(&self) -> Result<()> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={}", self.name));
        for pod in pods.list(&lp).await.context("listing the node's pods")? {
            self.sync_pod(&pod).await?;
        }
        Ok(())
    }

    /// The Node's pod CIDR, waiting up to 5 s for node IPAM, else the fallback; remembered once known.
    async fn pod_cidr(&self) -> (Ipv4Addr, u8) {
        if let Some(cidr) = lock(&self.state).cidr {
            return cidr;
        }
        let cidr = self.lookup_pod_cidr().await;
        *lock(&self.state).cidr.get_or_insert(cidr)
    }

    async fn lookup_pod_cidr(&self) -> (Ipv4Addr, u8) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        for _ in 0..50 {
            if let Ok(node) = nodes.get(&self.name).await {
                if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr) {
                    if let Some((ip, len)) = cidr.split_once('/') {
                        if let (Ok(ip), Ok(len)) = (ip.parse::<Ipv4Addr>(), len.parse::<u8>()) {
                            return (ip, len);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.options.fallback_pod_cidr
    }

    async fn ip_for(&self, uid: &str) -> Ipv4Addr {
        if let Some(ip) = lock(&self.state).ips.get(uid) {
            return *ip;
        }
        let (base, _len) = self.pod_cidr().await;
        let mut st = lock(&self.state);
        if let Some(ip) = st.ips.get(uid) {
            return *ip;
        }
        let ip = Ipv4Addr::from(u32::from(base) + st.next_host);
        st.next_host += 1;
        st.ips.insert(uid.to_string(), ip);
        ip
    }

    /// Makes the API's view of `pod` match what this node reports.
    async fn sync_pod(&self, pod: &Pod) -> Result<()> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            // The containers "stopped": finish the graceful deletion.
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
                ..Default::default()
            };
            return match pods.delete(&name, &dp).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(e).with_context(|| format!("deleting pod {ns}/{name}")),
            };
        }
        let want_ready =
            lock(&self.state).ready.get(&format!("{ns}/{name}")).copied().unwrap_or(self.options.pods_ready);
        let status = pod.status.clone().unwrap_or_default();
        let is_ready = status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if status.phase.as_deref() == Some("Running") && status.pod_ip.is_some() && is_ready == want_ready {
            return Ok(());
        }
        let ip = self.ip_for(&uid).await;
        let now = now_time();
        let cond = |t: &str, ok: bool| PodCondition {
            type_: t.into(),
            status: if ok { "True" } else { "False" }.into(),
            last_transition_time: Some(now.clone()),
            reason: if ok { None } else { Some("ContainersNotReady".into()) },
            ..Default::default()
        };
        let containers = pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        let container_statuses: Vec<ContainerStatus> = containers
            .iter()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: want_ready,
                started: Some(true),
                restart_count: 0,
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning { started_at: Some(now.clone()) }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let new_status = PodStatus {
            phase: Some("Running".into()),
            host_ip: Some(self.options.internal_ip.to_string()),
            host_ips: Some(vec![HostIP { ip: self.options.internal_ip.to_string() }]),
            pod_ip: Some(ip.to_string()),
            pod_ips: Some(vec![PodIP { ip: ip.to_string() }]),
            start_time: status.start_time.clone().or(Some(now.clone())),
            conditions: Some(vec![
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", want_ready),
                cond("ContainersReady", want_ready),
                cond("PodScheduled", true),
            ]),
            container_statuses: Some(container_statuses),
            qos_class: status.qos_class.clone(),
            ..Default::default()
        };
        let patch = serde_json::json!({ "status": new_status });
        match pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("reporting status of pod {ns}/{name}")),
        }
    }
}
