//! The pod runtime's Prometheus metrics (kubelet-like names under `knet_node_`).

use knet_component_base::metrics::MetricsRegistry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// The metrics.
pub struct Metrics {
    registry: MetricsRegistry,
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
        let mut registry = MetricsRegistry::with_prefix("knet_node");
        let pod_start_duration = registry.register(
            "pod_start_duration_seconds",
            "Pod sync to all containers running",
            Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        );
        let cni_add_duration = registry.register(
            "cni_add_duration_seconds",
            "Duration of CNI ADD",
            Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        );
        Metrics {
            containers_started: registry.register("containers_started", "Containers started", Counter::default()),
            sandboxes_created: registry.register("sandboxes_created", "Pod sandboxes created", Counter::default()),
            sync_errors: registry.register("pod_sync_errors", "Failed pod syncs", Counter::default()),
            running_pods: registry.register("running_pods", "Pods with a sandbox on this node", Gauge::default()),
            pod_start_duration,
            cni_add_duration,
            registry,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_kubelet_like_names() {
        let m = Metrics::new();
        m.containers_started.inc();
        m.running_pods.set(2);
        m.cni_add_duration.observe(0.004);
        let text = m.render();
        assert!(text.contains("knet_node_containers_started_total 1\n"), "{text}");
        assert!(text.contains("knet_node_running_pods 2\n"), "{text}");
        assert!(text.contains("knet_node_cni_add_duration_seconds_count 1\n"), "{text}");
        assert!(text.contains("# TYPE knet_node_pod_start_duration_seconds histogram\n"), "{text}");
    }
}
