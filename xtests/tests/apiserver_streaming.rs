//! `kubectl exec`, `logs`, `attach` and `port-forward` with the real kubectl v1.34 against a real knet-apiserver
//! and an in-test kubelet API (`knet_node_agent::server`) whose runtime runs "containers" as processes of the
//! test itself: exec targets the test process's own namespaces, logs are CRI files the test writes, attach
//! starts a process, and port-forward connects inside the test's own network namespace.
//!
//! Exec joins namespaces with setns, which needs root: those tests fail in CI without it and are skipped with
//! a message elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use knet_node_agent::server::config::ServerFlags;
use knet_node_agent::server::runtime::{
    Attachment, ContainerRef, ExecTarget, LogFiles, RuntimeError, StreamingRuntime,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use xtests::kubectl::kubectl_binary;
use xtests::ApiServer;

const NODE: &str = "stream-node";

/// The runtime of the in-test kubelet: containers are processes of this test.
struct TestRuntime {
    logs: PathBuf,
    running: AtomicBool,
}

#[async_trait::async_trait]
impl StreamingRuntime for TestRuntime {
    async fn exec_target(&self, c: &ContainerRef) -> Result<ExecTarget, RuntimeError> {
        if c.pod != "web" {
            return Err(RuntimeError::NotFound(format!("pod {:?} not found", c.pod)));
        }
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.push(("KNET_CONTAINER".into(), c.container.clone()));
        Ok(ExecTarget { pid: std::process::id(), env, working_dir: Some("/tmp".into()) })
    }

    async fn attach(&self, c: &ContainerRef) -> Result<Attachment, RuntimeError> {
        // The "container" is a process that greets, echoes one line and exits.
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "echo ready; read line; echo \"got:$line\"; echo bye >&2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let (out_tx, out_rx) = broadcast::channel(64);
        let (err_tx, err_rx) = broadcast::channel(64);
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(8);
        let (exit_tx, exit_rx) = watch::channel(None);
        let mut stdin = child.stdin.take().ok_or_else(|| RuntimeError::Internal("no stdin".into()))?;
        tokio::spawn(async move {
            while let Some(data) = in_rx.recv().await {
                if stdin.write_all(&data).await.is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().ok_or_else(|| RuntimeError::Internal("no stdout".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| RuntimeError::Internal("no stderr".into()))?;
        let pump = |r: Box<dyn tokio::io::AsyncRead + Send + Unpin>, tx: broadcast::Sender<Bytes>| {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(r).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(Bytes::from(format!("{l}\n")));
                }
            })
        };
        let a = pump(Box::new(stdout), out_tx);
        let b = pump(Box::new(stderr), err_tx);
        tokio::spawn(async move {
            let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1);
            let _ = a.await;
            let _ = b.await;
            let _ = exit_tx.send(Some(status));
        });
        let _ = c;
        Ok(Attachment {
            tty: false,
            stdin: Some(in_tx),
            stdout: out_rx,
            stderr: Some(err_rx),
            resize: None,
            exited: exit_rx,
        })
    }

    async fn log_files(&self, c: &ContainerRef) -> Result<LogFiles, RuntimeError> {
        let previous = self.logs.join(format!("{}-previous.log", c.container));
        Ok(LogFiles {
            current: self.logs.join(format!("{}.log", c.container)),
            previous: previous.exists().then_some(previous),
            running: self.running.load(Ordering::SeqCst),
        })
    }

    async fn pod_netns(&self, _ns: &str, pod: &str, _uid: Option<&str>) -> Result<PathBuf, RuntimeError> {
        if pod != "web" {
            return Err(RuntimeError::NotFound(format!("pod {pod:?} not found")));
        }
        Ok(PathBuf::from("/proc/self/ns/net"))
    }
}

/// An API server, a kubelet API on 127.0.0.1 for Node `stream-node`, and pods on it.
struct Cluster {
    api: ApiServer,
    runtime: Arc<TestRuntime>,
    kubelet_port: u16,
    kubelet_root: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

fn cri(ts: jiff::Timestamp, stream: &str, text: &str) -> String {
    format!("{ts} {stream} F {text}\n")
}

async fn cluster() -> Result<Cluster> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let ca_pem = api.ca_pem()?;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).context("parsing the cluster CA")?;

    let logs = tempfile::tempdir()?;
    let now = jiff::Timestamp::now();
    let two_hours_ago = now - jiff::SignedDuration::from_hours(2);
    let log = [
        cri(two_hours_ago, "stdout", "old line"),
        cri(now, "stdout", "hello from app"),
        cri(now, "stderr", "a warning"),
        cri(now, "stdout", "last line"),
    ]
    .concat();
    std::fs::write(logs.path().join("app.log"), log)?;
    std::fs::write(logs.path().join("app-previous.log"), cri(two_hours_ago, "stdout", "before the restart"))?;
    let runtime = Arc::new(TestRuntime { logs: logs.path().to_path_buf(), running: AtomicBool::new(true) });

    let kubelet_root = tempfile::tempdir()?;
    let flags = ServerFlags { address: "127.0.0.1".parse()?, port: 0, ..ServerFlags::default() };
    let tls = knet_node_agent::server::tls::server_config(&flags, kubelet_root.path(), &[ca.to_vec()])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let kubelet_port = listener.local_addr()?.port();
    let rt: Arc<dyn StreamingRuntime> = runtime.clone();
    tokio::spawn(knet_node_agent::server::serve(listener, Arc::new(tls), rt));

    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": NODE}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    let status = json!({"status": {
        "addresses": [{"type": "Hostname", "address": NODE}, {"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}]}});
    nodes.patch_status(NODE, &PatchParams::default(), &Patch::Merge(&status)).await?;

    // knet-apiserver makes the namespace's default ServiceAccount itself (no controllers run here).
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.get("default").await.context("the default ServiceAccount")?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = |name: &str, restarts: i64| {
        json!({"name": name, "ready": true, "started": true, "restartCount": restarts, "image": "busybox",
               "imageID": "", "containerID": format!("knet://{name}"),
               "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}},
               "lastState": if restarts > 0 { json!({"terminated": {"exitCode": 1, "reason": "Error",
                    "containerID": format!("knet://{name}-0"), "startedAt": "2024-05-01T09:00:00Z",
                    "finishedAt": "2024-05-01T09:59:00Z"}}) } else { json!({}) }})
    };
    let pod_specs = [
        ("web", Some(NODE), json!({"phase": "Running", "containerStatuses": [running("app", 1), running("side", 0)]})),
        (
            "pending",
            Some(NODE),
            json!({"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "image": "busybox", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        ),
        ("unbound", None, json!({"phase": "Pending"})),
    ];
    for (name, node, status) in pod_specs {
        let containers = if name == "web" {
            json!([{"name": "app", "image": "busybox"}, {"name": "side", "image": "busybox"}])
        } else {
            json!([{"name": "app", "image": "busybox"}])
        };
        let mut spec = json!({"containers": containers});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))?;
        pods.create(&PostParams::default(), &pod).await?;
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await?;
    }
    Ok(Cluster { api, runtime, kubelet_port, kubelet_root, _logs: logs })
}

impl Cluster {
    /// Runs kubectl on a blocking thread.
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<xtests::KubectlOutput> {
        let k = self.api.kubectl().with_timeout(Duration::from_secs(30));
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            match stdin {
                Some(s) => k.run_with_stdin(&refs, &s),
                None => k.run(&refs),
            }
        })
        .await?
    }

    /// A kubectl command line to run by hand (pty, long-running).
    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(kubectl_binary()?);
        cmd.arg("--kubeconfig")
            .arg(self.api.kubeconfig_path())
            .args(args)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", self.api.data_dir().join("kubectl-cache"))
            .env("KUBERC", "off");
        Ok(cmd)
    }
}

