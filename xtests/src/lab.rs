//! Root-only test plumbing for the node network and the lab:
//!
//! - [`require_root`]: tests that need root and network namespaces fail under `CI=true` without them, and
//!   skip (with the reason printed) elsewhere.
//! - [`TestNet`]: a test's own namespaces — an underlay bridge, "nodes" plugged into it, fake "pods" — named
//!   with the test process's pid so a later run sweeps what a crashed one left; everything (processes inside
//!   included) is removed on drop, also when the test panics.
//! - [`in_netns`]: runs a closure on a thread that entered a namespace (sockets it opens stay there).
//! - [`Lab`]: a whole `knet-lab` cluster for end-to-end tests.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use knet_lab::netns::Netns;
use knet_lab::topology::{self, Underlay};

/// Whether this process may build network namespaces. Under `CI=true` a missing capability is a failure.
pub fn require_root(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("it needs root")
    } else if Command::new("ip").arg("-V").stdout(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
        Some("it needs iproute2's `ip`")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{test} cannot run: {why} (CI=true)"),
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// Namespace names of test nets start with this, then the pid of the test process that made them.
const TEST_NET_PREFIX: &str = "kt";

/// Deletes test namespaces whose creating process is gone (left by a crashed or killed test run).
pub fn sweep_dead_test_nets() {
    let Ok(entries) = std::fs::read_dir(knet_lab::netns::NETNS_DIR) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEST_NET_PREFIX) else { continue };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_netns(&Netns::named(name));
        }
    }
}

fn remove_netns(ns: &Netns) {
    if let Some(ino) = knet_lab::procs::netns_inode(&ns.path()) {
        knet_lab::procs::kill_all_in(&[ino]);
    }
    if let Err(e) = ns.delete() {
        eprintln!("test net cleanup: {e}");
    }
}

/// A test's own network: an underlay bridge and namespaces plugged into it. Removed on drop.
pub struct TestNet {
    prefix: String,
    pub underlay: Underlay,
    namespaces: Vec<Netns>,
    children: Vec<Child>,
}

impl TestNet {
    /// A new underlay for the test tagged `tag` (a few letters, unique among the test binary's tests).
    pub fn new(tag: &str) -> Result<TestNet> {
        sweep_dead_test_nets();
        let prefix = format!("{TEST_NET_PREFIX}{}{tag}", std::process::id());
        let underlay_ns = format!("{prefix}-u");
        // A leftover of this very process (an earlier panic before drop ran) goes first.
        remove_netns(&Netns::named(&underlay_ns));
        let underlay = Underlay::create(&underlay_ns, "br0").context("creating the test underlay")?;
        let net = TestNet { prefix, namespaces: vec![underlay.ns.clone()], underlay, children: Vec::new() };
        Ok(net)
    }

    /// A new empty namespace `<prefix>-<name>`, removed with the net.
    pub fn netns(&mut self, name: &str) -> Result<Netns> {
        let ns = Netns::named(format!("{}-{name}", self.prefix));
        remove_netns(&ns);
        let ns = Netns::create(ns.name()).with_context(|| format!("creating namespace {}", ns.name()))?;
        self.namespaces.push(ns.clone());
        Ok(ns)
    }

    /// A host on the underlay: namespace `<prefix>-<name>` with `eth0` at `address`, IP forwarding on.
    pub fn host(&mut self, name: &str, address: Ipv4Net) -> Result<Netns> {
        let ns = self.netns(name)?;
        let port = format!("p{}", self.namespaces.len());
        self.underlay.attach(&ns, "eth0", &port, address, 1500).with_context(|| format!("plugging {name} in"))?;
        topology::sysctl(&ns, "net.ipv4.ip_forward", "1")?;
        Ok(ns)
    }

    /// A fake pod behind `node`: a veth `node_if` on the node with the gateway address (`.1` of `cidr`) and
    /// the pod's `eth0` with `address`.
    pub fn pod(&mut self, node: &Netns, name: &str, node_if: &str, cidr: Ipv4Net, address: Ipv4Addr) -> Result<Netns> {
        let ns = self.netns(name)?;
        let gateway =
            Ipv4Net::new(cidr.hosts().next().context("the pod CIDR has no host addresses")?, cidr.prefix_len())?;
        topology::attach_pod(node, &ns, node_if, gateway, Ipv4Net::new(address, cidr.prefix_len())?)
            .with_context(|| format!("plugging pod {name} into {}", node.name()))?;
        Ok(ns)
    }

    /// Starts `program ARGS…` inside `ns` (network namespace only); killed when the net is dropped.
    pub fn spawn(&mut self, ns: &Netns, program: &Path, args: &[&str]) -> Result<()> {
        let child = ns
            .command(program)?
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} in {}", program.display(), ns.name()))?;
        self.children.push(child);
        Ok(())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            remove_netns(ns);
        }
    }
}

/// Runs `f` on a new thread that entered `ns`'s network namespace (only that thread moves); what it returns
/// comes back. Sockets it opens (netlink included) stay in `ns`.
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = ns.path();
    let name = ns.name().to_string();
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {name}"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in {} panicked", ns.name()))?
}

