//! Named network namespaces for the tests and the benchmark, made the way `ip netns` makes them, and
//! processes started inside one (network namespace only, via setns before exec). The same approach as
//! `knet_lab::netns`, kept here so knet-cni's tests and benchmark do not build the lab's dependencies.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

pub const NETNS_DIR: &str = "/run/netns";

/// A named network namespace. Dropping it does not delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn named(name: impl Into<String>) -> Self {
        Netns { name: name.into() }
    }

    /// Creates the namespace (an error if it exists) with its loopback up.
    pub fn create(name: impl Into<String>) -> Result<Self, String> {
        let ns = Netns::named(name);
        run_ip(&["netns", "add", &ns.name])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// `ip -n NAME ARGS…`, failing with its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// A command that runs `program` inside the namespace (network namespace only).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command, String> {
        let path = self.path();
        let file = std::fs::File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        let fd = OwnedFd::from(file);
        let mut cmd = Command::new(program);
        // SAFETY: runs in the forked child before exec and only calls setns on a descriptor opened before the
        // fork, which is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if nix::libc::setns(fd.as_raw_fd(), nix::libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// Deletes the namespace; one that does not exist is fine.
    pub fn delete(&self) -> Result<(), String> {
        if !self.path().exists() {
            return Ok(());
        }
        run_ip(&["netns", "delete", &self.name]).map(|_| ())
    }
}

/// Deletes namespaces named `PREFIX<pid>-…` whose process is gone (leftovers of a killed test or bench run).
pub fn sweep(prefix: &str) {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else { return };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Netns::named(name).delete();
            }
        }
    }
}

fn run_ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("running ip {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
