//! Prometheus metrics of the controllers: reconciles by controller and result, their latency, queue depth,
//! leadership, and every API write the process makes (counted in the kube client itself, so none escapes).

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use knet_component_base::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    verb: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    result: String,
}

struct Inner {
    registry: MetricsRegistry,
    reconciles: Family<ReconcileLabels, Counter>,
    latency: Family<ControllerLabels, Histogram>,
    queue_depth: Family<ControllerLabels, Gauge>,
    writes: Family<WriteLabels, Counter>,
    events: Family<EventLabels, Counter>,
    leader: Gauge<i64, AtomicI64>,
    initial_sync: Family<ControllerLabels, Gauge<f64, AtomicU64>>,
}

/// The process's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every knet-controllers metric registered.
    pub fn new() -> Self {
        let mut registry = MetricsRegistry::new();
        let reconciles = registry.register(
            "knet_controllers_reconcile",
            "Reconciles by controller and result",
            Family::<ReconcileLabels, Counter>::default(),
        );
        let latency = registry.register(
            "knet_controllers_reconcile_duration_seconds",
            "Reconcile latency",
            Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
        );
        let queue_depth =
            registry.register("knet_controllers_queue_depth", "Keys waiting in each work queue", Family::default());
        let writes = registry.register(
            "knet_controllers_api_writes",
            "API writes (create, update, patch, delete) by resource, counted in the client",
            Family::default(),
        );
        let events = registry.register("knet_controllers_events", "Events published, by result", Family::default());
        let leader = registry.register(
            "knet_controllers_leader",
            "1 while this instance holds the leader lease",
            Gauge::default(),
        );
        let initial_sync = registry.register(
            "knet_controllers_initial_sync_seconds",
            "Seconds from a controller's start until every key of its initial full pass was reconciled once",
            Family::default(),
        );
        Metrics {
            inner: Arc::new(Inner { registry, reconciles, latency, queue_depth, writes, events, leader, initial_sync }),
        }
    }

    /// Records one reconcile.
    pub fn observe_reconcile(&self, controller: &str, result: &str, took: Duration) {
        self.inner
            .reconciles
            .get_or_create(&ReconcileLabels { controller: controller.into(), result: result.into() })
            .inc();
        self.inner
            .latency
            .get_or_create(&ControllerLabels { controller: controller.into() })
            .observe(took.as_secs_f64());
    }

    /// Sets a controller's queue depth.
    pub fn set_queue_depth(&self, controller: &str, depth: usize) {
        self.inner
            .queue_depth
            .get_or_create(&ControllerLabels { controller: controller.into() })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Records one API write.
    pub fn observe_write(&self, verb: &str, resource: &str) {
        self.inner.writes.get_or_create(&WriteLabels { verb: verb.into(), resource: resource.into() }).inc();
    }

    /// Records one event publication.
    pub fn observe_event(&self, ok: bool) {
        self.inner.events.get_or_create(&EventLabels { result: if ok { "ok" } else { "error" }.into() }).inc();
    }

    /// Records how long a controller's initial full pass took.
    pub fn set_initial_sync(&self, controller: &str, took: Duration) {
        self.inner
            .initial_sync
            .get_or_create(&ControllerLabels { controller: controller.into() })
            .set(took.as_secs_f64());
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        self.inner.registry.render()
    }
}

/// The verb and resource of an API write, from its method and path (`None` for reads).
/// `/api/v1/namespaces/default/pods/x/status` → `("update", "pods/status")`.
pub fn classify_write(method: &http::Method, path: &str) -> Option<(&'static str, String)> {
    let verb = match *method {
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => return None,
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Skip /api/v1 or /apis/group/version.
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        Some(&"apis") => parts.get(3..),
        _ => None,
    }
    .unwrap_or(&[]);
    let rest = match rest {
        // `namespaces/x/status` and `namespaces/x/finalize` are subresources of a Namespace.
        ["namespaces", _ns, sub, ..] if *sub != "status" && *sub != "finalize" => &rest[2..],
        other => other,
    };
    let resource = match rest {
        [] => "unknown".to_string(),
        [r] | [r, _] => r.to_string(),
        [r, _, sub, ..] => format!("{r}/{sub}"),
    };
    Some((verb, resource))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn writes_are_classified_by_verb_and_resource() {
        let c = |m: Method, p: &str| classify_write(&m, p).map(|(v, r)| format!("{v} {r}"));
        assert_eq!(c(Method::PUT, "/api/v1/namespaces/d/pods/x/status").as_deref(), Some("update pods/status"));
        assert_eq!(
            c(Method::POST, "/apis/discovery.k8s.io/v1/namespaces/d/endpointslices").as_deref(),
            Some("create endpointslices")
        );
        assert_eq!(c(Method::PATCH, "/api/v1/nodes/n1").as_deref(), Some("patch nodes"));
        assert_eq!(c(Method::DELETE, "/api/v1/namespaces/x").as_deref(), Some("delete namespaces"));
        assert_eq!(c(Method::PUT, "/api/v1/namespaces/x/finalize").as_deref(), Some("update namespaces/finalize"));
        assert_eq!(c(Method::GET, "/api/v1/pods"), None);
    }
}
