//! Event recording for `kubectl describe`, like client-go's `tools/record` and `tools/events`: an
//! [`EventRecorder`] hands events to a background task, so callers never wait for the API; if the API is
//! unreachable or the backlog is full they are dropped (and reported to the recorder's observer).
//!
//! Two flavours ([`EventApi`]): core/v1 Events with `source` and a growing `count` / `lastTimestamp` (what the
//! kubelet writes; repeats within ten minutes, as its event correlator aggregates them), and `events.k8s.io/v1`
//! Events with a growing `series` (what controllers write; repeats within six minutes). Repeats are the same
//! object (and field path), type, reason, action **and message**. (kube-runtime's `Recorder` leaves the
//! message out of the key, so "Created pod: a" and "Created pod: b" would show as one event with the first
//! message; that misleads `kubectl describe`.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::api::events::v1::{Event as EventsV1Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

/// How many events may wait to be written before new ones are dropped.
const BACKLOG: usize = 1024;
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
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Which Event API a recorder writes, and so how it counts repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventApi {
    /// core/v1 Events (`source` is the component on host `instance`), repeats counted in `count` and
    /// `lastTimestamp`, like client-go's `tools/record` (the kubelet).
    CoreV1,
    /// `events.k8s.io/v1` Events, repeats counted in `series`, like client-go's `tools/events`.
    EventsV1,
}

impl EventApi {
    /// Repeats within this window are counted in the first Event.
    pub fn window(self) -> Duration {
        match self {
            EventApi::CoreV1 => Duration::from_secs(10 * 60),
            EventApi::EventsV1 => Duration::from_secs(6 * 60),
        }
    }
}

/// One event to write.
#[derive(Clone, Debug)]
struct Record {
    reference: ObjectReference,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

/// What makes two events "the same" for counting repeats.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    /// apiVersion, kind, namespace, name, uid and fieldPath of the object.
    regarding: [Option<String>; 6],
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

impl SeriesKey {
    fn of(r: &Record) -> Self {
        let o = &r.reference;
        SeriesKey {
            regarding: [
                o.api_version.clone(),
                o.kind.clone(),
                o.namespace.clone(),
                o.name.clone(),
                o.uid.clone(),
                o.field_path.clone(),
            ],
            type_: r.type_,
            reason: r.reason.clone(),
            action: r.action.clone(),
            note: r.note.clone(),
        }
    }
}

/// Called with the outcome of every publication (true: written).
pub type PublishObserver = Arc<dyn Fn(bool) + Send + Sync>;

/// Records events for one reporting component (e.g. "kubelet", "deployment-controller").
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Record>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder").finish_non_exhaustive()
    }
}

impl EventRecorder {
    /// A recorder writing `api` Events as `component` from `instance` (for core/v1 also the source host);
    /// spawns its writer task. `observe` hears the outcome of each publication.
    pub fn start(
        client: Client,
        api: EventApi,
        component: &str,
        instance: &str,
        observe: Option<PublishObserver>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Record>(BACKLOG);
        let writer = Writer {
            client,
            api,
            component: component.to_string(),
            instance: instance.to_string(),
            series: HashMap::new(),
            observe,
        };
        tokio::spawn(writer.run(rx));
        EventRecorder { tx }
    }