/// [`in_netns`] with the calling task's tokio runtime entered in the thread, for what opens its sockets in `ns`
/// and is then driven by the runtime (the node agent's netlink connection, for one).
pub fn in_netns_on_runtime<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let rt = tokio::runtime::Handle::try_current().context("in_netns_on_runtime needs a tokio runtime")?;
    in_netns(ns, move || {
        let _entered = rt.enter();
        f()
    })
}

/// Runs `program ARGS…` in `ns` to completion: (success, stdout, stderr).
pub fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Result<(bool, String, String)> {
    let out = ns
        .command(program)?
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} in {}", ns.name()))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `run_in` that fails unless the command succeeds; returns stdout.
pub fn check_in(ns: &Netns, program: &str, args: &[&str]) -> Result<String> {
    let (ok, out, err) = run_in(ns, program, args)?;
    if !ok {
        bail!("`{program} {}` in {} failed: {}{}", args.join(" "), ns.name(), out, err);
    }
    Ok(out)
}

/// The state dir lab tests use (a crashed test's lab is torn down by the next one).
pub const TEST_STATE_DIR: &str = "/var/lib/knet-lab-test";
/// Serializes lab tests across test processes.
const TEST_LOCK: &str = "/run/knet-lab-test.lock";

/// How a test lab is built.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub nodes: u32,
    /// `host-gw` or `vxlan`.
    pub backend: String,
    /// `knet-cni` or `bridge`.
    pub cni: String,
    /// Wait until every worker's Node is Ready (needs the node agent).
    pub wait_ready: bool,
    pub wait: std::time::Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            nodes: 2,
            backend: "host-gw".into(),
            cni: "knet-cni".into(),
            wait_ready: true,
            wait: std::time::Duration::from_secs(120),
        }
    }
}

/// A `knet-lab` cluster for one test, torn down (`knet-lab down`) on drop, also when the test panics. Only
/// one exists at a time on the machine: `up` waits for the test lock.
pub struct Lab {
    state_dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    up: bool,
    _lock: nix::fcntl::Flock<std::fs::File>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

fn process_lock() -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCK: std::sync::OnceLock<std::sync::Arc<tokio::sync::Mutex<()>>> = std::sync::OnceLock::new();
    LOCK.get_or_init(Default::default).clone()
}

impl Lab {
    /// The `knet-lab` binary.
    pub fn binary() -> Result<std::path::PathBuf> {
        crate::apiserver::knet_binary("knet-lab")
    }

