//! What every controller gets: the API client, the shared informers, the configuration, metrics and a way
//! to record events.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, Pod, ReplicationController, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use knet_component_base::events::{EventApi, PublishObserver};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::runtime::{EventRecorder, Informer, Metrics};

/// The namespace where nodes renew their heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// One informer per resource the controllers read, shared by all of them.
#[derive(Clone)]
pub struct Informers {
    pub pods: Informer<Pod>,
    pub services: Informer<Service>,
    pub endpoints: Informer<Endpoints>,
    pub endpoint_slices: Informer<EndpointSlice>,
    pub nodes: Informer<Node>,
    pub namespaces: Informer<Namespace>,
    pub deployments: Informer<Deployment>,
    pub replica_sets: Informer<ReplicaSet>,
    pub replication_controllers: Informer<ReplicationController>,
    /// Node heartbeat Leases (`kube-node-lease` only).
    pub node_leases: Informer<Lease>,
    pub service_accounts: Informer<ServiceAccount>,
    /// The `kube-root-ca.crt` ConfigMaps (only those, in every namespace).
    pub root_ca_config_maps: Informer<ConfigMap>,
}

/// The ConfigMap holding the cluster CA in every namespace.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

impl Informers {
    /// Informers that have not started yet.
    pub fn new() -> Self {
        Informers {
            pods: Informer::new("pods"),
            services: Informer::new("services"),
            endpoints: Informer::new("endpoints"),
            endpoint_slices: Informer::new("endpointslices"),
            nodes: Informer::new("nodes"),
            namespaces: Informer::new("namespaces"),
            deployments: Informer::new("deployments"),
            replica_sets: Informer::new("replicasets"),
            replication_controllers: Informer::new("replicationcontrollers"),
            node_leases: Informer::new("leases"),
            service_accounts: Informer::new("serviceaccounts"),
            root_ca_config_maps: Informer::new("configmaps"),
        }
    }

    /// Starts every informer's list+watch on `tasks`.
    pub fn start(&self, client: &Client, page_size: u32, tasks: &mut JoinSet<()>) {
        let cfg = || watcher::Config::default().page_size(page_size);
        tasks.spawn(self.pods.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.services.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.endpoints.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.endpoint_slices.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.nodes.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.namespaces.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.deployments.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.replica_sets.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.replication_controllers.clone().run(Api::all(client.clone()), cfg()));
        tasks.spawn(self.node_leases.clone().run(Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE), cfg()));
        tasks.spawn(self.service_accounts.clone().run(Api::all(client.clone()), cfg()));
        let root_ca = cfg().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}"));
        tasks.spawn(self.root_ca_config_maps.clone().run(Api::all(client.clone()), root_ca));
    }

    /// Waits until every informer has its first complete list.
    pub async fn wait_synced(&self) {
        self.pods.wait_synced().await;
        self.services.wait_synced().await;
        self.endpoints.wait_synced().await;
        self.endpoint_slices.wait_synced().await;
        self.nodes.wait_synced().await;
        self.namespaces.wait_synced().await;
        self.deployments.wait_synced().await;
        self.replica_sets.wait_synced().await;
        self.replication_controllers.wait_synced().await;
        self.node_leases.wait_synced().await;
        self.service_accounts.wait_synced().await;
        self.root_ca_config_maps.wait_synced().await;
    }
}

impl Default for Informers {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything a controller needs. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// The API client (writes through it are counted in [`Metrics`]).
    pub client: Client,
    /// The shared informers.
    pub informers: Informers,
    /// The process configuration.
    pub config: Arc<Config>,
    /// The process metrics.
    pub metrics: Metrics,
    /// This instance's identity (also the `reportingInstance` of its events).
    pub identity: String,
}

impl Context {
    /// An event recorder reporting as `component` (upstream's name, e.g. "deployment-controller").
    pub fn recorder(&self, component: &str) -> EventRecorder {
        let metrics = self.metrics.clone();
        let observe: PublishObserver = Arc::new(move |ok| metrics.observe_event(ok));
        EventRecorder::start(self.client.clone(), EventApi::EventsV1, component, &self.identity, Some(observe))
    }
}