    /// A recorder whose events go nowhere (tests).
    pub fn discard() -> Self {
        let (tx, _) = mpsc::channel(1);
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

    /// Records an event about the object `reference` (`action` may be empty for core/v1 Events).
    pub fn record(&self, reference: ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let r = Record { reference, type_, reason: reason.to_string(), action: action.to_string(), note };
        if self.tx.try_send(r).is_err() {
            tracing::debug!(reason, "event backlog full; event dropped");
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

struct Writer {
    client: Client,
    api: EventApi,
    component: String,
    instance: String,
    series: HashMap<SeriesKey, Series>,
    observe: Option<PublishObserver>,
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
            if let Some(observe) = &self.observe {
                observe(ok);
            }
        }
    }

    fn forget_old(&mut self, now: jiff::Timestamp) {
        let window = jiff::SignedDuration::try_from(self.api.window()).unwrap_or(jiff::SignedDuration::ZERO);
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
            match self.patch(&s.namespace, &s.name, &repeat_patch(self.api, count, now)).await {
                Ok(()) => {
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
        let meta = ObjectMeta { name: Some(name.clone()), namespace: Some(namespace.clone()), ..Default::default() };
        match self.api {
            EventApi::CoreV1 => {
                let event = core_event(meta, r, &self.component, &self.instance, now);
                Api::<CoreEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &event)
                    .await?;
            }
            EventApi::EventsV1 => {
                let event = events_v1_event(meta, r, &self.component, &self.instance, now);
                Api::<EventsV1Event>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &event)
                    .await?;
            }
        }
        self.series.insert(key, Series { name, namespace, count: 1, last: now });
        Ok(())
    }

    async fn patch(&self, namespace: &str, name: &str, patch: &serde_json::Value) -> Result<(), kube::Error> {
        let (params, patch) = (PatchParams::default(), Patch::Merge(patch));
        match self.api {
            EventApi::CoreV1 => {
                Api::<CoreEvent>::namespaced(self.client.clone(), namespace).patch(name, &params, &patch).await?;
            }
            EventApi::EventsV1 => {
                Api::<EventsV1Event>::namespaced(self.client.clone(), namespace).patch(name, &params, &patch).await?;
            }
        }
        Ok(())
    }
}

/// The merge patch that counts the `count`-th occurrence of an Event at `now`.
fn repeat_patch(api: EventApi, count: i32, now: jiff::Timestamp) -> serde_json::Value {
    match api {
        EventApi::CoreV1 => serde_json::json!({ "count": count, "lastTimestamp": Time(now) }),
        EventApi::EventsV1 => {
            serde_json::json!({ "series": EventSeries { count, last_observed_time: MicroTime(now) } })
        }
    }
}

/// A new core/v1 Event, as client-go's `tools/record` writes it.
fn core_event(meta: ObjectMeta, r: &Record, component: &str, instance: &str, now: jiff::Timestamp) -> CoreEvent {
    CoreEvent {
        metadata: meta,
        involved_object: r.reference.clone(),
        reason: Some(r.reason.clone()),
        message: Some(r.note.clone()),
        action: (!r.action.is_empty()).then(|| r.action.clone()),
        source: Some(EventSource { component: Some(component.to_string()), host: Some(instance.to_string()) }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some(r.type_.as_str().into()),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    }
}

/// A new `events.k8s.io/v1` Event, as client-go's `tools/events` writes it.
fn events_v1_event(
    meta: ObjectMeta,
    r: &Record,
    component: &str,
    instance: &str,
    now: jiff::Timestamp,
) -> EventsV1Event {
    EventsV1Event {
        metadata: meta,
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(component.to_string()),
        reporting_instance: Some(instance.to_string()),
        action: Some(r.action.clone()),
        reason: Some(r.reason.clone()),
        note: Some(r.note.clone()),
        regarding: Some(r.reference.clone()),
        type_: Some(r.type_.as_str().to_string()),
        ..Default::default()
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
    fn the_message_and_field_path_are_part_of_the_series_key() {
        assert_eq!(SeriesKey::of(&rec("rs", "Created pod: a")), SeriesKey::of(&rec("rs", "Created pod: a")));
        assert_ne!(SeriesKey::of(&rec("rs", "Created pod: a")), SeriesKey::of(&rec("rs", "Created pod: b")));
        assert_ne!(SeriesKey::of(&rec("rs", "x")), SeriesKey::of(&rec("other", "x")));
        let mut c = rec("rs", "x");
        c.reference.field_path = Some("spec.containers{c}".into());
        assert_ne!(SeriesKey::of(&c), SeriesKey::of(&rec("rs", "x")));
    }

    #[test]
    fn core_events_carry_source_and_count() {
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let mut r = rec("p", "Started container c");
        r.action = String::new();
        let e = core_event(ObjectMeta::default(), &r, "kubelet", "worker-1", now);
        assert_eq!(e.source, Some(EventSource { component: Some("kubelet".into()), host: Some("worker-1".into()) }));
        assert_eq!((e.count, e.action, e.type_.as_deref()), (Some(1), None, Some("Normal")));
        assert_eq!(e.message.as_deref(), Some("Started container c"));
        assert_eq!(e.reporting_instance.as_deref(), Some("worker-1"));
        assert_eq!(repeat_patch(EventApi::CoreV1, 3, now)["count"], 3);
        assert_eq!(repeat_patch(EventApi::CoreV1, 3, now)["lastTimestamp"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn events_v1_carry_reporter_and_series() {
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let e = events_v1_event(ObjectMeta::default(), &rec("rs", "n"), "deployment-controller", "i", now);
        assert_eq!(e.reporting_controller.as_deref(), Some("deployment-controller"));
        assert_eq!((e.action.as_deref(), e.note.as_deref()), (Some("Create"), Some("n")));
        assert_eq!(e.regarding.and_then(|o| o.name).as_deref(), Some("rs"));
        assert_eq!(repeat_patch(EventApi::EventsV1, 2, now)["series"]["count"], 2);
        assert!(EventApi::CoreV1.window() > EventApi::EventsV1.window());
    }
}
