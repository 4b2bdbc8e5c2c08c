//! Prometheus metrics of the API server: requests by verb, resource and code, their
//! latency, open watches, the store revision, and what the allocation repair did.

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemLabels {
    resource: String,
    problem: String,
}

/// The allocation repair's counters (`clusterips` or `nodeports` as `resource`).
#[derive(Default)]
struct RepairMetrics {
    runs: Counter,
    failures: Counter,
    released: Family<ResourceLabels, Counter>,
    restored: Family<ResourceLabels, Counter>,
    problems: Family<ProblemLabels, Counter>,
    suspected: Family<ResourceLabels, Gauge>,
}

/// The API server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    watchers: Family<ResourceLabels, Gauge>,
    revision: Gauge<i64, AtomicI64>,
    repair: RepairMetrics,
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
        let repair = RepairMetrics::default();
        registry.register("knet_apiserver_repair_runs", "Allocation repair runs", repair.runs.clone());
        registry.register(
            "knet_apiserver_repair_failures",
            "Allocation repair runs that failed to read or write the store",
            repair.failures.clone(),
        );
        registry.register(
            "knet_apiserver_repair_leaks_released",
            "Allocation keys no Service held, released by the repair",
            repair.released.clone(),
        );
        registry.register(
            "knet_apiserver_repair_allocations_restored",
            "Allocation keys of values Services hold, re-created by the repair",
            repair.restored.clone(),
        );
        registry.register(
            "knet_apiserver_repair_problems",
            "Values held by Services that the repair cannot fix (problem: duplicate, out_of_range)",
            repair.problems.clone(),
        );
        registry.register(
            "knet_apiserver_repair_suspected_leaks",
            "Allocation keys seen unheld, waiting for more sightings before release",
            repair.suspected.clone(),
        );
        Metrics { registry: Mutex::new(registry), requests, latency, watchers, revision, repair }
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

    /// One repair run ended (`ok` false: it failed part-way).
    pub fn repair_run(&self, ok: bool) {
        self.repair.runs.inc();
        if !ok {
            self.repair.failures.inc();
        }
    }

    pub fn repair_released(&self, resource: &str) {
        self.repair.released.get_or_create(&ResourceLabels { resource: resource.into() }).inc();
    }

    pub fn repair_restored(&self, resource: &str) {
        self.repair.restored.get_or_create(&ResourceLabels { resource: resource.into() }).inc();
    }

    pub fn repair_problem(&self, resource: &str, problem: &str) {
        self.repair.problems.get_or_create(&ProblemLabels { resource: resource.into(), problem: problem.into() }).inc();
    }

    pub fn set_repair_suspected(&self, resource: &str, n: usize) {
        self.repair.suspected.get_or_create(&ResourceLabels { resource: resource.into() }).set(n as i64);
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
