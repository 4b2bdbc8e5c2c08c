//! Pod status as kubelet reports it, computed from what the runtime knows (pure): phase (kubelet's
//! `getPhase`), podIP(s)/hostIP(s), startTime, the conditions PodReadyToStartContainers, Initialized,
//! ContainersReady and Ready (transition times kept while unchanged), container statuses with `knet://` IDs,
//! state/lastState, restartCount, ready/started, and qosClass.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP,
    Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::images;

/// The runtime's name in container IDs.
pub const RUNTIME: &str = "knet";

/// A container's state as the runtime sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum CState {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: Time },
    Terminated(Terminated),
}

/// A finished container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Time>,
    pub finished_at: Time,
    pub container_id: Option<String>,
}

/// One container (init or regular) for the status.
#[derive(Debug, Clone, PartialEq)]
pub struct CView {
    pub name: String,
    pub image: String,
    pub state: CState,
    pub last_state: Option<Terminated>,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub container_id: Option<String>,
}

/// Everything the status is computed from.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    pub pod: &'a Pod,
    pub init: Vec<CView>,
    pub containers: Vec<CView>,
    pub sandbox_ready: bool,
    pub pod_ips: &'a [IpAddr],
    pub host_ips: &'a [IpAddr],
    pub start_time: Option<Time>,
    /// A pod-level failure: (reason, message); the pod is Failed.
    pub failure: Option<(String, String)>,
    /// The pod is being deleted and everything stopped: the phase becomes terminal.
    pub terminal: bool,
    pub now: Time,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always")
}

fn restartable_init(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|ics| ics.iter().find(|c| c.name == name))
        .and_then(|c| c.restart_policy.as_deref())
        == Some("Always")
}

/// Whether an init container has done its part (exited 0, or — a sidecar — started).
pub fn init_done(pod: &Pod, c: &CView) -> bool {
    if restartable_init(pod, &c.name) {
        return c.started;
    }
    matches!(&c.state, CState::Terminated(t) if t.exit_code == 0)
}