    /// Takes the lab test lock (waiting for other tests) and removes a crashed test's lab; nothing is up yet.
    pub async fn reserve() -> Result<Lab> {
        let guard = process_lock().lock_owned().await;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(TEST_LOCK)
            .with_context(|| format!("opening {TEST_LOCK}"))?;
        let lock =
            tokio::task::spawn_blocking(move || nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive))
                .await?
                .map_err(|(_, e)| anyhow::anyhow!("locking {TEST_LOCK}: {e}"))?;
        let bin = Lab::binary()?;
        let mut lab = Lab { state_dir: TEST_STATE_DIR.into(), bin, up: false, _lock: lock, _guard: guard };
        if lab.state_dir.exists() {
            eprintln!("removing the lab a previous test left in {TEST_STATE_DIR}");
            lab.up = true;
            lab.down()?;
        }
        let names = knet_lab::config::LabConfig::default().namespaces();
        if let Some(ns) = names.into_iter().find(|n| Netns::named(n.as_str()).exists()) {
            bail!("namespace {ns} exists: a lab that is not a test's is up on this machine (`knet-lab down` it first)");
        }
        Ok(lab)
    }

    /// The `knet-lab up` command for `opts` (not started).
    pub fn up_command(&self, opts: &LabOptions) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(["--state-dir", &self.state_dir.display().to_string(), "up", "--nodes", &opts.nodes.to_string()])
            .args(["--backend", &opts.backend, "--cni", &opts.cni, "--wait", &opts.wait.as_secs().to_string()])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        if !opts.wait_ready {
            cmd.arg("--no-wait");
        }
        cmd
    }

    /// Marks the lab as (possibly partly) up, so drop tears it down.
    pub fn mark_up(&mut self) {
        self.up = true;
    }

    /// [`Lab::reserve`] and `knet-lab up`. A failed `up` is torn down before the error (which carries up's
    /// output) is returned.
    pub async fn up(opts: LabOptions) -> Result<Lab> {
        let mut lab = Lab::reserve().await?;
        lab.start(&opts).await?;
        Ok(lab)
    }

    /// `knet-lab up` on a reserved lab (tests that snapshot the machine take the snapshot between
    /// [`Lab::reserve`] and this, so another test's lab is never in it). A failed `up` is torn down before the
    /// error (which carries up's output) is returned.
    pub async fn start(&mut self, opts: &LabOptions) -> Result<()> {
        let mut cmd = self.up_command(opts);
        self.up = true;
        let out = tokio::task::spawn_blocking(move || cmd.output()).await?.context("running knet-lab up")?;
        if !out.status.success() {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let down = self.down().err().map(|e| format!("\n(and tearing it down failed: {e:#})")).unwrap_or_default();
            bail!("knet-lab up failed:\n{text}{down}");
        }
        Ok(())
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The lab's admin kubeconfig.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.state_dir.join("admin.kubeconfig")
    }

    /// The real kubectl against the lab.
    pub fn kubectl(&self) -> crate::Kubectl {
        crate::Kubectl::new(&self.kubeconfig(), &self.state_dir.join("kubecache"))
    }

    /// A kube-rs client for the lab (as admin).
    pub async fn client(&self) -> Result<kube::Client> {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(self.kubeconfig())?,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// `knet-lab exec HOST -- ARGS…`: (success, stdout, stderr).
    pub fn exec(&self, host: &str, args: &[&str]) -> Result<(bool, String, String)> {
        let out = Command::new(&self.bin)
            .args(["--state-dir", &self.state_dir.display().to_string(), "exec", host, "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("knet-lab exec {host}"))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// `knet-lab status` output.
    pub fn status(&self) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(["--state-dir", &self.state_dir.display().to_string(), "status"])
            .output()
            .context("knet-lab status")?;
        Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// A host's log file (`<state>/<host>/log/<name>.log`).
    pub fn log(&self, host: &str, name: &str) -> String {
        std::fs::read_to_string(self.state_dir.join(host).join("log").join(format!("{name}.log"))).unwrap_or_default()
    }

    /// `knet-lab down`.
    pub fn down(&mut self) -> Result<()> {
        if !self.up {
            return Ok(());
        }
        let out = Command::new(&self.bin)
            .args(["--state-dir", &self.state_dir.display().to_string(), "down"])
            .env("RUST_BACKTRACE", "0")
            .output()
            .context("running knet-lab down")?;
        if !out.status.success() {
            bail!("knet-lab down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        self.up = false;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!("tearing the test lab down: {e:#}");
        }
    }
}

/// What a lab could leave behind on the machine: namespaces, the root namespace's links, addresses and routes,
/// nftables tables, mounts, knet processes and the files under the lab's dirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub addresses: Vec<String>,
    pub routes: Vec<String>,
    pub nft_tables: Vec<String>,
    pub mounts: Vec<String>,
    pub processes: Vec<String>,
    pub files: Vec<String>,
}

fn lines(program: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(program).args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let mut v: Vec<String> = out.unwrap_or_default().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, out);
        }
    }
}

impl Snapshot {
    /// Takes a snapshot. Processes are the live (non-zombie) ones running a binary from `bin_dir`; files are
    /// everything under `dirs`.
    pub fn take(bin_dir: &Path, dirs: &[&Path]) -> Snapshot {
        let mut namespaces: Vec<String> = std::fs::read_dir(knet_lab::netns::NETNS_DIR)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        namespaces.sort();
        let mut mounts: Vec<String> = knet_lab::procs::mounts()
            .into_iter()
            .map(|m| format!("{} {} {}", m.mount_point.display(), m.root, m.fs_type))
            .collect();
        mounts.sort();
        let mut processes = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
                let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else { continue };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let zombie = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(true);
                if exe.parent() == Some(bin_dir) && !zombie {
                    processes.push(format!("{pid} {}", exe.display()));
                }
            }
        }
        processes.sort();
        let mut files = Vec::new();
        for d in dirs {
            if d.exists() {
                files.push(d.display().to_string());
            }
            walk(d, &mut files);
        }
        files.sort();
        Snapshot {
            namespaces,
            links: lines("ip", &["-o", "link", "show"]).into_iter().map(|l| strip_counters(&l)).collect(),
            addresses: lines("ip", &["-o", "addr", "show"]),
            routes: lines("ip", &["route", "show", "table", "all"]),
            nft_tables: lines("nft", &["list", "tables"]),
            mounts,
            processes,
            files,
        }
    }

    /// What `later` has that this one has not, per kind (empty: nothing left behind).
    pub fn added_in(&self, later: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |kind: &str, a: &[String], b: &[String]| {
            for item in b.iter().filter(|x| !a.contains(x)) {
                out.push(format!("{kind}: {item}"));
            }
        };
        diff("namespace", &self.namespaces, &later.namespaces);
        diff("link", &self.links, &later.links);
        diff("address", &self.addresses, &later.addresses);
        diff("route", &self.routes, &later.routes);
        diff("nft table", &self.nft_tables, &later.nft_tables);
        diff("mount", &self.mounts, &later.mounts);
        diff("process", &self.processes, &later.processes);
        diff("file", &self.files, &later.files);
        out
    }
}

/// `ip -o link` lines without what changes by itself (queue state, link-layer counters are not shown by -o).
fn strip_counters(line: &str) -> String {
    line.split("\\").next().unwrap_or(line).trim().to_string()
}
