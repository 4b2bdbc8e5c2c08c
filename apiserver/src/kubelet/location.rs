//! Where a pod's `log`, `exec`, `attach` and `portforward` go, decided as kube-apiserver's pod REST storage
//! decides it (`LogLocation`, `streamLocation`, the node's connection info) and checked the way the kubelet
//! checks a container's state before it serves it — with their messages. Pure functions over the pod and node.

use knet_apimachinery::field::{FieldError, Path};
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// The kubelet port when the Node reports none.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// A connect subresource of pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Log,
    Exec,
    Attach,
    PortForward,
}

impl Connect {
    pub fn from_subresource(sub: &str) -> Option<Connect> {
        match sub {
            "log" => Some(Connect::Log),
            "exec" => Some(Connect::Exec),
            "attach" => Some(Connect::Attach),
            "portforward" => Some(Connect::PortForward),
            _ => None,
        }
    }
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).map(String::from).collect())
        .unwrap_or_default()
}

/// The container a request is for: the one named (it must be a container or init container of the pod), or the
/// pod's only container.
pub fn container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers.iter().chain(&init).chain(&ephemeral).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::BadRequest(format!("container {c} is not valid for pod {name}")))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::BadRequest(format!("a container name must be specified for pod {name}"))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !init.is_empty() {
                    msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
                }
                if !ephemeral.is_empty() {
                    msg.push_str(&format!(" or one of the ephemeral containers: [{}]", ephemeral.join(" ")));
                }
                Err(ApiError::BadRequest(msg))
            }
        },
    }
}

/// The node the pod is bound to, if any.
pub fn node_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"].iter().find_map(|list| {
        pod.pointer(&format!("/status/{list}"))
            .and_then(Value::as_array)
            .and_then(|ss| ss.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(container)))
    })
}

/// Whether the container's log can be read, with the kubelet's message when not
/// (`validateContainerLogStatus`).
pub fn check_log_status(pod: &Value, pod_name: &str, container: &str, previous: bool) -> Result<(), String> {
    let Some(status) = container_status(pod, container) else {
        return Err(format!("container {container:?} in pod {pod_name:?} is not available"));
    };
    let last_terminated = status.pointer("/lastState/terminated");
    let last_id = last_terminated.and_then(|t| t.get("containerID")).and_then(Value::as_str).filter(|s| !s.is_empty());
    let state = status.get("state");
    let running = state.and_then(|s| s.get("running")).is_some();
    let terminated = state.and_then(|s| s.get("terminated"));
    let waiting = state.and_then(|s| s.get("waiting"));
    if previous {
        if last_id.is_none() {
            return Err(format!("previous terminated container {container:?} in pod {pod_name:?} not found"));
        }
        return Ok(());
    }
    if running {
        return Ok(());
    }
    if let Some(t) = terminated {
        let id = t.get("containerID").and_then(Value::as_str).filter(|s| !s.is_empty());
        if id.is_none() && last_id.is_none() {
            return Err(format!("container {container:?} in pod {pod_name:?} is terminated"));
        }
        return Ok(());
    }
    if last_terminated.is_some() {
        if last_id.is_none() {
            return Err(format!("container {container:?} in pod {pod_name:?} is terminated"));
        }
        return Ok(());
    }
    if let Some(w) = waiting {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or("");
        return Err(match reason {
            "ErrImagePull" => {
                format!("container {container:?} in pod {pod_name:?} is waiting to start: image can't be pulled")
            }
            "ImagePullBackOff" => {
                format!(
                    "container {container:?} in pod {pod_name:?} is waiting to start: trying and failing to pull image"
                )
            }
            r => format!("container {container:?} in pod {pod_name:?} is waiting to start: {r}"),
        });
    }
    Err(format!("container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"))
}

/// Whether the container runs (for exec and attach), with the kubelet's message when its status says it does
/// not. A container without a status is left for the node to judge.
pub fn check_running(pod: &Value, container: &str) -> Result<(), String> {
    match container_status(pod, container) {
        Some(s) if s.pointer("/state/running").is_none() => Err(format!("container not found ({container:?})")),
        _ => Ok(()),
    }
}