/// Exec joins namespaces: root only (a failure in CI, a skip elsewhere).
fn can_exec() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "the exec tests need root in CI");
    eprintln!("skipping: exec into namespaces needs root");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_streams_stdin_and_exit_codes() -> Result<()> {
    if !can_exec() {
        return Ok(());
    }
    let c = cluster().await?;
    let out = c
        .kubectl(&["exec", "web", "-c", "app", "--", "sh", "-c", "echo out $KNET_CONTAINER; pwd; echo err >&2"], None)
        .await?
        .ok()?;
    assert_eq!(out.stdout, "out app\n/tmp\n");
    assert!(out.stderr.contains("err"), "{}", out.stderr);

    let out = c.kubectl(&["exec", "web", "-c", "app", "--", "sh", "-c", "exit 3"], None).await?;
    assert_eq!(out.status.code(), Some(3), "kubectl exits with the command's code: {out:?}");
    assert!(out.stderr.contains("command terminated with exit code 3"), "{}", out.stderr);

    let out =
        c.kubectl(&["exec", "-i", "web", "-c", "app", "--", "tr", "a-z", "A-Z"], Some("shout\nagain\n")).await?.ok()?;
    assert_eq!(out.stdout, "SHOUT\nAGAIN\n");

    // Output larger than one frame, in order.
    let out = c.kubectl(&["exec", "web", "-c", "side", "--", "seq", "1", "20000"], None).await?.ok()?;
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert!(out.stdout == expected, "seq output differs ({} bytes)", out.stdout.len());

    let out = c.kubectl(&["exec", "web", "-c", "app", "--", "/no/such/program"], None).await?;
    assert!(!out.success());
    assert!(out.stderr.contains("executable file not found"), "{}", out.stderr);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_with_a_terminal() -> Result<()> {
    if !can_exec() {
        return Ok(());
    }
    let c = cluster().await?;
    let pty =
        nix::pty::openpty(Some(&nix::pty::Winsize { ws_row: 33, ws_col: 111, ws_xpixel: 0, ws_ypixel: 0 }), None)?;
    let slave: OwnedFd = pty.slave;
    let mut cmd = c.command(&[
        "exec",
        "-it",
        "web",
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "test -t 0 && echo IS-A-TTY; sleep 1; stty size; read x; echo typed:$x",
    ])?;
    cmd.stdin(Stdio::from(slave.try_clone()?)).stdout(Stdio::from(slave.try_clone()?)).stderr(Stdio::from(slave));
    // SAFETY: setsid/ioctl in the forked child before exec: the pty becomes kubectl's controlling terminal.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::libc::setsid();
            nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting kubectl exec -it")?;
    let mut master = std::fs::File::from(pty.master);
    let reader_fd = master.try_clone()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = reader_fd;
        let mut buf = [0u8; 4096];
        let mut all = String::new();
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
    });
    let wait_for = |what: &str| -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
                last = s;
                if last.contains(what) {
                    return Ok(last);
                }
            }
        }
        anyhow::bail!("no {what:?} on the terminal; saw {last:?}")
    };
    wait_for("IS-A-TTY")?;
    let seen = wait_for("33 111")?;
    assert!(seen.contains("33 111"), "the remote terminal has kubectl's size: {seen:?}");
    master.write_all(b"abc\r")?;
    wait_for("typed:abc")?;
    let status = child.wait()?;
    assert!(status.success(), "{status}");
    let _ = master.as_raw_fd();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_with_every_option() -> Result<()> {
    let c = cluster().await?;
    let logs = |args: &'static [&'static str]| {
        let mut a = vec!["logs", "web", "-c", "app"];
        a.extend_from_slice(args);
        a
    };
    let out = c.kubectl(&logs(&[]), None).await?.ok()?;
    assert_eq!(out.stdout, "old line\nhello from app\na warning\nlast line\n");
    assert_eq!(c.kubectl(&logs(&["--tail=2"]), None).await?.ok()?.stdout, "a warning\nlast line\n");
    assert_eq!(c.kubectl(&logs(&["--since=1h"]), None).await?.ok()?.stdout, "hello from app\na warning\nlast line\n");
    assert_eq!(c.kubectl(&logs(&["--limit-bytes=6"]), None).await?.ok()?.stdout, "old li");
    assert_eq!(c.kubectl(&logs(&["--previous"]), None).await?.ok()?.stdout, "before the restart\n");
    let ts = c.kubectl(&logs(&["--timestamps", "--tail=1"]), None).await?.ok()?.stdout;
    let (stamp, text) = ts.trim_end().split_once(' ').context("timestamp and text")?;
    assert!(stamp.parse::<jiff::Timestamp>().is_ok() && text == "last line", "{ts:?}");

    // The other container has no previous instance: the kubelet's message.
    let out = c.kubectl(&["logs", "web", "-c", "side", "--previous"], None).await?;
    assert!(out.stderr.contains("previous terminated container \"side\" in pod \"web\" not found"), "{}", out.stderr);

    // Follow: new lines arrive until the container stops.
    let mut follow = c.command(&["logs", "-f", "web", "-c", "app"])?;
    follow.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = follow.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |timeout: u64| rx.recv_timeout(Duration::from_secs(timeout));
    assert_eq!(next(10)?, "old line");
    for _ in 0..3 {
        next(5)?;
    }
    let path = c.runtime.logs.join("app.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
    f.write_all(cri(jiff::Timestamp::now(), "stdout", "followed line").as_bytes())?;
    assert_eq!(next(10)?, "followed line");
    c.runtime.running.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            assert!(status.success(), "{status}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "kubectl logs -f did not end when the container stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_container_and_pods_not_running() -> Result<()> {
    let c = cluster().await?;
    let out = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/web/log"], None).await?;
    assert!(
        out.stderr.contains("a container name must be specified for pod web, choose one of: [app side]"),
        "{}",
        out.stderr
    );
    let out = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/web/log?container=nope"], None).await?;
    assert!(out.stderr.contains("container nope is not valid for pod web"), "{}", out.stderr);
    let out = c.kubectl(&["logs", "pending"], None).await?;
    assert!(
        out.stderr.contains("container \"app\" in pod \"pending\" is waiting to start: ContainerCreating"),
        "{}",
        out.stderr
    );
    let out = c.kubectl(&["exec", "pending", "--", "true"], None).await?;
    assert!(out.stderr.contains("container not found (\"app\")"), "{}", out.stderr);
    let out = c.kubectl(&["exec", "unbound", "--", "true"], None).await?;
    assert!(out.stderr.contains("pod unbound does not have a host assigned"), "{}", out.stderr);
    // An unscheduled pod has no logs yet.
    assert_eq!(c.kubectl(&["logs", "unbound"], None).await?.ok()?.stdout, "");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_to_the_containers_stdio() -> Result<()> {
    let c = cluster().await?;
    let out = c.kubectl(&["attach", "-i", "web", "-c", "app"], Some("hello\n")).await?.ok()?;
    assert!(out.stdout.contains("got:hello"), "{out:?}");
    assert!(out.stderr.contains("bye"), "{out:?}");
    Ok(())
}

/// A TCP server in the "pod": greets, then echoes upper-cased lines.
fn pod_server() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let _ = conn.write_all(b"hello from the pod\n");
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    let _ = conn.write_all(line.to_uppercase().as_bytes());
                    line.clear();
                }
            });
        }
    });
    Ok(port)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn talk(local: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", local)) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    assert_eq!(line, "hello from the pod\n");
    for word in ["one", "two"] {
        conn.write_all(format!("{word}\n").as_bytes())?;
        line.clear();
        r.read_line(&mut line)?;
        assert_eq!(line, format!("{}\n", word.to_uppercase()));
    }
    Ok(())
}

