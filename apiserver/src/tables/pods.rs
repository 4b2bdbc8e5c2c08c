//! The pod printer: READY, STATUS (the reason kubectl users know: `Running`,
//! `ContainerCreating`, `CrashLoopBackOff`, `Init:0/1`, `Completed`, `Terminating`, …),
//! RESTARTS (`3 (2m ago)`) and, wide, IP, NODE, NOMINATED NODE and READINESS GATES.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition};
use serde_json::{json, Value};

use super::format::since;
use super::{col, typed, Column, Doc, Printer, Row, AGE, NAME};

pub(super) fn printer(group: &str, plural: &str) -> Option<Printer> {
    match (group, plural) {
        ("", "pods") => Some(Printer { columns: POD, row: |v, now| typed(v, now, pod) }),
        _ => None,
    }
}

const POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";

const POD: &[Column] = &[
    NAME,
    col("Ready", "string", 0, Doc::Text("The aggregate readiness state of this pod for accepting traffic.")),
    col("Status", "string", 0, Doc::Text("The aggregate status of the containers in this pod.")),
    col(
        "Restarts",
        "string",
        0,
        Doc::Text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    ),
    AGE,
    col("IP", "string", 1, Doc::Field(POD_STATUS, "podIP")),
    col("Node", "string", 1, Doc::Field(POD_SPEC, "nodeName")),
    col("Nominated Node", "string", 1, Doc::Field(POD_STATUS, "nominatedNodeName")),
    col("Readiness Gates", "string", 1, Doc::Field(POD_SPEC, "readinessGates")),
];

/// A sidecar: an init container that keeps running (`restartPolicy: Always`).
fn is_restartable_init(c: Option<&Container>) -> bool {
    c.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

fn has_condition(conditions: &[PodCondition], kind: &str) -> bool {
    conditions.iter().any(|c| c.type_ == kind && c.status == "True")
}

/// The latest `lastState.terminated.finishedAt` seen so far.
fn later(current: Option<Timestamp>, status: &ContainerStatus) -> Option<Timestamp> {
    let finished = status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.finished_at.as_ref());
    match (current, finished) {
        (Some(c), Some(f)) if f.0 > c => Some(f.0),
        (None, Some(f)) => Some(f.0),
        (c, _) => c,
    }
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

fn pod(pod: &Pod, now: Timestamp) -> Row {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let conditions: Vec<PodCondition> = status.conditions.clone().unwrap_or_default();
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let total = spec.containers.len() + init_containers.iter().filter(|c| is_restartable_init(Some(c))).count();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let mut reason = non_empty(status.reason.as_ref()).map(String::from).unwrap_or_else(|| phase.clone());
    if conditions.iter().any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated")) {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        let spec_c = init_containers.iter().find(|s| s.name == c.name);
        restarts += i64::from(c.restart_count);
        last_restart = later(last_restart, c);
        if is_restartable_init(spec_c) {
            sidecar_restarts += i64::from(c.restart_count);
            last_sidecar_restart = later(last_sidecar_restart, c);
        }
        let state = c.state.clone().unwrap_or_default();
        match (&state.terminated, &state.waiting) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if is_restartable_init(spec_c) && c.started == Some(true) => {
                if c.ready {
                    ready += 1;
                }
                continue;
            }
            (Some(t), _) => {
                reason = match (non_empty(t.reason.as_ref()), t.signal.filter(|s| *s != 0)) {
                    (Some(r), _) => format!("Init:{r}"),
                    (None, Some(sig)) => format!("Init:Signal:{sig}"),
                    (None, None) => format!("Init:ExitCode:{}", t.exit_code),
                };
                initializing = true;
            }
            (None, Some(w)) if non_empty(w.reason.as_ref()).is_some_and(|r| r != "PodInitializing") => {
                reason = format!("Init:{}", w.reason.as_deref().unwrap_or_default());
                initializing = true;
            }
            _ => {
                reason = format!("Init:{i}/{}", init_containers.len());
                initializing = true;
            }
        }
        break;
    }

    if !initializing || has_condition(&conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += i64::from(c.restart_count);
            last_restart = later(last_restart, c);
            let state = c.state.clone().unwrap_or_default();
            if let Some(r) = state.waiting.as_ref().and_then(|w| non_empty(w.reason.as_ref())) {
                reason = r.to_string();
            } else if let Some(t) = &state.terminated {
                reason = match (non_empty(t.reason.as_ref()), t.signal.filter(|s| *s != 0)) {
                    (Some(r), _) => r.to_string(),
                    (None, Some(sig)) => format!("Signal:{sig}"),
                    (None, None) => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // Back to Running if a container still runs after another completed.
        if reason == "Completed" && has_running {
            reason = if has_condition(&conditions, "Ready") { "Running".into() } else { "NotReady".into() };
        }
    }

    let terminal = phase == "Succeeded" || phase == "Failed";
    if pod.metadata.deletion_timestamp.is_some() && status.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".into();
    } else if pod.metadata.deletion_timestamp.is_some() && !terminal {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(&t), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = status.pod_ips.as_ref().and_then(|ips| ips.first()).map(|ip| ip.ip.clone()).unwrap_or_default();
    let or_none = |s: String| if s.is_empty() { "<none>".to_string() } else { s };
    let gates = spec.readiness_gates.clone().unwrap_or_default();
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| conditions.iter().find(|c| c.type_ == g.condition_type).is_some_and(|c| c.status == "True"))
            .count();
        format!("{met}/{}", gates.len())
    };

    let mut row = Row::new(vec![
        json!(pod.metadata.name.clone().unwrap_or_default()),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(since(pod.metadata.creation_timestamp.as_ref().map(|t| &t.0), now)),
        json!(or_none(pod_ip)),
        json!(or_none(spec.node_name.clone().unwrap_or_default())),
        json!(or_none(status.nominated_node_name.clone().unwrap_or_default())),
        json!(readiness_gates),
    ]);
    row.conditions = completed_condition(&phase);
    row
}

