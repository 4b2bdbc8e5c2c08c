//! A single-node cluster for one test: a fresh network namespace standing for the node (a dummy interface with
//! the node IP, loopback), a `knet-apiserver` and `knet-controllers` (in the machine's namespace, reached from
//! the node through a loopback proxy the harness runs), and one `knet-node-agent` inside the node's namespace
//! with its own root dir and CNI config dir. Pods get real sandboxes; all their traffic stays in the test's
//! namespaces. Everything is removed on drop (also when the test panics), and leftovers of crashed runs are
//! swept at start.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use knet_lab::netns::Netns;
use kube::Api;

use crate::apiserver::{bin_dir, knet_binary, ApiServer};
use crate::controllers::Controllers;
use crate::kubectl::Kubectl;
use crate::process;

/// Prefix of the harness's network namespaces: `knt-<test pid>-<random>`.
const NETNS_PREFIX: &str = "knt-";
/// Prefix of the harness's directories.
const DIR_PREFIX: &str = "knet-node-";
/// The node's IP in its namespace.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 11);
/// The node's name.
pub const NODE_NAME: &str = "worker-1";
const LOG_TAIL_LINES: usize = 120;

/// Which CNI plugin the agent's written configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// Debian's reference bridge + host-local (containernetworking-plugins in /usr/lib/cni).
    Bridge,
    /// knet's own plugin.
    KnetCni,
}

impl Plugin {
    fn flag(self) -> &'static str {
        match self {
            Plugin::Bridge => "bridge",
            Plugin::KnetCni => "knet-cni",
        }
    }

    /// The plugin the tests use: `KNET_TEST_CNI=knet-cni|bridge`, default knet-cni (`bridge`: Debian's plugins).
    pub fn from_env() -> Plugin {
        match std::env::var("KNET_TEST_CNI").as_deref() {
            Ok("bridge") => Plugin::Bridge,
            _ => Plugin::KnetCni,
        }
    }
}

/// Fails (in CI) or returns false with a printed reason when the test cannot run here (not root).
pub fn root_or_skip() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs root (CI=true)");
    }
    eprintln!("skipping: this test needs root");
    false
}

/// A loopback TCP proxy: a listener inside the node's namespace forwarding to the same port on the machine's
/// loopback (where the API server listens), on a thread with its own runtime so blocking tests cannot stall it.
struct LoopbackProxy {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn listener_in(netns: &Netns, addr: SocketAddr) -> Result<std::net::TcpListener> {
    let path = netns.path();
    std::thread::spawn(move || -> Result<std::net::TcpListener> {
        let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).context("entering the node's namespace")?;
        let l = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr} in the node"))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the listener thread panicked"))?
}

