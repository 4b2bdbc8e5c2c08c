//! Drives `knet-cni` (and Debian's reference plugins) exactly as a CNI runtime does — fork/exec with the
//! `CNI_*` environment and the configuration on stdin, stdout parsed as a result or an error — with the
//! plugin's "host" a network namespace the test creates and each container another one. Everything a test
//! makes is named with a per-test suffix and removed on drop; leftovers of dead test processes are swept first.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use knet_component_base::netns::{self, Netns};
use serde_json::{json, Value};

/// Prefix of every namespace these tests create: `kncni-<pid>-<n>-…`.
const PREFIX: &str = "kncni-";

pub const KNET_CNI: &str = env!("CARGO_BIN_EXE_knet-cni");
/// Debian's containernetworking-plugins.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// Whether the test can run: root and network namespaces. In CI (`CI=true`) not being able to run fails.
pub fn can_run(test: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    let why = if !root { "needs root" } else { "needs iproute2 (`ip`)" };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true: this test must run in CI");
    }
    eprintln!("skipping {test}: {why}");
    false
}

/// The attachment parameters of a run.
#[derive(Debug, Clone, Copy)]
pub struct Att<'a> {
    pub id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
}

/// The outcome of one plugin run.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub json: Value,
}

impl Out {
    /// The spec error code (panics with the output when the run succeeded).
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected a failure, got {}", self.stdout);
        self.json["code"].as_u64().unwrap_or_else(|| panic!("no error code in {}", self.stdout))
    }

    pub fn msg(&self) -> String {
        format!("{} {}", self.json["msg"].as_str().unwrap_or(""), self.json["details"].as_str().unwrap_or(""))
    }

    /// The result (panics with the error when the run failed).
    pub fn result(&self) -> &Value {
        assert!(self.ok, "plugin failed: {}", self.stdout);
        &self.json
    }
}

/// One test's world: a host namespace running the plugin, containers, a data directory.
pub struct Lab {
    pub id: String,
    pub host: Netns,
    pub containers: Vec<Netns>,
    pub data_dir: tempfile::TempDir,
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Lab {
    pub fn new() -> Lab {
        netns::sweep(PREFIX);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{PREFIX}{}-{n}", std::process::id());
        let host = Netns::create(format!("{id}-host")).expect("creating the host namespace");
        Lab { id, host, containers: Vec::new(), data_dir: tempfile::tempdir().expect("tempdir") }
    }

    /// Creates container namespace number `i` (its path is the CNI_NETNS).
    pub fn container(&mut self) -> PathBuf {
        let ns = Netns::create(format!("{}-c{}", self.id, self.containers.len())).expect("creating a container");
        let path = ns.path();
        self.containers.push(ns);
        path
    }

    /// Runs `program` (a plugin) in the host namespace as a runtime would.
    pub fn exec(&self, program: &str, command: &str, att: Att<'_>, conf: &Value, extra: &[(&str, &str)]) -> Out {
        let mut cmd = self.host.command(program).expect("entering the host namespace");
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", att.id)
            .env("CNI_NETNS", att.netns)
            .env("CNI_IFNAME", att.ifname)
            .env("CNI_PATH", REFERENCE_DIR);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run(cmd, conf)
    }

    /// Runs knet-cni.
    pub fn cni(&self, command: &str, id: &str, netns: &Path, conf: &Value) -> Out {
        self.exec(KNET_CNI, command, Att { id, netns, ifname: "eth0" }, conf, &[])
    }

    /// `ip ARGS` in the host namespace.
    pub fn host_ip(&self, args: &[&str]) -> String {
        self.host.ip(args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"))
    }

    /// `ip ARGS` in container `i`.
    pub fn ct_ip(&self, i: usize, args: &[&str]) -> String {
        self.containers[i].ip(args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"))
    }

    /// Names of the host namespace's links other than lo and `bridge`.
    pub fn host_links(&self) -> Vec<String> {
        let out = self.host_ip(&["-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
            .filter(|n| n != "lo")
            .collect()
    }

    /// Whether container `i` reaches `ip` (busybox ping, one packet).
    pub fn ping(&self, i: usize, ip: &str) -> bool {
        let mut cmd = self.containers[i].command("busybox").expect("entering a container");
        let v6 = ip.contains(':');
        cmd.args([if v6 { "ping6" } else { "ping" }, "-c", "1", "-W", "2", ip]);
        cmd.output().is_ok_and(|o| o.status.success())
    }

    /// The lease files (addresses) in the network's data directory.
    pub fn leases(&self, network: &str) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.data_dir.path().join(network))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        out.retain(|n| n.parse::<std::net::IpAddr>().is_ok());
        out.sort();
        out
    }

    /// A knet-cni configuration for network `name` on bridge `kbr0` with host-local IPAM in this lab's data
    /// directory; `ipam` holds the ranges.
    pub fn conf(&self, version: &str, name: &str, ipam: Value) -> Value {
        let mut ipam = ipam;
        ipam["type"] = json!("host-local");
        ipam["dataDir"] = json!(self.data_dir.path());
        json!({"cniVersion": version, "name": name, "type": "knet-cni", "bridge": "kbr0",
               "isDefaultGateway": true, "ipam": ipam})
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = c.delete();
        }
        // The bridge and any veth host ends live in the host namespace and go with it.
        let _ = self.host.delete();
    }
}

/// Runs a prepared command with `conf` on stdin.
pub fn run(mut cmd: Command, conf: &Value) -> Out {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawning the plugin");
    child.stdin.take().expect("stdin").write_all(conf.to_string().as_bytes()).expect("writing the config");
    let out = child.wait_with_output().expect("waiting for the plugin");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json =
        if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).unwrap_or(Value::Null) };
    Out { ok: out.status.success(), stdout, json }
}

/// `conf` with `prevResult` set.
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}
