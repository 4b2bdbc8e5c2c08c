//! kubelet's events: core/v1 Events about pods (source `kubelet` on this host, `involvedObject.fieldPath`
//! naming the container) and about its Node, written by component-base's background [`EventRecorder`] so pod
//! workers never wait for the API. A repeat of the same event within ten minutes increments the first one's
//! `count` (what `kubectl describe` shows as "(x3 over 2m)"), as kubelet's event correlator does.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use knet_component_base::events::{EventApi, EventRecorder};
use kube::Client;

pub use knet_component_base::events::EventType;

/// Sends events to the background writer.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: EventRecorder,
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
        Recorder { inner: EventRecorder::start(client, EventApi::CoreV1, "kubelet", &node, None) }
    }

    /// A recorder whose events go nowhere (tests).
    pub fn discard() -> Recorder {
        Recorder { inner: EventRecorder::discard() }
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
        self.inner.record(reference, type_, reason, "", message.into());
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
        self.inner.record(reference, type_, reason, "", message);
    }
}
