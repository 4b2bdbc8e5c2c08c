//! Prometheus metrics of the API server: requests by verb, resource and code, their
//! latency, open watches and the store revision.

use std::sync::atomic::AtomicI64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

/// The API server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    watchers: Family<ResourceLabels, Gauge>,
    revision: Gauge<i64, AtomicI64>,
}

/// Decrements the open-watch gauge when a watch ends.
pub struct WatchGuard {
    gauge: Gauge,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let watchers = Family::<ResourceLabels, Gauge>::default();
        let revision = Gauge::<i64, AtomicI64>::default();
        registry.register("apiserver_request", "API requests by verb, resource and HTTP code", requests.clone());
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency (for watches: until the stream is set up)",
            latency.clone(),
        );
        registry.register("apiserver_registered_watchers", "Open watches by resource", watchers.clone());
        registry.register("apiserver_storage_revision", "The store's current revision", revision.clone());
        Metrics { registry: Mutex::new(registry), requests, latency, watchers, revision }
    }

    pub fn observe_request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { verb: verb.into(), resource: resource.into(), code: code.to_string() })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { verb: verb.into(), resource: resource.into() })
            .observe(took.as_secs_f64());
    }

    pub fn watch_started(&self, resource: &str) -> WatchGuard {
        let gauge = self.watchers.get_or_create(&ResourceLabels { resource: resource.into() }).clone();
        gauge.inc();
        WatchGuard { gauge }
    }

    pub fn set_revision(&self, rev: i64) {
        self.revision.set(rev);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &reg).is_err() {
            out.clear();
        }
        out
    }
}
