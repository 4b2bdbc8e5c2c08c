//! Prometheus metrics of the API server: requests by verb, resource and code, their
//! latency, open watches, the store revision, what the allocation repair did and how many
//! Events the event TTL expired.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use knet_component_base::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

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
    registry: MetricsRegistry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    watchers: Family<ResourceLabels, Gauge>,
    revision: Gauge<i64, AtomicI64>,
    repair: RepairMetrics,
    events_expired: Counter,
    event_ttl_failures: Counter,
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
        let mut registry = MetricsRegistry::new();
        let requests = registry.register(
            "apiserver_request",
            "API requests by verb, resource and HTTP code",
            Family::<RequestLabels, Counter>::default(),
        );
        let latency = registry.register(
            "apiserver_request_duration_seconds",
            "API request latency (for watches: until the stream is set up)",
            Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
        );
        let watchers =
            registry.register("apiserver_registered_watchers", "Open watches by resource", Family::default());
        let revision =
            registry.register("apiserver_storage_revision", "The store's current revision", Gauge::default());
        let repair = RepairMetrics {
            runs: registry.register("knet_apiserver_repair_runs", "Allocation repair runs", Counter::default()),
            failures: registry.register(
                "knet_apiserver_repair_failures",
                "Allocation repair runs that failed to read or write the store",
                Counter::default(),
            ),
            released: registry.register(
                "knet_apiserver_repair_leaks_released",
                "Allocation keys no Service held, released by the repair",
                Family::default(),
            ),
            restored: registry.register(
                "knet_apiserver_repair_allocations_restored",
                "Allocation keys of values Services hold, re-created by the repair",
                Family::default(),
            ),
            problems: registry.register(
                "knet_apiserver_repair_problems",
                "Values held by Services that the repair cannot fix (problem: duplicate, out_of_range)",
                Family::default(),
            ),
            suspected: registry.register(
                "knet_apiserver_repair_suspected_leaks",
                "Allocation keys seen unheld, waiting for more sightings before release",
                Family::default(),
            ),
        };
        let events_expired = registry.register(
            "knet_apiserver_events_expired",
            "Events deleted by the event TTL sweep (--event-ttl)",
            Counter::default(),
        );
        let event_ttl_failures = registry.register(
            "knet_apiserver_event_ttl_failures",
            "Event TTL sweeps that failed to read or write the store",
            Counter::default(),
        );
        Metrics { registry, requests, latency, watchers, revision, repair, events_expired, event_ttl_failures }
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

    pub fn events_expired(&self, n: usize) {
        self.events_expired.inc_by(n as u64);
    }

    pub fn event_ttl_failure(&self) {
        self.event_ttl_failures.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        self.registry.render()
    }
}
