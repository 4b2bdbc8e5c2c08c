//! Event recording for `kubectl describe`: a non-blocking front for kube-runtime's `Recorder` (which creates
//! `events.k8s.io/v1` Events and counts repeats as a series). Reconcilers never wait for an event to be
//! written; events are sent from a background task and dropped, counted, if the API is unreachable.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::mpsc;

use super::metrics::Metrics;

/// How many events may wait to be written before new ones are dropped.
const BACKLOG: usize = 1024;

/// Records events for one reporting component (e.g. "deployment-controller", "default-scheduler").
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<(Event, ObjectReference)>,
}

impl EventRecorder {
    /// A recorder reporting as `component` from `instance`; spawns its writer task.
    pub fn new(client: Client, component: &str, instance: &str, metrics: Metrics) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Event, ObjectReference)>(BACKLOG);
        let reporter = Reporter { controller: component.to_string(), instance: Some(instance.to_string()) };
        let recorder = Recorder::new(client, reporter);
        tokio::spawn(async move {
            while let Some((ev, reference)) = rx.recv().await {
                match recorder.publish(&ev, &reference).await {
                    Ok(()) => metrics.observe_event(true),
                    Err(e) => {
                        metrics.observe_event(false);
                        tracing::debug!(reason = %ev.reason, error = %e, "failed to publish event");
                    }
                }
            }
        });
        EventRecorder { tx }
    }

    /// Records a Normal event about `obj`.
    pub fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, action: &str, note: String) {
        self.record(obj.object_ref(&()), EventType::Normal, reason, action, note);
    }

    /// Records a Warning event about `obj`.
    pub fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, action: &str, note: String) {
        self.record(obj.object_ref(&()), EventType::Warning, reason, action, note);
    }

    /// Records an event about the object `reference`.
    pub fn record(&self, reference: ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let ev =
            Event { type_, reason: reason.to_string(), note: Some(note), action: action.to_string(), secondary: None };
        if self.tx.try_send((ev, reference)).is_err() {
            tracing::debug!(reason, "event backlog full; event dropped");
        }
    }
}
