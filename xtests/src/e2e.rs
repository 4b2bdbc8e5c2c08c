//! End-to-end helpers on a running [`Lab`]:
//!
//! - [`Checks`]: runs a test's independent checks on one lab and reports every failure at the end (one failed
//!   check does not hide the others), with the time each took.
//! - [`LabHost`]: what a lab node holds — pod veths, pinned pod namespaces, mounts, IPAM leases, pod dirs,
//!   runtime processes ([`NodeState`]) — the container processes of a pod, and restarting its node agent the
//!   hard way (SIGKILL, then the very same command line, environment and log).
//! - [`PtyKubectl`]: the real kubectl on a pseudo-terminal the test types into (`kubectl run -i --tty`).
//! - Small kubectl conveniences ([`ok`], [`wait_ready`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use knet_lab::netns::Netns;

use crate::lab::Lab;
use crate::Kubectl;

/// A test's independent checks on one lab; [`Checks::finish`] fails listing every failed one.
pub struct Checks {
    test: String,
    failures: Vec<String>,
    times: Vec<(String, Duration)>,
}

impl Checks {
    pub fn new(test: &str) -> Checks {
        Checks { test: test.to_string(), failures: Vec::new(), times: Vec::new() }
    }

    /// Awaits one check and records how it went.
    pub async fn run(&mut self, name: &str, check: impl Future<Output = Result<()>>) {
        let start = Instant::now();
        let result = check.await;
        let took = start.elapsed();
        match result {
            Ok(()) => eprintln!("{}: check {name}: ok ({took:.1?})", self.test),
            Err(e) => {
                eprintln!("{}: check {name}: FAILED ({took:.1?}): {e:#}", self.test);
                self.failures.push(format!("{name}: {e:#}"));
            }
        }
        self.times.push((name.to_string(), took));
    }

    /// Whether every check so far passed.
    pub fn all_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Ok if every check passed; else every failure.
    pub fn finish(self) -> Result<()> {
        let times: Vec<String> = self.times.iter().map(|(n, t)| format!("{n} {t:.1?}")).collect();
        eprintln!("{}: check times: {}", self.test, times.join(", "));
        if self.failures.is_empty() {
            return Ok(());
        }
        bail!("{} of {} checks failed:\n{}", self.failures.len(), self.times.len(), self.failures.join("\n\n"))
    }
}

/// `kubectl ARGS…` that must succeed; its stdout.
pub fn ok(k: &Kubectl, args: &[&str]) -> Result<String> {
    Ok(k.run(args)?.ok()?.stdout)
}

/// `kubectl wait --for=condition=Ready pod/NAME…` (in `namespace`).
pub async fn wait_ready(k: &Kubectl, namespace: &str, what: &[&str], timeout: Duration) -> Result<()> {
    let t = format!("--timeout={}s", timeout.as_secs());
    let mut args = vec!["wait", "-n", namespace, "--for=condition=Ready", t.as_str()];
    args.extend_from_slice(what);
    let result = k.clone().with_timeout(timeout + Duration::from_secs(10)).stdout_async(&args).await;
    if let Err(e) = result {
        // What the pods and their events say, for the failure message.
        let pods = k.stdout_async(&["get", "pods", "-n", namespace, "-o", "wide"]).await.unwrap_or_default();
        let events = k.stdout_async(&["get", "events", "-n", namespace]).await.unwrap_or_default();
        bail!("{e:#}\n--- pods:\n{pods}--- events:\n{events}");
    }
    Ok(())
}

/// Runs `f` on a blocking thread (for the synchronous helpers here and kubectl).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.context("blocking task")?
}

/// What a lab node holds for its pods (compared before and after to find leftovers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    /// veth interfaces in the node's namespace (the host ends of pods).
    pub veths: Vec<String>,
    /// Pinned pod network namespaces (`<host>/netns/*`).
    pub pinned_netns: Vec<String>,
    /// Mount points under the host's dir.
    pub mounts: Vec<String>,
    /// IPAM lease files (`<host>/cni/networks/<net>/<ip>`).
    pub ipam_leases: Vec<String>,
    /// Pod dirs (`<host>/pods/*`).
    pub pod_dirs: Vec<String>,
    /// Sandbox holders and container shims working for this host (pid and role).
    pub runtime_processes: Vec<String>,
}