impl LoopbackProxy {
    fn start(netns: &Netns, port: u16) -> Result<LoopbackProxy> {
        let listener = listener_in(netns, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new().name("node-host-proxy".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => return,
                        conn = listener.accept() => {
                            let Ok((mut inbound, _)) = conn else { continue };
                            tokio::spawn(async move {
                                if let Ok(mut out) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
                                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                                }
                            });
                        }
                    }
                }
            });
        })?;
        Ok(LoopbackProxy { stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Options of a [`NodeHost`].
#[derive(Debug, Clone)]
pub struct NodeHostOptions {
    pub plugin: Plugin,
    /// Extra `knet-node-agent` arguments.
    pub agent_args: Vec<String>,
}

impl Default for NodeHostOptions {
    fn default() -> Self {
        NodeHostOptions { plugin: Plugin::from_env(), agent_args: Vec::new() }
    }
}

/// The single-node cluster.
pub struct NodeHost {
    // Dropped last to first: the agent and its pods go before the servers.
    agent: Option<Child>,
    proxy: Option<LoopbackProxy>,
    netns: Netns,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    options: NodeHostOptions,
    pub controllers: Controllers,
    pub api: ApiServer,
}

fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

impl NodeHost {
    /// Starts everything with default options and waits until the Node is Ready.
    pub async fn start() -> Result<NodeHost> {
        Self::start_with(NodeHostOptions::default()).await
    }

    pub async fn start_with(options: NodeHostOptions) -> Result<NodeHost> {
        sweep_leftovers();
        let api = ApiServer::start().await?;
        let controllers = Controllers::start(&api).await?;
        let dir = tempfile::Builder::new().prefix(DIR_PREFIX).tempdir().context("making the node's directory")?;
        let dir_path = dir.path().to_path_buf();
        let suffix: u32 = rand::random::<u32>() % 1_000_000;
        let netns = Netns::create(format!("{NETNS_PREFIX}{}-{suffix}", std::process::id()))?;
        let mut host =
            NodeHost { agent: None, proxy: None, netns, dir: Some(dir), dir_path, options, controllers, api };
        // The node's "uplink": a veth pair inside the namespace (no dummy driver needed) holding the node IP.
        host.netns.ip(&["link", "add", "knode0", "type", "veth", "peer", "name", "knode0p"])?;
        host.netns.ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", "knode0"])?;
        host.netns.ip(&["link", "set", "knode0p", "up"])?;
        host.netns.ip(&["link", "set", "knode0", "up"])?;
        run(host.netns.command("sysctl")?.args(["-qw", "net.ipv4.ip_forward=1"]), "sysctl ip_forward")?;
        host.proxy = Some(LoopbackProxy::start(&host.netns, host.api.port())?);
        std::fs::write(host.dir_path.join("resolv.conf"), "nameserver 192.168.56.200\nsearch lab.example\n")?;
        host.start_agent()?;
        host.wait_node_ready(Duration::from_secs(60)).await?;
        Ok(host)
    }

    /// The node's network namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The agent's root dir.
    pub fn root_dir(&self) -> PathBuf {
        self.dir_path.join("root")
    }

    /// The agent's CNI config dir.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir_path.join("net.d")
    }

    /// host-local's IPAM dir of the node's network.
    pub fn ipam_dir(&self) -> PathBuf {
        self.root_dir().join("cni/networks/knet")
    }

    fn log_path(&self) -> PathBuf {
        self.dir_path.join("knet-node-agent.log")
    }

    /// Everything the agent printed (all starts).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn kubectl(&self) -> Kubectl {
        self.api.kubectl()
    }

    pub async fn client(&self) -> Result<kube::Client> {
        self.api.client().await
    }

    fn agent_args(&self) -> Result<Vec<String>> {
        let bins = bin_dir()?;
        let mut args = vec![
            "--kubeconfig".to_string(),
            self.api.kubeconfig_path().display().to_string(),
            "--node-name".into(),
            NODE_NAME.into(),
            "--node-ip".into(),
            NODE_IP.to_string(),
            "--root-dir".into(),
            self.root_dir().display().to_string(),
            "--cni-conf-dir".into(),
            self.cni_conf_dir().display().to_string(),
            "--cni-bin-dir".into(),
            format!("{},/usr/lib/cni", bins.display()),
            "--cni-plugin".into(),
            self.options.plugin.flag().into(),
            "--resolv-conf".into(),
            self.dir_path.join("resolv.conf").display().to_string(),
            "--healthz-bind-address".into(),
            "127.0.0.1:10248".into(),
            "--node-status-update-frequency".into(),
            "2s".into(),
            "--sync-frequency".into(),
            "5s".into(),
        ];
        let agnhost = bins.join("agnhost");
        if agnhost.is_file() {
            args.push("--agnhost-path".into());
            args.push(agnhost.display().to_string());
        }
        args.extend(self.options.agent_args.iter().cloned());
        Ok(args)
    }

    /// Starts the agent (again) inside the node's namespace.
    pub fn start_agent(&mut self) -> Result<()> {
        let bin = knet_binary("knet-node-agent")?;
        let args = self.agent_args()?;
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path())?;
        writeln!(log, "=== xtests: {} {}", bin.display(), args.join(" "))?;
        let stderr = log.try_clone()?;
        let mut cmd = self.netns.command(&bin)?;
        cmd.args(&args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,knet_node_agent=debug".into()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        self.agent = Some(process::spawn_long_lived(cmd).context("starting knet-node-agent")?);
        Ok(())
    }

    /// Kills the agent with SIGKILL (its pods keep running).
    pub fn kill9_agent(&mut self) {
        process::kill9(&mut self.agent);
    }

    /// Stops the agent with SIGTERM.
    pub async fn stop_agent(&mut self) -> Result<()> {
        process::stop(&mut self.agent, "knet-node-agent", Duration::from_secs(10)).await
    }

    /// Waits until the Node is Ready with a podCIDR; returns it.
    pub async fn wait_node_ready(&mut self, timeout: Duration) -> Result<Node> {
        let nodes: Api<Node> = Api::all(self.client().await?);
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(c) = self.agent.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.agent = None;
                    bail!(
                        "knet-node-agent exited ({status}); its log:\n{}",
                        process::tail(&self.agent_log(), LOG_TAIL_LINES)
                    );
                }
            }
            match nodes.get_opt(NODE_NAME).await {
                Ok(Some(n)) => {
                    let ready = n
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()));
                    let cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
                    if ready.as_ref().map(|r| r.0.as_str()) == Some("True") && cidr.is_some() {
                        return Ok(n);
                    }
                    last = format!("ready={ready:?} podCIDR={cidr:?}");
                }
                Ok(None) => last = "node not registered".into(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "node {NODE_NAME} not Ready after {timeout:?} ({last}); agent log:\n{}",
                    process::tail(&self.agent_log(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kubectl apply -f -`.
    pub fn apply(&self, yaml: &str) -> Result<()> {
        self.kubectl().apply_yaml(yaml)?.ok()?;
        Ok(())
    }

    /// The pod `namespace/name`.
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client().await?, namespace);
        pods.get(name).await.with_context(|| format!("reading pod {namespace}/{name}"))
    }

    /// Waits until `check` holds for the pod; fails with the pod's status and the agent's log tail.
    pub async fn wait_pod(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Pod) -> bool,
    ) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client().await?, namespace);
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match pods.get_opt(name).await {
                Ok(Some(p)) => {
                    if check(&p) {
                        return Ok(p);
                    }
                    last = serde_json::to_string(&p.status).unwrap_or_default();
                }
                Ok(None) => last = "pod not found".into(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "pod {namespace}/{name}: {what} not reached after {timeout:?}; status: {last}\nagent log:\n{}",
                    process::tail(&self.agent_log(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the pod runs with all containers ready.
    pub async fn wait_running(&self, namespace: &str, name: &str) -> Result<Pod> {
        self.wait_pod(namespace, name, Duration::from_secs(60), "Running and Ready", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.phase.as_deref()) == Some("Running")
                && s.and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .await
    }

    /// Waits until the pod is gone from the API.
    pub async fn wait_gone(&self, namespace: &str, name: &str, timeout: Duration) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client().await?, namespace);
        let deadline = Instant::now() + timeout;
        while pods.get_opt(name).await?.is_some() {
            if Instant::now() > deadline {
                bail!(
                    "pod {namespace}/{name} still exists after {timeout:?}; agent log:\n{}",
                    process::tail(&self.agent_log(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The sandbox record of a pod (holder pid, IPs), read from the agent's root dir.
    pub fn sandbox_record(&self, uid: &str) -> Result<serde_json::Value> {
        let path = self.root_dir().join("pods").join(uid).join("sandbox.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The pid of a pod's sandbox holder.
    pub async fn holder_pid(&self, namespace: &str, name: &str) -> Result<u32> {
        let uid = self.pod(namespace, name).await?.metadata.uid.context("pod without uid")?;
        let rec = self.sandbox_record(&uid)?;
        rec["holder"]["pid"].as_u64().map(|p| p as u32).context("no holder pid in the sandbox record")
    }

    /// Runs `argv` inside the pod's namespaces (network, mount, UTS), like `kubectl exec` will.
    pub async fn exec(&self, namespace: &str, name: &str, argv: &[&str]) -> Result<Output> {
        let pid = self.holder_pid(namespace, name).await?;
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "-m", "-u", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", "/.knet/busybox:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .output()
            .context("running nsenter")?;
        Ok(out)
    }

    /// `exec`'s stdout; fails on a non-zero exit.
    pub async fn exec_stdout(&self, namespace: &str, name: &str, argv: &[&str]) -> Result<String> {
        let out = self.exec(namespace, name, argv).await?;
        if !out.status.success() {
            bail!("{argv:?} in {namespace}/{name} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The environment of a container's main process (what `printenv` prints in it).
    pub async fn container_env(&self, namespace: &str, name: &str, container: &str) -> Result<Vec<(String, String)>> {
        let pid = self.container_pid(namespace, name, container).await?;
        let raw = std::fs::read(format!("/proc/{pid}/environ"))?;
        Ok(raw
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .filter_map(|v| {
                let s = String::from_utf8_lossy(v);
                s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect())
    }

    /// The pid of a container's current main process.
    pub async fn container_pid(&self, namespace: &str, name: &str, container: &str) -> Result<u32> {
        let uid = self.pod(namespace, name).await?.metadata.uid.context("pod without uid")?;
        let dir = self.root_dir().join("pods").join(&uid).join("containers").join(container);
        let latest = std::fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
            .max()
            .context("no container instance")?;
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(latest.to_string()).join("state.json"))?)?;
        state["pid"].as_u64().map(|p| p as u32).context("no pid in state.json")
    }

    /// The CRI log of a container's current instance, as plain text (the log content of each line).
    pub async fn container_log(&self, namespace: &str, name: &str, container: &str) -> Result<String> {
        let pod = self.pod(namespace, name).await?;
        let uid = pod.metadata.uid.context("pod without uid")?;
        let restarts = pod
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|cs| cs.into_iter().find(|c| c.name == container))
            .map(|c| c.restart_count)
            .unwrap_or(0);
        let path = self
            .root_dir()
            .join("logs")
            .join(format!("{namespace}_{name}_{uid}"))
            .join(container)
            .join(format!("{restarts}.log"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut out = String::new();
        for line in text.lines() {
            let mut parts = line.splitn(4, ' ');
            let (_, _, tag, content) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
            out.push_str(content);
            if tag == Some("F") {
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// Runs `program args…` in the node's namespace (the node's own shell).
    pub fn node_command(&self, program: &str, args: &[&str]) -> Result<Output> {
        let mut cmd = self.netns.command(program)?;
        cmd.args(args).stdin(Stdio::null());
        cmd.output().with_context(|| format!("running {program} in the node"))
    }

    /// Interface names in the node's namespace.
    pub fn node_links(&self) -> Result<Vec<String>> {
        link_names(&self.netns, &[])
    }

    /// Mount points under the agent's root dir that belong to pods (not the agent's own state tmpfs mounts).
    pub fn mounts_under_root(&self) -> Vec<String> {
        let (root, state) = (self.root_dir(), self.state_dirs());
        knet_lab::procs::mounts()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&root) && !(m.fs_type == "tmpfs" && state.contains(&m.mount_point)))
            .map(|m| m.mount_point.display().to_string())
            .collect()
    }

    /// The directories the agent keeps on tmpfs mounts of its own while it runs (pod records, netns pins,
    /// attach sockets, logs, CNI leases and result cache).
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        let layout = knet_node_agent::pods::layout::Layout::new(&self.root_dir());
        knet_node_agent::pods::layout::transient_dirs(&layout, true)
    }

    /// The state directories that are not a tmpfs mount.
    pub fn state_dirs_not_on_tmpfs(&self) -> Vec<PathBuf> {
        let mounts = knet_lab::procs::mounts();
        self.state_dirs()
            .into_iter()
            .filter(|d| !mounts.iter().any(|m| &m.mount_point == d && m.fs_type == "tmpfs"))
            .collect()
    }

    /// Holder and shim processes of this node's root dir.
    pub fn runtime_processes(&self) -> Vec<u32> {
        runtime_processes_under(&self.root_dir()).into_iter().map(|(pid, _)| pid).collect()
    }
}

/// Holder and shim processes (`knet-node-agent __sandbox|__shim SPEC…`) whose spec lies under `root`: pid and
/// subcommand.
pub(crate) fn runtime_processes_under(root: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.len() >= 3 && (args[1] == "__sandbox" || args[1] == "__shim") && Path::new(&args[2]).starts_with(root) {
            out.push((pid, args[1].clone()));
        }
    }
    out
}

/// The names of the links `ip -o link show ARGS…` lists in `ns` (without the `@peer` suffix).
pub(crate) fn link_names(ns: &Netns, args: &[&str]) -> Result<Vec<String>> {
    let mut cmd = vec!["-o", "link", "show"];
    cmd.extend_from_slice(args);
    let text = ns.ip(&cmd)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

fn unmount_under(root: &Path) {
    let mounts: Vec<PathBuf> =
        knet_lab::procs::mounts().into_iter().map(|m| m.mount_point).filter(|m| m.starts_with(root)).collect();
    for m in mounts.iter().rev() {
        let _ = nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn kill_runtime_under(root: &Path) {
    for (pid, _) in runtime_processes_under(root) {
        let _ = process::signal(pid, process::SIGKILL);
    }
}

/// Removes what crashed runs of this harness left: processes and mounts of vanished node dirs, and
/// namespaces of test processes that no longer exist.
fn sweep_leftovers() {
    let tmp = std::env::temp_dir();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.len() >= 3 && (args[1] == "__sandbox" || args[1] == "__shim") {
            let spec = Path::new(&args[2]);
            let ours = spec
                .strip_prefix(&tmp)
                .ok()
                .and_then(|r| r.components().next())
                .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with(DIR_PREFIX));
            if ours && !spec.exists() {
                let _ = process::signal(pid, process::SIGKILL);
            }
        }
    }
    for m in knet_lab::procs::mounts() {
        let point = m.mount_point.as_path();
        let ours = point.strip_prefix(&tmp).ok().and_then(|r| r.components().next()).map(|c| tmp.join(c.as_os_str()));
        if let Some(dir) = ours {
            if dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with(DIR_PREFIX))
                && !dir.join("root").exists()
            {
                let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    knet_lab::netns::sweep(NETNS_PREFIX);
}

impl Drop for NodeHost {
    fn drop(&mut self) {
        process::kill9(&mut self.agent);
        eprintln!(
            "--- last {LOG_TAIL_LINES} lines of knet-node-agent's log ({}) ---\n{}\n--- end of log ---",
            self.log_path().display(),
            process::tail(&self.agent_log(), LOG_TAIL_LINES)
        );
        let root = self.root_dir();
        kill_runtime_under(&root);
        // Containers die with their shims (parent-death signal); give the kernel a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !runtime_processes_under(&root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        unmount_under(&root);
        self.proxy.take();
        let _ = self.netns.delete();
        if std::env::var_os("KNET_KEEP_TEST_DIRS").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("xtests: keeping {}", dir.keep().display());
            }
        }
    }
}
