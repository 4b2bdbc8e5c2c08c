//! Event recording for `kubectl describe`. Events are written as `events.k8s.io/v1` Events (the API server
//! stores them as core/v1 Events) by a background task, so reconcilers never wait for them; if the API is
//! unreachable they are dropped and counted.
//!
//! Repeats are grouped like kube-controller-manager's recorders group them: the same type, reason, action,
//! object **and message** within [`SERIES_WINDOW`] become one Event with a growing `series` instead of a new
//! object. (kube-runtime's `Recorder` leaves the message out of the key, so "Created pod: a" and "Created pod:
//! b" would show as one event with the first message; that misleads `kubectl describe`.)

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

use super::metrics::Metrics;

/// How many events may wait to be written before new ones are dropped.
const BACKLOG: usize = 1024;
/// Repeats within this window are counted in the first Event's series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Upper bound on remembered series; the oldest are forgotten first.
const MAX_SERIES: usize = 4096;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something the user should look at.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Record {
    reference: ObjectReference,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

/// apiVersion, kind, namespace, name and uid of the object an event is about.
type Regarding = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

/// What makes two events "the same" for grouping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    regarding: Regarding,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

impl SeriesKey {
    fn of(r: &Record) -> Self {
        let o = &r.reference;
        SeriesKey {
            regarding: (o.api_version.clone(), o.kind.clone(), o.namespace.clone(), o.name.clone(), o.uid.clone()),
            type_: r.type_,
            reason: r.reason.clone(),
            action: r.action.clone(),
            note: r.note.clone(),
        }
    }
}

/// A series this process has written: the Event's name and namespace, its count and when it was last seen.
#[derive(Clone, Debug)]
struct Series {
    name: String,
    namespace: String,
    count: i32,
    last: jiff::Timestamp,
}

/// Records events for one reporting component (e.g. "deployment-controller", "default-scheduler").
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Record>,
}

impl EventRecorder {
    /// A recorder reporting as `component` from `instance`; spawns its writer task.
    pub fn new(client: Client, component: &str, instance: &str, metrics: Metrics) -> Self {
        let (tx, rx) = mpsc::channel::<Record>(BACKLOG);
        let writer = Writer {
            client,
            component: component.to_string(),
            instance: instance.to_string(),
            series: HashMap::new(),
            metrics,
        };
        tokio::spawn(writer.run(rx));
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
        let r = Record { reference, type_, reason: reason.to_string(), action: action.to_string(), note };
        if self.tx.try_send(r).is_err() {
            tracing::debug!(reason, "event backlog full; event dropped");
        }
    }
}

struct Writer {
    client: Client,
    component: String,
    instance: String,
    series: HashMap<SeriesKey, Series>,
    metrics: Metrics,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Record>) {
        while let Some(r) = rx.recv().await {
            let ok = match self.publish(&r).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(reason = %r.reason, error = %e, "failed to publish event");
                    false
                }
            };
            self.metrics.observe_event(ok);
        }
    }

    fn forget_old(&mut self, now: jiff::Timestamp) {
        let window = jiff::SignedDuration::try_from(SERIES_WINDOW).unwrap_or(jiff::SignedDuration::ZERO);
        self.series.retain(|_, s| now.duration_since(s.last) < window);
        if self.series.len() > MAX_SERIES {
            let mut by_age: Vec<(SeriesKey, jiff::Timestamp)> =
                self.series.iter().map(|(k, s)| (k.clone(), s.last)).collect();
            by_age.sort_by_key(|(_, t)| *t);
            let excess = self.series.len() - MAX_SERIES;
            for (k, _) in by_age.into_iter().take(excess) {
                self.series.remove(&k);
            }
        }
    }

    async fn publish(&mut self, r: &Record) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now();
        self.forget_old(now);
        let key = SeriesKey::of(r);
        if let Some(s) = self.series.get(&key).cloned() {
            let count = s.count.saturating_add(1);
            let api: Api<Event> = Api::namespaced(self.client.clone(), &s.namespace);
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(now) },
            });
            match api.patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.series.insert(key, Series { count, last: now, ..s });
                    return Ok(());
                }
                // The Event expired (event TTL) or was deleted: start a new one.
                Err(kube::Error::Api(st)) if st.code == 404 => {
                    self.series.remove(&key);
                }
                Err(e) => return Err(e),
            }
        }
        let namespace = r.reference.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = format!("{}.{:x}", r.reference.name.as_deref().unwrap_or(&self.component), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(namespace.clone()), ..Default::default() },
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(r.action.clone()),
            reason: Some(r.reason.clone()),
            note: Some(r.note.clone()),
            regarding: Some(r.reference.clone()),
            type_: Some(r.type_.as_str().to_string()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await?;
        self.series.insert(key, Series { name, namespace, count: 1, last: now });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, note: &str) -> Record {
        Record {
            reference: ObjectReference {
                kind: Some("ReplicaSet".into()),
                namespace: Some("d".into()),
                name: Some(name.into()),
                ..Default::default()
            },
            type_: EventType::Normal,
            reason: "SuccessfulCreate".into(),
            action: "Create".into(),
            note: note.into(),
        }
    }

    #[test]
    fn the_message_is_part_of_the_series_key() {
        assert_eq!(SeriesKey::of(&rec("rs", "Created pod: a")), SeriesKey::of(&rec("rs", "Created pod: a")));
        assert_ne!(SeriesKey::of(&rec("rs", "Created pod: a")), SeriesKey::of(&rec("rs", "Created pod: b")));
        assert_ne!(SeriesKey::of(&rec("rs", "x")), SeriesKey::of(&rec("other", "x")));
    }
}
