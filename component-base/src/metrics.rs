//! A Prometheus registry for a component's metrics, rendered into the OpenMetrics text exposition the
//! `/metrics` endpoint serves ([`crate::health`]). Components keep typed handles on their metrics (counters,
//! gauges, histograms, families) and register each once here.

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::{Metric, Registry};

/// A component's registry of metrics.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    /// An empty registry; metric names are used as given.
    pub fn new() -> Self {
        MetricsRegistry::default()
    }

    /// An empty registry whose metric names all start with `prefix_`.
    pub fn with_prefix(prefix: &str) -> Self {
        MetricsRegistry { registry: Registry::with_prefix(prefix) }
    }

    /// Registers `metric` as `name` with its `help` text and returns it. Metric handles share their value, so
    /// the returned handle updates what is rendered.
    pub fn register<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.registry.register(name, help, metric.clone());
        metric
    }

    /// The OpenMetrics text exposition of every registered metric (empty if a metric fails to encode, never a
    /// partial page).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn renders_registered_metrics_with_the_prefix() {
        let mut registry = MetricsRegistry::with_prefix("knet_test");
        let started = registry.register("things_started", "Things started", Counter::<u64>::default());
        let running = registry.register("things_running", "Things running", Gauge::<i64>::default());
        started.inc_by(3);
        running.set(2);
        let text = registry.render();
        assert!(text.contains("# HELP knet_test_things_started Things started.\n"), "{text}");
        assert!(text.contains("knet_test_things_started_total 3\n"), "{text}");
        assert!(text.contains("knet_test_things_running 2\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(MetricsRegistry::new().render(), "# EOF\n");
    }
}