async fn port_forward(c: &Cluster, websockets: bool) -> Result<()> {
    let remote = pod_server()?;
    let local = free_port()?;
    let mut cmd = c.command(&["port-forward", "pod/web", &format!("{local}:{remote}")])?;
    cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", if websockets { "true" } else { "false" });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().context("kubectl port-forward printed nothing")??;
    assert_eq!(first, format!("Forwarding from 127.0.0.1:{local} -> {remote}"));
    let result = tokio::task::spawn_blocking(move || -> Result<()> {
        // Two connections in a row, and two at once.
        talk(local)?;
        let a = std::thread::spawn(move || talk(local));
        talk(local)?;
        a.join().map_err(|_| anyhow::anyhow!("connection thread panicked"))??;
        Ok(())
    })
    .await?;
    let _ = child.kill();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = child.wait();
        let _ = e.read_to_string(&mut err);
    }
    result.with_context(|| format!("port-forward (websockets: {websockets}); kubectl's stderr: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn port_forward_websocket_tunnel_and_spdy() -> Result<()> {
    let c = cluster().await?;
    port_forward(&c, true).await?;
    port_forward(&c, false).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubelet_api_refuses_clients_without_the_kubelet_client_certificate() -> Result<()> {
    let c = cluster().await?;
    let url = format!("https://127.0.0.1:{}/healthz", c.kubelet_port);
    let ca = reqwest::Certificate::from_pem(
        &std::fs::read(c.kubelet_root.path().join("pki").join("kubelet-ca.crt")).context("kubelet CA")?,
    )?;
    let anonymous = reqwest::Client::builder().use_rustls_tls().add_root_certificate(ca.clone()).build()?;
    assert!(anonymous.get(&url).send().await.is_err(), "a client without a certificate must be refused");

    // A certificate from another CA is refused too.
    let other = tempfile::tempdir()?;
    let foreign =
        knet_apiserver::pki::load_or_create_client_cert(other.path(), "c.crt", "c.key", "intruder", "system:masters")?;
    let foreign_client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca.clone())
        .identity(reqwest::Identity::from_pem(format!("{}{}", foreign.0, foreign.1).as_bytes())?)
        .build()?;
    assert!(foreign_client.get(&url).send().await.is_err(), "a foreign client certificate must be refused");

    let data = c.api.data_dir();
    let cert = std::fs::read_to_string(data.join("apiserver-kubelet-client.crt"))?;
    let key = std::fs::read_to_string(data.join("apiserver-kubelet-client.key"))?;
    let apiserver = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes())?)
        .build()?;
    let resp = apiserver.get(&url).send().await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await?, "ok");
    let _: &Path = data;
    Ok(())
}

/// kubectl pings every 5 s and gives up on a WebSocket that has not answered for 61 s: a long command must
/// outlive that (the pongs go back through the API server's proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_outlives_kubectls_heartbeat_deadline() -> Result<()> {
    if !can_exec() {
        return Ok(());
    }
    let c = cluster().await?;
    let k = c.api.kubectl().with_timeout(Duration::from_secs(120));
    let out = tokio::task::spawn_blocking(move || {
        k.run(&["exec", "web", "-c", "app", "--", "sh", "-c", "sleep 66; echo still-here"])
    })
    .await??
    .ok()?;
    assert_eq!(out.stdout, "still-here\n");
    Ok(())
}