/// The address and port of a node's kubelet: the first address of the preferred types, the port from
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_endpoint(node: &Value, preferred: &[String]) -> Result<(String, u16), ApiError> {
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| Some((x.get("type")?.as_str()?, x.get("address")?.as_str()?))).collect())
        .unwrap_or_default();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX))
        .map_or(DEFAULT_KUBELET_PORT, |p| p as u16);
    for want in preferred {
        if let Some((_, addr)) = addresses.iter().find(|(t, a)| t == want && !a.is_empty()) {
            return Ok((addr.to_string(), port));
        }
    }
    let known: Vec<String> = addresses.iter().map(|(t, a)| format!("{{{t} {a}}}")).collect();
    Err(ApiError::BadRequest(format!("no preferred addresses found; known addresses: [{}]", known.join(" "))))
}

fn flag(q: &[(String, String)], key: &str) -> bool {
    q.iter().any(|(k, v)| k == key && matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `PodLogOptions` from the query, validated as kube-apiserver validates them; the kubelet's query string.
pub fn log_query(pods: &ResourceInfo, name: &str, q: &[(String, String)]) -> Result<(bool, String), ApiError> {
    let int = |key: &str| -> Result<Option<i64>, ApiError> {
        param(q, key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid value {v:?} for {key}: not an integer")))
            })
            .transpose()
    };
    let (tail, limit, since_s) = (int("tailLines")?, int("limitBytes")?, int("sinceSeconds")?);
    let since_t = param(q, "sinceTime").filter(|s| !s.is_empty());
    let mut errs = Vec::new();
    if let Some(t) = tail.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(&Path::new("tailLines"), t, "must be greater than or equal to 0"));
    }
    if let Some(l) = limit.filter(|l| *l < 1) {
        errs.push(FieldError::invalid(&Path::new("limitBytes"), l, "must be greater than 0"));
    }
    match (since_s, since_t) {
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &Path::new(""),
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(s), None) if s < 1 => {
            errs.push(FieldError::invalid(&Path::new("sinceSeconds"), s, "must be greater than 0"))
        }
        _ => {}
    }
    if let Some(t) = since_t {
        if t.parse::<jiff::Timestamp>().is_err() {
            return Err(ApiError::BadRequest(format!("invalid value {t:?} for sinceTime: not an RFC3339 time")));
        }
    }
    if !errs.is_empty() {
        let kind = ResourceInfo { kind: "PodLogOptions", ..*pods };
        return Err(ApiError::invalid(&kind, name, errs));
    }
    let mut out = Vec::new();
    for key in ["follow", "previous", "timestamps"] {
        if flag(q, key) {
            out.push(format!("{key}=true"));
        }
    }
    if let Some(s) = since_s {
        out.push(format!("sinceSeconds={s}"));
    }
    if let Some(t) = since_t {
        out.push(format!("sinceTime={}", encode(t)));
    }
    if let Some(t) = tail {
        out.push(format!("tailLines={t}"));
    }
    if let Some(l) = limit {
        out.push(format!("limitBytes={l}"));
    }
    Ok((flag(q, "previous"), out.join("&")))
}

/// The kubelet's query string for exec, attach (`PodExecOptions`/`PodAttachOptions` → `input`, `output`,
/// `error`, `tty`, `command`) and port-forward (`ports` → `port`).
pub fn stream_query(kind: Connect, q: &[(String, String)]) -> String {
    let mut out = Vec::new();
    match kind {
        Connect::PortForward => {
            let ports: Vec<&str> = q.iter().filter(|(k, _)| k == "ports").map(|(_, v)| v.as_str()).collect();
            if !ports.is_empty() {
                out.push(format!("port={}", encode(&ports.join(","))));
            }
        }
        _ => {
            for (key, param) in [("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")] {
                if flag(q, key) {
                    out.push(format!("{param}=1"));
                }
            }
            if kind == Connect::Exec {
                for (_, c) in q.iter().filter(|(k, _)| k == "command") {
                    out.push(format!("command={}", encode(c)));
                }
            }
        }
    }
    out.join("&")
}

