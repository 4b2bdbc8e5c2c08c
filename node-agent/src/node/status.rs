//! The Node object and its status as kubelet reports them, rendered from machine facts and the agent's
//! readiness (pure): labels, addresses, capacity and allocatable, conditions with kubelet's reasons and
//! messages (transition times kept while a condition does not change), node info, the kubelet endpoint.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::machine::MachineInfo;

/// The version `kubectl get nodes` shows: the Kubernetes API level knet implements, marked as knet's.
pub const KUBELET_VERSION: &str = concat!("v1.34.0-knet.", env!("CARGO_PKG_VERSION"));
/// The runtime `kubectl get nodes -o wide` shows.
pub const RUNTIME_VERSION: &str = concat!("knet://", env!("CARGO_PKG_VERSION"));
/// kubelet's default hard eviction threshold for memory, subtracted from allocatable.
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;
/// kubelet's default `nodefs.available` eviction threshold.
const EVICTION_NODEFS_PERCENT: u64 = 10;
/// Why a node is not ready, as kubelet words a missing CNI configuration.
pub const NETWORK_NOT_READY: &str = "container runtime network not ready: NetworkReady=false \
reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/// Go's `GOARCH` name of this machine.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Everything the Node's status is made from.
#[derive(Debug, Clone)]
pub struct NodeInputs<'a> {
    pub name: &'a str,
    pub machine: &'a MachineInfo,
    pub node_ips: &'a [IpAddr],
    pub max_pods: u32,
    pub kubelet_port: u16,
    /// `Err(message)` while the pod network is not ready.
    pub ready: Result<(), String>,
    pub now: Time,
}