impl NodeState {
    /// What `later` has that this one has not, per kind (empty: nothing left behind).
    pub fn added_in(&self, later: &NodeState) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |kind: &str, a: &[String], b: &[String]| {
            out.extend(b.iter().filter(|x| !a.contains(x)).map(|x| format!("{kind}: {x}")));
        };
        diff("veth", &self.veths, &later.veths);
        diff("pinned netns", &self.pinned_netns, &later.pinned_netns);
        diff("mount", &self.mounts, &later.mounts);
        diff("IPAM lease", &self.ipam_leases, &later.ipam_leases);
        diff("pod dir", &self.pod_dirs, &later.pod_dirs);
        diff("runtime process", &self.runtime_processes, &later.runtime_processes);
        out
    }
}

/// The node agent's command as it ran: what [`LabHost::start_agent`] starts again.
#[derive(Debug, Clone)]
pub struct AgentCommand {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// A container's main process: pid and its start time (clock ticks since boot), which tells a pid reused by
/// another process apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessIdentity {
    /// The process `pid` as it is now, if it lives (and is no zombie).
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3, starttime field 22 (1-based, man proc).
        if fields.first() == Some(&"Z") {
            return None;
        }
        let start_time = fields.get(19)?.parse().ok()?;
        Some(ProcessIdentity { pid, start_time })
    }

    /// Whether this very process still runs.
    pub fn alive(&self) -> bool {
        ProcessIdentity::of(self.pid) == Some(*self)
    }
}

/// One host of a running lab.
#[derive(Debug, Clone)]
pub struct LabHost {
    pub name: String,
    /// `<state>/<host>`: the node agent's root dir.
    pub dir: PathBuf,
    pub netns: Netns,
}

impl LabHost {
    /// Host `name` of `lab`.
    pub fn of(lab: &Lab, name: &str) -> Result<LabHost> {
        let config = knet_lab::config::LabConfig::load(lab.state_dir())?.context("the lab has no lab.json")?;
        let host = config.find_host(name).with_context(|| format!("the lab has no host {name}"))?;
        Ok(LabHost { name: name.to_string(), dir: config.host_dir(name), netns: Netns::named(host.netns) })
    }

