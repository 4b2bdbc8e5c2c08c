//! Named network namespaces, the way `ip netns` makes them (`/run/netns/NAME`, bind-mounted), and processes
//! started inside one. Only the network namespace is entered: the process keeps the machine's mount namespace,
//! so mounts it makes (pod namespaces, overlays) are visible to — and removable by — the lab from outside.
//! Used by the lab, the test harness and knet-cni's tests and benchmark.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Why a network namespace could not be made, entered or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("running `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("opening network namespace {path}: {source}")]
    Open { path: String, source: std::io::Error },
}

/// A named network namespace. Dropping it does not delete it: call [`Netns::delete`] (owners decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A handle on the namespace `name` (which may or may not exist).
    pub fn named(name: impl Into<String>) -> Self {
        Netns { name: name.into() }
    }

    /// Creates the namespace `name` (an error if it exists) and brings its loopback up.
    pub fn create(name: impl Into<String>) -> Result<Self, NetnsError> {
        let ns = Netns::named(name);
        run_ip(&["netns", "add", &ns.name])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, the path a CNI runtime or `nsenter --net=` takes.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Runs `ip ARGS…` inside the namespace, failing with its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// A command that runs `program` inside the namespace (network namespace only; see the module doc).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command, NetnsError> {
        let path = self.path();
        let file = std::fs::File::open(&path)
            .map_err(|source| NetnsError::Open { path: path.display().to_string(), source })?;
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

    /// Deletes the namespace; deleting one that does not exist is not an error.
    pub fn delete(&self) -> Result<(), NetnsError> {
        if !self.exists() {
            return Ok(());
        }
        run_ip(&["netns", "delete", &self.name]).map(|_| ())
    }
}

/// Deletes the namespaces named `PREFIX<pid>-…` whose creating process is gone (leftovers of a killed test or
/// benchmark run). Best effort: a namespace that cannot be deleted is left for the next sweep.
pub fn sweep(prefix: &str) {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Netns::named(name).delete();
        }
    }
}

/// Runs `ip ARGS…` in the calling process's namespace, failing with its stderr.
pub fn run_ip(args: &[&str]) -> Result<String, NetnsError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(NetnsError::Failed { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root and `ip` are needed; in CI (`CI=true`) not having them fails the test.
    fn can_run(test: &str) -> bool {
        let root = nix::unistd::Uid::effective().is_root();
        let ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
        if root && ip {
            return true;
        }
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{test}: needs root and iproute2, and CI=true");
        eprintln!("skipping {test}: needs root and iproute2 (`ip`)");
        false
    }

    #[test]
    fn sweep_deletes_only_namespaces_of_dead_processes() {
        if !can_run("sweep_deletes_only_namespaces_of_dead_processes") {
            return;
        }
        let mut child = Command::new("true").spawn().expect("spawning true");
        let dead = child.id();
        child.wait().expect("waiting for true");
        let prefix = "kcbsweep-";
        let gone = Netns::create(format!("{prefix}{dead}-a")).expect("creating a namespace");
        let alive = Netns::create(format!("{prefix}{}-b", std::process::id())).expect("creating a namespace");
        let other = Netns::create(format!("kcbother-{dead}-c")).expect("creating a namespace");
        sweep(prefix);
        let (gone_left, alive_left, other_left) = (gone.exists(), alive.exists(), other.exists());
        for ns in [&gone, &alive, &other] {
            ns.delete().expect("deleting a test namespace");
        }
        assert!(!gone_left, "the dead process's namespace is swept");
        assert!(alive_left && other_left, "a live process's namespace and another prefix's are kept");
        assert!(!alive.exists());
    }
}
