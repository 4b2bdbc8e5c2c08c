//! What this node tells the cluster about its network: its VXLAN endpoint (annotations other nodes render
//! from, as flannel's `backend-type`/`backend-data`/`public-ip`) and the `NetworkUnavailable=False` condition
//! flannel sets once routes are in place. Each write is skipped when the Node already says the same.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

use super::config::Backend;
use super::render::{backend_data, Vtep, BACKEND_DATA_ANNOTATION, BACKEND_TYPE_ANNOTATION, PUBLIC_IP_ANNOTATION};

/// The condition's reason and message, in the spirit of flannel's `FlannelIsUp`.
pub const REASON: &str = "KnetIsUp";

/// The annotations this node should carry for `backend` (`None`: remove it).
pub fn wanted_annotations(
    backend: Backend,
    vtep: Option<&Vtep>,
    public_ip: Ipv4Addr,
) -> Vec<(&'static str, Option<String>)> {
    vec![
        (BACKEND_TYPE_ANNOTATION, Some(backend.to_string())),
        (BACKEND_DATA_ANNOTATION, vtep.map(backend_data)),
        (PUBLIC_IP_ANNOTATION, Some(public_ip.to_string())),
    ]
}

/// Writes the annotations when they differ from `node`'s.
pub async fn publish(
    api: &Api<Node>,
    node: &Node,
    wanted: &[(&'static str, Option<String>)],
) -> Result<bool, kube::Error> {
    let current = node.metadata.annotations.clone().unwrap_or_default();
    if wanted.iter().all(|(k, v)| current.get(*k) == v.as_ref()) {
        return Ok(false);
    }
    let annotations: serde_json::Map<String, serde_json::Value> = wanted
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().map(Into::into).unwrap_or(serde_json::Value::Null)))
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    let name = node.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(true)
}

/// Whether `node` already has `NetworkUnavailable=False`.
pub fn network_available(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "NetworkUnavailable" && c.status == "False"))
}

/// Sets `NetworkUnavailable=False` (a strategic merge on the conditions, which touches no other condition).
pub async fn set_network_available(api: &Api<Node>, node: &Node, backend: Backend) -> Result<bool, kube::Error> {
    if network_available(node) {
        return Ok(false);
    }
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "NetworkUnavailable",
        "status": "False",
        "reason": REASON,
        "message": format!("knet is running on this node ({backend} routes)"),
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }]}});
    let name = node.metadata.name.clone().unwrap_or_default();
    api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await?;
    Ok(true)
}
