//! Liveness, readiness and startup probes (httpGet, tcpSocket, exec) with kubelet's timing fields
//! (`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `successThreshold`, `failureThreshold`) and its
//! Unhealthy events; each probe of a running container is a task that reports result changes to the pod's
//! worker.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;

use super::enter::command_in_pod;
use super::events::{EventType, Recorder};
use crate::server::runtime::ExecTarget;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// A probe result change for the worker: container, instance ID, kind, success.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub container: String,
    pub instance: String,
    pub kind: ProbeKind,
    pub ok: bool,
}

/// Where a probe goes.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub pod_ip: Option<IpAddr>,
    pub exec: ExecTarget,
}

/// `"user-agent"` kubelet sends.
pub const USER_AGENT: &str = "kube-probe/1.34";

fn port_of(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => {
            if let Ok(p) = name.parse::<u16>() {
                return Ok(p);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port {name:?} in container {:?}", container.name))
        }
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn dial_error(host: &str, port: u16, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {}: {what}", host_port(host, port))
}

/// Runs `probe` once: (success, output for the event).
pub async fn run_once(probe: &Probe, container: &Container, target: &ProbeTarget, timeout: Duration) -> (bool, String) {
    let pod_ip = target.pod_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "127.0.0.1".into());
    if let Some(h) = &probe.http_get {
        let host = h.host.clone().filter(|s| !s.is_empty()).unwrap_or(pod_ip);
        let port = match port_of(&h.port, container) {
            Ok(p) => p,
            Err(e) => return (false, e),
        };
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') { path } else { format!("/{path}") };
        let url = format!("{scheme}://{}{path}", host_port(&host, port));
        let client = match reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => return (false, e.to_string()),
        };
        let mut req = client.get(&url).header("User-Agent", USER_AGENT).header("Accept", "*/*");
        for hdr in h.http_headers.iter().flatten() {
            req = req.header(hdr.name.as_str(), hdr.value.as_str());
        }
        return match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if (200..400).contains(&code) {
                    (true, String::new())
                } else {
                    (false, format!("HTTP probe failed with statuscode: {code}"))
                }
            }
            Err(e) if e.is_timeout() => (
                false,
                format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
            ),
            Err(e) => {
                let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
                let mut io = None;
                while let Some(s) = source {
                    if let Some(err) = s.downcast_ref::<std::io::Error>() {
                        io = Some(dial_error(&host, port, err));
                        break;
                    }
                    source = s.source();
                }
                (false, format!("Get {url:?}: {}", io.unwrap_or_else(|| e.to_string())))
            }
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let host = t.host.clone().filter(|s| !s.is_empty()).unwrap_or(pod_ip);
        let port = match port_of(&t.port, container) {
            Ok(p) => p,
            Err(e) => return (false, e),
        };
        let addr: Result<IpAddr, _> = host.parse();
        let Ok(ip) = addr else { return (false, format!("dial tcp {host}: invalid address")) };
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(SocketAddr::new(ip, port))).await {
            Ok(Ok(_)) => (true, String::new()),
            Ok(Err(e)) => (false, dial_error(&host, port, &e)),
            Err(_) => (false, format!("dial tcp {}: i/o timeout", host_port(&host, port))),
        };
    }
    if let Some(e) = &probe.exec {
        let argv = e.command.clone().unwrap_or_default();
        let mut cmd = match command_in_pod(&target.exec, &argv) {
            Ok(c) => c,
            Err(err) => return (false, err.to_string()),
        };
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(err) => return (false, format!("failed to exec in container: {err}")),
        };
        return match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                (out.status.success(), text)
            }
            Ok(Err(err)) => (false, err.to_string()),
            Err(_) => (false, format!("command {:?} timed out", argv.join(" "))),
        };
    }
    if probe.grpc.is_some() {
        return (false, "gRPC probes are not supported by knet".into());
    }
    (false, "the probe has no handler".into())
}

/// Runs one probe of a container instance until aborted, reporting result changes on `tx`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    kind: ProbeKind,
    probe: Probe,
    container: Container,
    instance: String,
    target: ProbeTarget,
    pod: Pod,
    field_path: String,
    events: Recorder,
    tx: mpsc::Sender<ProbeResult>,
) {
    let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
    let initial = secs(probe.initial_delay_seconds, 0);
    let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(initial).await;
    let mut last: Option<bool> = None;
    let (mut successes, mut failures) = (0, 0);
    loop {
        let (ok, output) = run_once(&probe, &container, &target, timeout).await;
        if ok {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
            let msg = format!("{} probe failed: {}", kind.name(), output.trim_end());
            events.pod(&pod, Some(field_path.clone()), EventType::Warning, "Unhealthy", msg);
        }
        let result = if ok && successes >= success_threshold {
            Some(true)
        } else if !ok && failures >= failure_threshold {
            Some(false)
        } else {
            None
        };
        if let Some(r) = result {
            if last != Some(r) {
                last = Some(r);
                let msg = ProbeResult { container: container.name.clone(), instance: instance.clone(), kind, ok: r };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            // A startup probe's job ends with its first success.
            if kind == ProbeKind::Startup && r {
                return;
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Container {
        serde_json::from_value(json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]})).unwrap()
    }

    fn target() -> ProbeTarget {
        ProbeTarget {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            exec: ExecTarget { pid: std::process::id(), env: vec![], working_dir: None },
        }
    }

    #[test]
    fn named_ports() {
        assert_eq!(port_of(&IntOrString::String("http".into()), &container()), Ok(8080));
        assert_eq!(port_of(&IntOrString::Int(80), &container()), Ok(80));
        assert!(port_of(&IntOrString::String("nope".into()), &container()).unwrap_err().contains("nope"));
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let r = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..r]).to_string();
                let status = if req.contains("/bad") { "500 Internal Server Error" } else { "200 OK" };
                if !req.is_empty() {
                    assert!(req.contains("kube-probe/1.34"), "{req}");
                }
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let probe =
            |path: &str| -> Probe { serde_json::from_value(json!({"httpGet": {"path": path, "port": port}})).unwrap() };
        let t = Duration::from_secs(2);
        assert_eq!(run_once(&probe("/ok"), &container(), &target(), t).await, (true, String::new()));
        let (ok, out) = run_once(&probe("/bad"), &container(), &target(), t).await;
        assert!(!ok);
        assert_eq!(out, "HTTP probe failed with statuscode: 500");
        let tcp: Probe = serde_json::from_value(json!({"tcpSocket": {"port": port}})).unwrap();
        assert!(run_once(&tcp, &container(), &target(), t).await.0);
        // A closed port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tcp: Probe = serde_json::from_value(json!({"tcpSocket": {"port": closed}})).unwrap();
        let (ok, out) = run_once(&tcp, &container(), &target(), t).await;
        assert!(!ok);
        assert_eq!(out, format!("dial tcp 127.0.0.1:{closed}: connect: connection refused"));
        let http: Probe = serde_json::from_value(json!({"httpGet": {"path": "/", "port": closed}})).unwrap();
        let (_, out) = run_once(&http, &container(), &target(), t).await;
        assert!(out.ends_with("connect: connection refused"), "{out}");
    }
}