/// The kubelet path of a request.
pub fn kubelet_path(kind: Connect, namespace: &str, pod: &str, container: &str) -> String {
    let (ns, pod, c) = (encode(namespace), encode(pod), encode(container));
    match kind {
        Connect::Log => format!("/containerLogs/{ns}/{pod}/{c}"),
        Connect::Exec => format!("/exec/{ns}/{pod}/{c}"),
        Connect::Attach => format!("/attach/{ns}/{pod}/{c}"),
        Connect::PortForward => format!("/portForward/{ns}/{pod}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app"}, {"name": "side"}], "initContainers": [{"name": "init"}]}})
    }

    fn message(e: ApiError) -> String {
        e.to_status()["message"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn containers_default_and_are_checked_with_upstreams_messages() {
        assert_eq!(
            message(container(&pod(), "web", None).unwrap_err()),
            "a container name must be specified for pod web, choose one of: [app side] or one of the init containers: [init]"
        );
        assert_eq!(
            message(container(&pod(), "web", Some("nope")).unwrap_err()),
            "container nope is not valid for pod web"
        );
        assert_eq!(container(&pod(), "web", Some("init")).unwrap(), "init");
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container(&one, "p", None).unwrap(), "only");
    }

    #[test]
    fn log_status_as_the_kubelet_checks_it() {
        let with = |status: Value| json!({"status": {"containerStatuses": [status]}});
        let waiting = with(json!({"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}));
        assert_eq!(
            check_log_status(&waiting, "p", "c", false).unwrap_err(),
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            check_log_status(&waiting, "p", "c", true).unwrap_err(),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        assert_eq!(
            check_log_status(&json!({}), "p", "c", false).unwrap_err(),
            "container \"c\" in pod \"p\" is not available"
        );
        let restarted = with(json!({"name": "c", "state": {"running": {}},
            "lastState": {"terminated": {"containerID": "knet://1", "exitCode": 1}}}));
        assert!(check_log_status(&restarted, "p", "c", true).is_ok());
        assert!(check_log_status(&restarted, "p", "c", false).is_ok());
        assert_eq!(check_running(&waiting, "c").unwrap_err(), "container not found (\"c\")");
        assert!(check_running(&restarted, "c").is_ok());
        assert!(check_running(&json!({}), "c").is_ok());
    }

    #[test]
    fn kubelet_endpoint_by_preferred_address_type() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "worker-1"}, {"type": "InternalIP", "address": "192.168.56.11"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10260}}}});
        let pref = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kubelet_endpoint(&node, &pref(&["InternalIP", "Hostname"])).unwrap(),
            ("192.168.56.11".to_string(), 10260)
        );
        assert_eq!(kubelet_endpoint(&node, &pref(&["Hostname"])).unwrap().0, "worker-1");
        assert!(
            message(kubelet_endpoint(&node, &pref(&["ExternalIP"])).unwrap_err()).starts_with("no preferred addresses")
        );
        assert_eq!(
            kubelet_endpoint(
                &json!({"status": {"addresses": [{"type": "InternalIP", "address": "1.2.3.4"}]}}),
                &pref(&["InternalIP"])
            )
            .unwrap()
            .1,
            10250
        );
    }

    #[test]
    fn kubelet_queries() {
        let q = |s: &[(&str, &str)]| s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(
            stream_query(
                Connect::Exec,
                &q(&[
                    ("command", "sh"),
                    ("command", "-c"),
                    ("command", "echo a&b"),
                    ("stdin", "true"),
                    ("stdout", "true"),
                    ("tty", "false")
                ])
            ),
            "input=1&output=1&command=sh&command=-c&command=echo%20a%26b"
        );
        assert_eq!(stream_query(Connect::PortForward, &q(&[("ports", "80"), ("ports", "81")])), "port=80%2C81");
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        assert_eq!(
            log_query(pods, "p", &q(&[("follow", "true"), ("tailLines", "5"), ("timestamps", "true")])).unwrap(),
            (false, "follow=true&timestamps=true&tailLines=5".to_string())
        );
        let e = log_query(pods, "p", &q(&[("tailLines", "-1")])).unwrap_err();
        assert_eq!(
            message(e),
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        assert!(log_query(pods, "p", &q(&[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")])).is_err());
        assert_eq!(kubelet_path(Connect::Log, "ns", "p", "c"), "/containerLogs/ns/p/c");
    }
}
