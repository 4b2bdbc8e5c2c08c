//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation (upstream `TriggerTimeTracker`):
//! the earliest time of the pod or Service changes seen since the previous sync of a Service, so that
//! consumers can measure how long endpoints took to follow. A pod's trigger time is its Ready condition's
//! last transition, a Service's its creation. Approximate by design, like upstream's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::runtime::conditions::pod_condition;
use crate::runtime::ObjectKey;

#[derive(Default)]
struct ServiceState {
    service_trigger: Option<Timestamp>,
    pod_triggers: HashMap<String, Timestamp>,
}

/// Tracks the trigger times seen at each Service's last sync. Cheap to clone.
#[derive(Clone, Default)]
pub struct TriggerTimeTracker {
    states: Arc<Mutex<HashMap<ObjectKey, ServiceState>>>,
}

fn pod_trigger(pod: &Pod) -> Option<Timestamp> {
    pod_condition(pod, "Ready").and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0)
}

impl TriggerTimeTracker {
    /// A tracker that knows no Service.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the state of `service` and its `pods` and returns the trigger time to publish: the
    /// Service's creation the first time it is seen, later the earliest trigger time that changed since
    /// the previous call, `None` when nothing changed. Must not be called concurrently for one Service
    /// (the work queue guarantees that).
    pub fn compute(&self, key: &ObjectKey, service: &Service, pods: &[Arc<Pod>]) -> Option<Timestamp> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let known = states.contains_key(key);
        let state = states.entry(key.clone()).or_default();
        let mut min_changed: Option<Timestamp> = None;
        let mut pod_triggers = HashMap::with_capacity(pods.len());
        for pod in pods {
            let Some(t) = pod_trigger(pod) else { continue };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pod_triggers.get(&name).is_none_or(|last| t > *last) {
                min_changed = Some(min_changed.map_or(t, |m| m.min(t)));
            }
            pod_triggers.insert(name, t);
        }
        let service_trigger = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = service_trigger {
            if state.service_trigger.is_none_or(|last| t > last) {
                min_changed = Some(min_changed.map_or(t, |m| m.min(t)));
            }
        }
        state.pod_triggers = pod_triggers;
        state.service_trigger = service_trigger;
        if known {
            min_changed
        } else {
            service_trigger
        }
    }

    /// Forgets a deleted Service.
    pub fn delete_service(&self, key: &ObjectKey) {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The annotation value for a trigger time: RFC 3339 in UTC with nanoseconds, as Go's `RFC3339Nano`.
pub fn format_trigger_time(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "s", "namespace": "d", "creationTimestamp": "2024-01-01T00:00:00Z"}}),
        )
        .unwrap()
    }

    fn pod(name: &str, t: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn first_sync_uses_the_service_creation_then_the_earliest_change() {
        let tr = TriggerTimeTracker::new();
        let key = ObjectKey::new("d", "s");
        let pods = vec![pod("a", "2024-01-01T00:01:00Z"), pod("b", "2024-01-01T00:02:00Z")];
        assert_eq!(tr.compute(&key, &svc(), &pods).map(format_trigger_time).as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(tr.compute(&key, &svc(), &pods), None, "nothing changed");
        let pods = vec![pod("a", "2024-01-01T00:05:00Z"), pod("b", "2024-01-01T00:03:00Z")];
        assert_eq!(tr.compute(&key, &svc(), &pods).map(format_trigger_time).as_deref(), Some("2024-01-01T00:03:00Z"));
        tr.delete_service(&key);
        assert_eq!(tr.compute(&key, &svc(), &pods).map(format_trigger_time).as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