/// The labels kubelet puts on its Node, plus `--node-labels`.
pub fn labels(name: &str, extra: &[String]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("kubernetes.io/hostname".to_string(), name.to_lowercase());
    l.insert("kubernetes.io/os".to_string(), "linux".to_string());
    l.insert("kubernetes.io/arch".to_string(), go_arch().to_string());
    l.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
    l.insert("beta.kubernetes.io/arch".to_string(), go_arch().to_string());
    for kv in extra {
        if let Some((k, v)) = kv.split_once('=') {
            l.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    l
}

fn q(s: impl Into<String>) -> Quantity {
    Quantity(s.into())
}

fn condition(
    type_: &str,
    ok: bool,
    status_if_ok: &str,
    reason: &str,
    message: &str,
    now: &Time,
    previous: Option<&NodeStatus>,
) -> NodeCondition {
    let status = if ok {
        status_if_ok.to_string()
    } else if status_if_ok == "True" {
        "False".into()
    } else {
        "True".into()
    };
    let prev = previous.and_then(|p| p.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transition = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone().unwrap_or_else(|| now.clone()),
        _ => now.clone(),
    };
    NodeCondition {
        type_: type_.into(),
        status,
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(transition),
    }
}

/// The Node's status. `previous` keeps condition transition times and conditions other parts own (e.g.
/// NetworkUnavailable).
pub fn render(inputs: &NodeInputs, previous: Option<&NodeStatus>) -> NodeStatus {
    let m = inputs.machine;
    let now = &inputs.now;
    let mut addresses: Vec<NodeAddress> =
        inputs.node_ips.iter().map(|ip| NodeAddress { type_: "InternalIP".into(), address: ip.to_string() }).collect();
    addresses.push(NodeAddress { type_: "Hostname".into(), address: inputs.name.to_string() });
    let capacity: BTreeMap<String, Quantity> = [
        ("cpu", q(m.cpus.to_string())),
        ("ephemeral-storage", q(format!("{}Ki", m.ephemeral_storage_bytes / 1024))),
        ("hugepages-1Gi", q("0")),
        ("hugepages-2Mi", q("0")),
        ("memory", q(format!("{}Ki", m.memory_bytes / 1024))),
        ("pods", q(inputs.max_pods.to_string())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut allocatable = capacity.clone();
    allocatable
        .insert("memory".into(), q(format!("{}Ki", m.memory_bytes.saturating_sub(EVICTION_MEMORY_BYTES) / 1024)));
    allocatable.insert(
        "ephemeral-storage".into(),
        q((m.ephemeral_storage_bytes - m.ephemeral_storage_bytes * EVICTION_NODEFS_PERCENT / 100).to_string()),
    );
    let ready_msg = match &inputs.ready {
        Ok(()) => "kubelet is posting ready status".to_string(),
        Err(e) => e.clone(),
    };
    let ready_reason = if inputs.ready.is_ok() { "KubeletReady" } else { "KubeletNotReady" };
    let mut conditions = vec![
        condition(
            "MemoryPressure",
            true,
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
            previous,
        ),
        condition(
            "DiskPressure",
            true,
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now,
            previous,
        ),
        condition(
            "PIDPressure",
            true,
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
            previous,
        ),
        condition("Ready", inputs.ready.is_ok(), "True", ready_reason, &ready_msg, now, previous),
    ];
    // Conditions owned by others (NetworkUnavailable from the network part) are kept as they are.
    if let Some(prev) = previous.and_then(|p| p.conditions.as_ref()) {
        let ours: Vec<String> = conditions.iter().map(|c| c.type_.clone()).collect();
        conditions.splice(0..0, prev.iter().filter(|c| !ours.contains(&c.type_)).cloned());
    }
    NodeStatus {
        addresses: Some(addresses),
        allocatable: Some(allocatable),
        capacity: Some(capacity),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(inputs.kubelet_port) }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: m.boot_id.clone(),
            container_runtime_version: RUNTIME_VERSION.into(),
            kernel_version: m.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: m.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: m.os_image.clone(),
            system_uuid: m.system_uuid.clone(),
            swap: None,
        }),
        ..previous
            .cloned()
            .map(|p| NodeStatus {
                images: p.images,
                volumes_attached: p.volumes_attached,
                volumes_in_use: p.volumes_in_use,
                ..Default::default()
            })
            .unwrap_or_default()
    }
}

/// The Node a fresh registration creates.
pub fn node(name: &str, labels: BTreeMap<String, String>, status: NodeStatus) -> Node {
    let annotations: BTreeMap<String, String> =
        [("node.alpha.kubernetes.io/ttl", "0"), ("volumes.kubernetes.io/controller-managed-attach-detach", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: None,
        status: Some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> MachineInfo {
        MachineInfo {
            cpus: 2,
            memory_bytes: 4 * 1024 * 1024 * 1024,
            ephemeral_storage_bytes: 100 * 1024 * 1024 * 1024,
            machine_id: "m".into(),
            system_uuid: "u".into(),
            boot_id: "b".into(),
            kernel_version: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            hostname: "host".into(),
        }
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn inputs<'a>(m: &'a MachineInfo, ips: &'a [IpAddr], ready: Result<(), String>, now: &str) -> NodeInputs<'a> {
        NodeInputs {
            name: "worker-1",
            machine: m,
            node_ips: ips,
            max_pods: 110,
            kubelet_port: 10250,
            ready,
            now: time(now),
        }
    }

    fn cond<'a>(s: &'a NodeStatus, t: &str) -> &'a NodeCondition {
        s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn renders_like_kubelet() {
        let m = machine();
        let ips: Vec<IpAddr> = vec!["192.168.56.11".parse().unwrap()];
        let s = render(&inputs(&m, &ips, Err(NETWORK_NOT_READY.into()), "2025-01-01T00:00:00Z"), None);
        let addrs: Vec<(String, String)> =
            s.addresses.clone().unwrap().into_iter().map(|a| (a.type_, a.address)).collect();
        assert_eq!(addrs, [("InternalIP".into(), "192.168.56.11".into()), ("Hostname".into(), "worker-1".into())]);
        let cap = s.capacity.clone().unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(s.allocatable.as_ref().unwrap()["memory"].0, "4091904Ki");
        let ready = cond(&s, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("KubeletNotReady")));
        assert!(ready.message.as_deref().unwrap().starts_with("container runtime network not ready"));
        assert_eq!(cond(&s, "MemoryPressure").reason.as_deref(), Some("KubeletHasSufficientMemory"));
        assert_eq!(s.daemon_endpoints.as_ref().unwrap().kubelet_endpoint.as_ref().unwrap().port, 10250);
        assert!(s.node_info.as_ref().unwrap().kubelet_version.starts_with("v1.34.0-knet."));

        // Later: ready; the transition time moves only for the condition that changed.
        let mut prev = s.clone();
        prev.conditions.as_mut().unwrap().insert(
            0,
            NodeCondition { type_: "NetworkUnavailable".into(), status: "False".into(), ..Default::default() },
        );
        let s2 = render(&inputs(&m, &ips, Ok(()), "2025-01-01T00:00:10Z"), Some(&prev));
        let ready = cond(&s2, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(ready.last_transition_time, Some(time("2025-01-01T00:00:10Z")));
        let mem = cond(&s2, "MemoryPressure");
        assert_eq!(mem.last_transition_time, Some(time("2025-01-01T00:00:00Z")));
        assert_eq!(mem.last_heartbeat_time, Some(time("2025-01-01T00:00:10Z")));
        assert_eq!(cond(&s2, "NetworkUnavailable").status, "False");
    }

    #[test]
    fn labels_include_kubelets_and_extra() {
        let l = labels("Worker-1", &["zone=a".into(), "bad".into()]);
        assert_eq!(l["kubernetes.io/hostname"], "worker-1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["zone"], "a");
        assert_eq!(l.len(), 6);
    }
}