    /// What the node holds now.
    pub fn state(&self) -> Result<NodeState> {
        let mut veths = crate::node_host::link_names(&self.netns, &["type", "veth"])?;
        veths.sort();
        let mut mounts: Vec<String> = knet_lab::procs::mounts()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&self.dir))
            .map(|p| p.display().to_string())
            .collect();
        mounts.sort();
        let mut ipam_leases = Vec::new();
        for net in list_dir(&self.dir.join("cni/networks")) {
            for f in list_dir(&net) {
                if f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.parse::<IpAddr>().is_ok()) {
                    ipam_leases.push(f.display().to_string());
                }
            }
        }
        ipam_leases.sort();
        let names = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = list_dir(dir).iter().map(|p| p.display().to_string()).collect();
            v.sort();
            v
        };
        Ok(NodeState {
            veths,
            pinned_netns: names(&self.dir.join("netns")),
            mounts,
            ipam_leases,
            pod_dirs: names(&self.dir.join("pods")),
            runtime_processes: runtime_processes_under(&self.dir),
        })
    }

    /// The IPAM lease file of `ip`, if one exists on this node.
    pub fn lease_of(&self, ip: &str) -> Option<PathBuf> {
        list_dir(&self.dir.join("cni/networks")).into_iter().map(|net| net.join(ip)).find(|p| p.exists())
    }

    /// The main process of the current instance of container `container` of the pod with `uid`.
    pub fn container_process(&self, uid: &str, container: &str) -> Result<ProcessIdentity> {
        let dir = self.dir.join("pods").join(uid).join("containers").join(container);
        let latest = list_dir(&dir)
            .into_iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()))
            .max()
            .with_context(|| format!("no container instance in {}", dir.display()))?;
        let path = dir.join(latest.to_string()).join("state.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let state: serde_json::Value = serde_json::from_str(&text)?;
        let pid = state["pid"].as_u64().and_then(|p| u32::try_from(p).ok()).context("no pid in state.json")?;
        ProcessIdentity::of(pid).with_context(|| format!("container {container} (pid {pid}) is not running"))
    }

    /// The node agent's pid (from its pid file).
    pub fn agent_pid(&self) -> Result<u32> {
        let path = self.dir.join("run/node-agent.pid");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        text.trim().parse().with_context(|| format!("parsing {}", path.display()))
    }

    /// Kills the node agent with SIGKILL (nothing it could clean up) and waits until it is gone; returns its
    /// command for [`LabHost::start_agent`].
    pub fn kill9_agent(&self) -> Result<AgentCommand> {
        let pid = self.agent_pid()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).context("reading the agent's cmdline")?;
        let argv: Vec<String> = split_nul(&cmdline);
        if !argv.first().is_some_and(|a| a.ends_with("knet-node-agent")) {
            bail!("pid {pid} of {} is not a node agent: {argv:?}", self.name);
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).context("reading the agent's environment")?;
        let env = split_nul(&environ)
            .into_iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| PathBuf::from("/"));
        let me = ProcessIdentity::of(pid).context("the node agent is not running")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
            .with_context(|| format!("killing the node agent {pid}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while me.alive() {
            if Instant::now() > deadline {
                bail!("the node agent {pid} of {} survived SIGKILL for 10 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(AgentCommand { argv, env, cwd })
    }

    /// Starts the node agent again as the lab's script does: in the host's network namespace, in its own
    /// session, output appended to its log, pid file rewritten. Returns the new pid.
    pub fn start_agent(&self, cmd: &AgentCommand) -> Result<u32> {
        let log = self.dir.join("log/node-agent.log");
        // `sh` backgrounds the agent in its own session and exits, so the agent is nobody's child here (like
        // the lab's own, and `knet-lab down` finds it in the namespace).
        let mut c = self.netns.command("sh")?;
        c.arg("-c")
            .arg("setsid \"$@\" </dev/null >>\"$KNET_E2E_LOG\" 2>&1 & echo $!")
            .arg("sh")
            .args(&cmd.argv)
            .env_clear()
            .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KNET_E2E_LOG", &log)
            .current_dir(&cmd.cwd)
            .stdin(Stdio::null());
        let out = c.output().context("starting the node agent")?;
        if !out.status.success() {
            bail!("starting the node agent failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().context("the new agent's pid")?;
        std::fs::write(self.dir.join("run/node-agent.pid"), format!("{pid}\n"))?;
        Ok(pid)
    }

    /// The node agent's log.
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/node-agent.log")).unwrap_or_default()
    }

    /// Runs `program ARGS…` on the host: (success, stdout, stderr).
    pub fn run(&self, program: &str, args: &[&str]) -> Result<(bool, String, String)> {
        crate::lab::run_in(&self.netns, program, args)
    }

    /// The host's IPv4 addresses (every interface).
    pub fn addresses(&self) -> Result<Vec<String>> {
        let out = self.netns.ip(&["-o", "-4", "addr", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
            .filter_map(|a| a.split('/').next())
            .map(str::to_string)
            .collect())
    }
}

fn split_nul(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// Holder and shim processes whose spec lies under `dir` and that still run (`PID SUBCOMMAND`).
fn runtime_processes_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = crate::node_host::runtime_processes_under(dir)
        .into_iter()
        .filter(|(pid, _)| ProcessIdentity::of(*pid).is_some())
        .map(|(pid, kind)| format!("{pid} {kind}"))
        .collect();
    out.sort();
    out
}

/// The real kubectl on a pseudo-terminal (its controlling terminal, 24×80): the test reads what it prints and
/// types into it. Killed on drop.
pub struct PtyKubectl {
    child: Child,
    master: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl PtyKubectl {
    /// Starts `kubectl --kubeconfig KUBECONFIG ARGS…` on a new pty.
    pub fn spawn(kubeconfig: &Path, cache_dir: &Path, args: &[&str]) -> Result<PtyKubectl> {
        let size = nix::pty::Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).context("opening a pty")?;
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(crate::kubectl::kubectl_binary()?);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", cache_dir)
            .env("KUBERC", "off")
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: runs in the forked child before exec and only makes async-signal-safe system calls: a new
        // session whose controlling terminal is the pty (fd 0).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if nix::libc::setsid() < 0 || nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting kubectl on a pty")?;
        // `cmd` (and with it the parent's copies of the slave) is dropped here, so the reader sees EIO once
        // kubectl exits.
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone()?;
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(PtyKubectl { child, master, output, seen: String::new() })
    }

    /// Everything kubectl printed so far.
    pub fn transcript(&self) -> &str {
        &self.seen
    }

    /// Waits until the terminal shows `needle` after byte `from` of the transcript; returns the transcript
    /// length right after the match.
    pub fn expect_from(&mut self, from: usize, needle: &str, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.seen.get(from..).and_then(|s| s.find(needle)) {
                return Ok(from + at + needle.len());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the terminal did not show {needle:?} within {timeout:?}; it shows:\n{}", self.seen);
            }
            match self.output.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("kubectl closed the terminal before showing {needle:?}; it showed:\n{}", self.seen)
                }
            }
        }
    }

    /// Types `text` (use `\r` for Enter, as a terminal sends it).
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.master.write_all(text.as_bytes()).context("typing into the pty")
    }

    /// Waits for kubectl to exit (collecting what it prints meanwhile).
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(bytes) = self.output.try_recv() {
                self.seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            if let Some(status) = self.child.try_wait()? {
                // What it printed last.
                while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push_str(&String::from_utf8_lossy(&bytes));
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("kubectl did not exit within {timeout:?}; the terminal shows:\n{}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PtyKubectl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lab's kubectl on a pty (see [`PtyKubectl`]).
pub fn pty_kubectl(lab: &Lab, args: &[&str]) -> Result<PtyKubectl> {
    PtyKubectl::spawn(&lab.kubeconfig(), &lab.state_dir().join("kubecache"), args)
}

/// Lines of a `kubectl get … -o wide` table as column maps keyed by the header's names.
pub fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    // Columns start where a header name starts after two spaces or more (kubectl pads columns with at least
    // three; names like `NOMINATED NODE` hold one); values are cut at those offsets.
    let mut starts = Vec::new();
    let bytes = header.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] != b' ' && (i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' ')) {
            starts.push(i);
        }
    }
    let names: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(n, &s)| header[s..starts.get(n + 1).copied().unwrap_or(header.len())].trim().to_string())
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let s = starts[n].min(l.len());
                    let e = starts.get(n + 1).copied().unwrap_or(l.len()).min(l.len());
                    (name.clone(), l.get(s..e).unwrap_or("").trim().to_string())
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_follow_the_header() {
        let t = table(
            "NAME     READY   STATUS      RESTARTS   AGE   IP           NODE       NOMINATED NODE   READINESS GATES\n\
             a1       1/1     Running     0          4s    10.244.1.2   worker-1   <none>           <none>\n\
             b-long   0/1     Completed   0          14s   10.244.0.3   worker-2   <none>           <none>\n",
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["IP"], "10.244.1.2");
        assert_eq!(t[1]["NAME"], "b-long");
        assert_eq!(t[1]["NODE"], "worker-2");
        assert_eq!(t[0]["RESTARTS"], "0");
        assert_eq!(t[1]["NOMINATED NODE"], "<none>");
    }

    #[test]
    fn node_state_difference_names_each_leftover() {
        let before = NodeState { veths: vec!["veth1".into()], ..NodeState::default() };
        let after = NodeState {
            veths: vec!["veth1".into(), "veth2".into()],
            ipam_leases: vec!["/x/10.244.1.9".into()],
            ..NodeState::default()
        };
        assert_eq!(before.added_in(&after), vec!["veth: veth2", "IPAM lease: /x/10.244.1.9"]);
        assert!(after.added_in(&before).is_empty());
    }

    #[test]
    fn a_process_identity_is_this_process() {
        let me = ProcessIdentity::of(std::process::id()).expect("this process is in /proc");
        assert!(me.alive());
        assert!(!ProcessIdentity { start_time: me.start_time + 1, ..me }.alive());
    }
}