/// kubelet's `getPhase`.
pub fn phase(input: &StatusInput) -> &'static str {
    if input.failure.is_some() {
        return "Failed";
    }
    let policy = restart_policy(input.pod);
    let mut pending_init = 0;
    let mut failed_init = 0;
    for c in &input.init {
        if restartable_init(input.pod, &c.name) {
            if !c.started {
                pending_init += 1;
            }
            continue;
        }
        match &c.state {
            CState::Running { .. } => pending_init += 1,
            CState::Terminated(t) if t.exit_code != 0 => failed_init += 1,
            CState::Terminated(_) => {}
            CState::Waiting { .. } => match &c.last_state {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &input.containers {
        match &c.state {
            CState::Running { .. } => running += 1,
            CState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            CState::Waiting { .. } => {
                if c.last_state.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 && !input.terminal {
        return "Pending";
    }
    if waiting > 0 && !input.terminal {
        return "Pending";
    }
    if running > 0 && !input.terminal {
        return "Running";
    }
    if stopped > 0 || input.terminal {
        if input.terminal {
            return if stopped == succeeded && running == 0 && waiting == 0 && stopped > 0 {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn container_state(s: &CState) -> ContainerState {
    match s {
        CState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.clone()), message: message.clone() }),
            ..Default::default()
        },
        CState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(started_at.clone()) }),
            ..Default::default()
        },
        CState::Terminated(t) => ContainerState { terminated: Some(terminated(t)), ..Default::default() },
    }
}

fn terminated(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: t.started_at.clone(),
        finished_at: Some(t.finished_at.clone()),
        container_id: t.container_id.as_ref().map(|id| format!("{RUNTIME}://{id}")),
    }
}

fn container_status(c: &CView) -> ContainerStatus {
    let image = images::normalized(&c.image);
    ContainerStatus {
        name: c.name.clone(),
        image_id: if c.container_id.is_some() { format!("{RUNTIME}://{image}") } else { String::new() },
        image,
        container_id: c.container_id.as_ref().map(|id| format!("{RUNTIME}://{id}")),
        state: Some(container_state(&c.state)),
        last_state: Some(
            c.last_state
                .as_ref()
                .map(|t| ContainerState { terminated: Some(terminated(t)), ..Default::default() })
                .unwrap_or_default(),
        ),
        ready: c.ready,
        restart_count: c.restart_count,
        started: Some(c.started),
        ..Default::default()
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
    previous: Option<&PodStatus>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" }.to_string();
    let prev = previous.and_then(|p| p.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transition = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone().or_else(|| Some(now.clone())),
        _ => Some(now.clone()),
    };
    PodCondition {
        type_: type_.into(),
        status,
        reason: reason.map(str::to_string),
        message,
        last_transition_time: transition,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's QoS class from its containers' requests and limits (as the API server recorded it).
pub fn qos_class(pod: &Pod) -> &'static str {
    pod.spec.as_ref().map_or("BestEffort", knet_apimachinery::qos::pod_qos_class)
}

/// The pod's status. `previous` (the status in the API) keeps transition times.
pub fn render(input: &StatusInput, previous: Option<&PodStatus>) -> PodStatus {
    let pod = input.pod;
    let now = &input.now;
    let phase = phase(input);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let not_init: Vec<&str> = input.init.iter().filter(|c| !init_done(pod, c)).map(|c| c.name.as_str()).collect();
    let unready: Vec<&str> = input
        .init
        .iter()
        .filter(|c| restartable_init(pod, &c.name) && !c.ready)
        .chain(input.containers.iter().filter(|c| !c.ready))
        .map(|c| c.name.as_str())
        .collect();
    let initialized = if phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None, now, previous)
    } else if not_init.is_empty() {
        condition("Initialized", true, None, None, now, previous)
    } else {
        let msg = format!("containers with incomplete status: [{}]", not_init.join(" "));
        condition("Initialized", false, Some("ContainersNotInitialized"), Some(msg), now, previous)
    };
    let (ready, containers_ready) = if terminal {
        (
            condition("Ready", false, Some("PodCompleted"), None, now, previous),
            condition("ContainersReady", false, Some("PodCompleted"), None, now, previous),
        )
    } else if unready.is_empty() && not_init.is_empty() {
        (
            condition("Ready", true, None, None, now, previous),
            condition("ContainersReady", true, None, None, now, previous),
        )
    } else {
        let names: Vec<&str> =
            if unready.is_empty() { input.containers.iter().map(|c| c.name.as_str()).collect() } else { unready };
        let msg = format!("containers with unready status: [{}]", names.join(" "));
        (
            condition("Ready", false, Some("ContainersNotReady"), Some(msg.clone()), now, previous),
            condition("ContainersReady", false, Some("ContainersNotReady"), Some(msg), now, previous),
        )
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", input.sandbox_ready, None, None, now, previous),
        initialized,
        ready,
        containers_ready,
    ];
    // Conditions others own (PodScheduled, DisruptionTarget, readiness gates) stay.
    if let Some(prev) = previous.and_then(|p| p.conditions.as_ref()) {
        let ours: Vec<String> = conditions.iter().map(|c| c.type_.clone()).collect();
        conditions.extend(prev.iter().filter(|c| !ours.contains(&c.type_)).cloned());
    }
    let (reason, message) = match &input.failure {
        Some((r, m)) => (Some(r.clone()), Some(m.clone())),
        None => (None, None),
    };
    let ips = |ips: &[IpAddr]| ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
    let pod_ips = ips(input.pod_ips);
    let host_ips = ips(input.host_ips);
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: host_ips.first().cloned(),
        host_ips: (!host_ips.is_empty()).then(|| host_ips.iter().map(|ip| HostIP { ip: ip.clone() }).collect()),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty()).then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: input.start_time.clone(),
        init_container_statuses: (!input.init.is_empty()).then(|| input.init.iter().map(container_status).collect()),
        container_statuses: Some(input.containers.iter().map(container_status).collect()),
        qos_class: Some(qos_class(pod).into()),
        reason,
        message,
        observed_generation: pod.metadata.generation,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
