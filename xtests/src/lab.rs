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