/// The `Completed` row condition of finished pods.
fn completed_condition(phase: &str) -> Vec<Value> {
    let message = match phase {
        "Succeeded" => "The pod has completed successfully.",
        "Failed" => "The pod failed.",
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": phase, "message": message})]
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::tables::testutil::{ago, cells, columns, now, res};
    use crate::tables::{table_with, TableOptions};

    fn c(name: &str) -> Value {
        json!({"name": name, "image": "nginx"})
    }

    fn running(name: &str, ready: bool, restarts: i32) -> Value {
        json!({"name": name, "image": "nginx", "imageID": "", "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(100)}}})
    }

    #[test]
    fn pod_columns_match_kubectl() {
        let cols = columns("", "pods");
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        assert_eq!(cols.iter().map(|(_, p)| *p).collect::<Vec<_>>(), [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn running_pod() {
        let p = json!({
            "metadata": {"name": "my-nginx-5b56ccd65f-2xq7t", "creationTimestamp": ago(125)},
            "spec": {"containers": [c("nginx")], "nodeName": "worker-1"},
            "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [running("nginx", true, 0)]}
        });
        assert_eq!(
            cells("", "pods", p),
            json!([
                "my-nginx-5b56ccd65f-2xq7t",
                "1/1",
                "Running",
                "0",
                "2m5s",
                "10.244.1.5",
                "worker-1",
                "<none>",
                "<none>"
            ])
            .as_array()
            .cloned()
            .unwrap_or_default()
        );
    }

    #[test]
    fn pending_pod_and_waiting_reasons() {
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a"), c("b")]}, "status": {"phase": "Pending"}});
        let got = cells("", "pods", pending);
        assert_eq!(
            (&got[1], &got[2], &got[4], &got[5], &got[6]),
            (&json!("0/2"), &json!("Pending"), &json!("<unknown>"), &json!("<none>"), &json!("<none>"))
        );
        let creating = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")]}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "a", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cells("", "pods", creating)[2], "ContainerCreating");
    }

    #[test]
    fn crash_looping_pod_shows_restarts_with_age() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")]}, "status": {"phase": "Running", "containerStatuses": [
            {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(90)}}}]}});
        let got = cells("", "pods", p);
        assert_eq!((&got[1], &got[2], &got[3]), (&json!("0/1"), &json!("CrashLoopBackOff"), &json!("4 (90s ago)")));
    }

    #[test]
    fn init_containers() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [c("init1"), c("init2")], "containers": [c("a")]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init1", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                {"name": "init2", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]}});
        assert_eq!(cells("", "pods", p)[2], "Init:1/2");
        let failed = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [c("init1")], "containers": [c("a")]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init1", "image": "x", "imageID": "", "ready": false, "restartCount": 2, "state": {"terminated": {"exitCode": 3}}}]}});
        let got = cells("", "pods", failed);
        assert_eq!((&got[2], &got[3]), (&json!("Init:ExitCode:3"), &json!("2")));
        let backoff = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [c("init1")], "containers": [c("a")]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init1", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(cells("", "pods", backoff)[2], "Init:CrashLoopBackOff");
    }

    #[test]
    fn sidecars_count_as_containers() {
        let sidecar = json!({"name": "log", "image": "busybox", "restartPolicy": "Always"});
        let p = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [sidecar], "containers": [c("a")]},
            "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "log", "image": "x", "imageID": "", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [running("a", true, 2)]}});
        let got = cells("", "pods", p);
        assert_eq!((&got[1], &got[2], &got[3]), (&json!("2/2"), &json!("Running"), &json!("3")));
    }

    #[test]
    fn completed_terminating_and_gates() {
        let done = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")]}, "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        let t = table_with(res("", "pods"), &[done], json!({}), TableOptions::default(), now());
        assert_eq!(t["rows"][0]["cells"][2], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
        let deleting = json!({"metadata": {"name": "p", "deletionTimestamp": ago(1)}, "spec": {"containers": [c("a")]},
            "status": {"phase": "Running", "containerStatuses": [running("a", true, 0)]}});
        assert_eq!(cells("", "pods", deleting)[2], "Terminating");
        let gated = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")], "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]},
            "status": {"phase": "Running", "conditions": [{"type": "example.com/lb", "status": "True"}], "containerStatuses": [running("a", true, 0)]}});
        assert_eq!(cells("", "pods", gated)[8], "1/2");
        let signal = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")]}, "status": {"phase": "Failed", "containerStatuses": [
            {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(cells("", "pods", signal)[2], "Signal:9");
        let evicted = json!({"metadata": {"name": "p"}, "spec": {"containers": [c("a")]}, "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(cells("", "pods", evicted)[2], "Evicted");
    }
}
