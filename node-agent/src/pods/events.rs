//! kubelet's events: core/v1 Events about pods (source `kubelet` on this host, `involvedObject.fieldPath`
//! naming the container), written by a background task so pod workers never wait for the API. A repeat of the
//! same event within ten minutes increments the first one's `count` (what `kubectl describe` shows as
//! "(x3 over 2m)"), as kubelet's event correlator does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::mpsc;

const BACKLOG: usize = 4096;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
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

#[derive(Debug, Clone)]
struct Record {
    reference: ObjectReference,
    type_: EventType,
    reason: String,
    message: String,
}

/// Sends events to the background writer.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

/// `spec.containers{name}` (or `spec.initContainers{name}`).
pub fn container_field_path(init: bool, name: &str) -> String {
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

impl Recorder {
    /// Starts the writer for `node`'s events.
    pub fn start(client: Client, node: String) -> Recorder {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(writer(client, node, rx));
        Recorder { tx }
    }

    /// A recorder whose events go nowhere (tests).
    pub fn discard() -> Recorder {
        let (tx, _) = mpsc::channel(1);
        Recorder { tx }
    }

    /// Records an event about this node (kubelet refers to its Node with the node's name as UID).
    pub fn node(&self, node: &str, type_: EventType, reason: &str, message: impl Into<String>) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            uid: Some(node.to_string()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        let _ = self.tx.try_send(Record { reference, type_, reason: reason.into(), message: message.into() });
    }

    /// Records an event about `pod` (and, with `field_path`, one of its containers).
    pub fn pod(
        &self,
        pod: &Pod,
        field_path: Option<String>,
        type_: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            field_path,
            ..Default::default()
        };
        let message = message.into();
        tracing::debug!(namespace = ?pod.metadata.namespace, pod = ?pod.metadata.name, reason, %message, "event");
        let _ = self.tx.try_send(Record { reference, type_, reason: reason.into(), message });
    }
}

type Key = (Option<String>, Option<String>, String, String, EventType);

async fn writer(client: Client, node: String, mut rx: mpsc::Receiver<Record>) {
    let mut seen: HashMap<Key, (String, String, i32, Instant)> = HashMap::new();
    while let Some(r) = rx.recv().await {
        let ns = r.reference.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let now = Time(jiff::Timestamp::now());
        let key: Key =
            (r.reference.uid.clone(), r.reference.field_path.clone(), r.reason.clone(), r.message.clone(), r.type_);
        seen.retain(|_, v| v.3.elapsed() < AGGREGATE_WINDOW);
        if let Some((name, ens, count, at)) = seen.get_mut(&key) {
            if *ens == ns {
                *count += 1;
                *at = Instant::now();
                let patch = serde_json::json!({ "count": *count, "lastTimestamp": now });
                if api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_ok() {
                    continue;
                }
            }
        }
        let pod_name = r.reference.name.clone().unwrap_or_default();
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{pod_name}.{nanos:x}");
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), ..Default::default() },
            involved_object: r.reference.clone(),
            reason: Some(r.reason.clone()),
            message: Some(r.message.clone()),
            source: Some(EventSource { component: Some("kubelet".into()), host: Some(node.clone()) }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            type_: Some(r.type_.as_str().into()),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(node.clone()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                seen.insert(key, (name, ns, 1, Instant::now()));
            }
            Err(e) => tracing::debug!(error = %e, reason = %r.reason, "writing an event failed"),
        }
    }
}
