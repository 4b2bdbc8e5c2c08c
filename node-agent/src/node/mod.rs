//! Node registration and heartbeats: creates or updates the Node (addresses, capacity, allocatable, conditions,
//! `daemonEndpoints.kubeletEndpoint`), renews the `kube-node-lease` Lease, keeps the Ready condition current, and
//! waits for the node IPAM controller to set `spec.podCIDR`.

pub mod config;
pub mod machine;
pub mod status;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference, Time};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use self::machine::MachineInfo;

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Why registration or a heartbeat failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("registering node {node}: {source}")]
    Register { node: String, source: kube::Error },
    #[error("updating the status of node {node}: {source}")]
    Status { node: String, source: kube::Error },
    #[error("renewing the lease of node {node}: {source}")]
    Lease { node: String, source: kube::Error },
    #[error("reading node {node}: {source}")]
    Get { node: String, source: kube::Error },
    #[error("node {node} has an invalid podCIDR {cidr:?}")]
    PodCidr { node: String, cidr: String },
    #[error("no --node-ip given and no usable address found on this host")]
    NoNodeIp,
}

/// This node as the agent registers it.
pub struct NodeAgent {
    client: Client,
    name: String,
    flags: config::NodeFlags,
    node_ips: Vec<IpAddr>,
    kubelet_port: u16,
    machine: MachineInfo,
    /// The Ready condition's input: `Err(message)` while not ready.
    ready: watch::Receiver<Result<(), String>>,
    last_status: Mutex<Option<NodeStatus>>,
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

impl NodeAgent {
    /// `ready` changes trigger a status update at once.
    pub fn new(
        client: Client,
        name: String,
        flags: config::NodeFlags,
        root_dir: PathBuf,
        kubelet_port: u16,
        ready: watch::Receiver<Result<(), String>>,
    ) -> Result<NodeAgent, NodeError> {
        let node_ips = if flags.node_ip.is_empty() {
            vec![machine::default_node_ip().ok_or(NodeError::NoNodeIp)?]
        } else {
            flags.node_ip.clone()
        };
        let machine = machine::read(&root_dir);
        Ok(NodeAgent { client, name, flags, node_ips, kubelet_port, machine, ready, last_status: Mutex::new(None) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's IPs (InternalIP), the pods' `hostIPs`.
    pub fn node_ips(&self) -> &[IpAddr] {
        &self.node_ips
    }

    /// The machine's facts.
    pub fn machine(&self) -> &MachineInfo {
        &self.machine
    }

    fn api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn render_status(&self, previous: Option<&NodeStatus>) -> NodeStatus {
        let ready = self.ready.borrow().clone();
        let inputs = status::NodeInputs {
            name: &self.name,
            machine: &self.machine,
            node_ips: &self.node_ips,
            max_pods: self.flags.max_pods,
            kubelet_port: self.kubelet_port,
            ready,
            now: now(),
        };
        status::render(&inputs, previous)
    }

    /// Creates the Node, or reconciles an existing one's labels and status (kubelet's registration).
    pub async fn register(&self) -> Result<Node, NodeError> {
        let err = |source| NodeError::Register { node: self.name.clone(), source };
        let labels = status::labels(&self.name, &self.flags.node_labels);
        let fresh = status::node(&self.name, labels.clone(), self.render_status(None));
        let node = match self.api().create(&PostParams::default(), &fresh).await {
            Ok(n) => n,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let patch = serde_json::json!({ "metadata": { "labels": labels } });
                self.api().patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        tracing::info!(node = %self.name, ips = ?self.node_ips, "registered the node");
        self.post_status().await?;
        Ok(node)
    }

    /// Posts the current status (a strategic merge patch, so conditions of others stay).
    pub async fn post_status(&self) -> Result<(), NodeError> {
        let current = self
            .api()
            .get_opt(&self.name)
            .await
            .map_err(|source| NodeError::Get { node: self.name.clone(), source })?;
        let Some(current) = current else {
            // Deleted under us: register again.
            Box::pin(self.register()).await?;
            return Ok(());
        };
        let status = self.render_status(current.status.as_ref());
        let patch = serde_json::json!({ "status": status });
        self.api()
            .patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|source| NodeError::Status { node: self.name.clone(), source })?;
        *self.last_status.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        Ok(())
    }

    /// Renews (or creates) the node's Lease.
    pub async fn renew_lease(&self, owner: Option<&Node>) -> Result<(), NodeError> {
        let err = |source| NodeError::Lease { node: self.name.clone(), source };
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let spec = LeaseSpec {
            holder_identity: Some(self.name.clone()),
            lease_duration_seconds: Some(self.flags.node_lease_duration_seconds),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..Default::default()
        };
        match api.get_opt(&self.name).await.map_err(err)? {
            Some(mut lease) => {
                lease.spec = Some(spec);
                api.replace(&self.name, &PostParams::default(), &lease).await.map_err(err)?;
            }
            None => {
                let owner_references = owner.and_then(|n| n.metadata.uid.clone()).map(|uid| {
                    vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: self.name.clone(),
                        uid,
                        ..Default::default()
                    }]
                });
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(LEASE_NAMESPACE.into()),
                        owner_references,
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                api.create(&PostParams::default(), &lease).await.map_err(err)?;
            }
        }
        Ok(())
    }

    /// Waits until the Node has `spec.podCIDR(s)` and returns them.
    pub async fn wait_for_pod_cidrs(&self) -> Result<Vec<IpNet>, NodeError> {
        let mut logged = false;
        loop {
            let node = self
                .api()
                .get_opt(&self.name)
                .await
                .map_err(|source| NodeError::Get { node: self.name.clone(), source })?;
            if let Some(spec) = node.and_then(|n| n.spec) {
                let mut cidrs = spec.pod_cidrs.unwrap_or_default();
                if cidrs.is_empty() {
                    cidrs.extend(spec.pod_cidr);
                }
                if !cidrs.is_empty() {
                    return cidrs
                        .into_iter()
                        .map(|c| {
                            c.parse::<IpNet>().map_err(|_| NodeError::PodCidr { node: self.name.clone(), cidr: c })
                        })
                        .collect();
                }
            }
            if !logged {
                tracing::info!(node = %self.name, "waiting for the node IPAM controller to set spec.podCIDR");
                logged = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Renews the Lease every quarter of its duration and posts the status every
    /// `--node-status-update-frequency` or when readiness changes; runs until the process ends.
    pub async fn heartbeat(self: Arc<Self>) {
        let lease_every = Duration::from_secs_f64(f64::from(self.flags.node_lease_duration_seconds.max(4)) / 4.0);
        let lease_agent = self.clone();
        tokio::spawn(async move {
            let mut owner: Option<Node> = None;
            loop {
                if owner.is_none() {
                    owner = lease_agent.api().get_opt(&lease_agent.name).await.ok().flatten();
                }
                if let Err(e) = lease_agent.renew_lease(owner.as_ref()).await {
                    tracing::warn!(node = %lease_agent.name, error = %e, "lease renewal failed");
                }
                tokio::time::sleep(lease_every).await;
            }
        });
        let mut ready = self.ready.clone();
        loop {
            if let Err(e) = self.post_status().await {
                tracing::warn!(node = %self.name, error = %e, "node status update failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.flags.node_status_update_frequency) => {}
                changed = ready.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(self.flags.node_status_update_frequency).await;
                    }
                }
            }
        }
    }
}
