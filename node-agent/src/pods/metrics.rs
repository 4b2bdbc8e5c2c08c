//! The pod runtime's Prometheus metrics (kubelet-like names under `knet_node_`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The metrics.
pub struct Metrics {
    registry: Registry,
    /// Seconds from a pod's first sync to all its containers running.
    pub pod_start_duration: Histogram,
    pub containers_started: Counter,
    pub sandboxes_created: Counter,
    pub sync_errors: Counter,
    pub running_pods: Gauge,
    /// Seconds a CNI ADD took.
    pub cni_add_duration: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("knet_node");
        let pod_start_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let cni_add_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let containers_started = Counter::default();
        let sandboxes_created = Counter::default();
        let sync_errors = Counter::default();
        let running_pods = Gauge::default();
        registry.register(
            "pod_start_duration_seconds",
            "Pod sync to all containers running",
            pod_start_duration.clone(),
        );
        registry.register("cni_add_duration_seconds", "Duration of CNI ADD", cni_add_duration.clone());
        registry.register("containers_started", "Containers started", containers_started.clone());
        registry.register("sandboxes_created", "Pod sandboxes created", sandboxes_created.clone());
        registry.register("pod_sync_errors", "Failed pod syncs", sync_errors.clone());
        registry.register("running_pods", "Pods with a sandbox on this node", running_pods.clone());
        Metrics {
            registry,
            pod_start_duration,
            containers_started,
            sandboxes_created,
            sync_errors,
            running_pods,
            cni_add_duration,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
