//! Pod sandboxes: a holder process per pod owns the pod's network, UTS and mount namespaces (`holder`, run as
//! the hidden `__sandbox` subcommand); the agent starts it (`start`), pins its network namespace with a bind
//! mount under `<root-dir>/netns/` for CNI, and stops it (`stop`). Processes are identified by pid *and* start
//! time, so a recycled pid is never mistaken for a holder.

pub mod holder;
pub mod spec;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use self::spec::{HolderReport, HolderSpec};

/// How long a holder may take to build the sandbox.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a sandbox could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("writing the sandbox spec {path}: {source}")]
    WriteSpec { path: String, source: std::io::Error },
    #[error("starting the sandbox holder: {0}")]
    Spawn(std::io::Error),
    #[error("the sandbox holder did not report within {0:?}")]
    Timeout(Duration),
    #[error("the sandbox holder failed: {0}")]
    Failed(String),
    #[error("the sandbox holder printed {0:?}")]
    BadReport(String),
    #[error("pinning the network namespace at {path}: {reason}")]
    Pin { path: String, reason: String },
}

/// A process identity that survives pid reuse: pid plus start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: u32) -> Option<ProcessId> {
        start_time(pid).map(|start_time| ProcessId { pid, start_time })
    }

    /// Whether this very process still exists (and is not a zombie).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && !is_zombie(self.pid)
    }

    /// Sends `signal` if this very process still exists.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> bool {
        self.alive() && nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), signal).is_ok()
    }
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

/// Runs `exe args…` (a hidden subcommand that forks into the background), waits for the intermediate process
/// and returns the one line the background process printed before closing stdout.
pub async fn run_detached(
    exe: &Path,
    args: &[&std::ffi::OsStr],
    stderr: Option<&Path>,
    timeout: Duration,
) -> Result<String, std::io::Error> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).kill_on_drop(true);
    match stderr {
        Some(path) => {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            cmd.stderr(f);
        }
        None => {
            cmd.stderr(Stdio::null());
        }
    }
    // Run the holder and shims without the agent's signal mask or environment quirks.
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    let child = cmd.spawn()?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => Ok(String::from_utf8_lossy(&out?.stdout).trim().to_string()),
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no report")),
    }
}

/// Starts the holder for `spec` (written to `spec_path`) and returns its identity once the sandbox is built.
pub async fn start(exe: &Path, spec_path: &Path, spec: &HolderSpec) -> Result<ProcessId, SandboxError> {
    let bytes = serde_json::to_vec_pretty(spec).unwrap_or_default();
    std::fs::write(spec_path, bytes)
        .map_err(|source| SandboxError::WriteSpec { path: spec_path.display().to_string(), source })?;
    let line = run_detached(
        exe,
        &["__sandbox".as_ref(), spec_path.as_os_str()],
        Some(&spec.pod_dir.join("holder.log")),
        START_TIMEOUT,
    )
    .await
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            SandboxError::Timeout(START_TIMEOUT)
        } else {
            SandboxError::Spawn(e)
        }
    })?;
    match serde_json::from_str::<HolderReport>(&line) {
        Ok(HolderReport::Ready { pid }) => {
            ProcessId::of(pid).ok_or_else(|| SandboxError::Failed("the holder exited right after starting".into()))
        }
        Ok(HolderReport::Failed { error }) => Err(SandboxError::Failed(error)),
        Err(_) => Err(SandboxError::BadReport(line)),
    }
}

/// Bind-mounts the holder's network namespace at `path` (so CNI has a stable path and DEL works after the
/// holder is gone).
pub fn pin_netns(holder: &ProcessId, path: &Path) -> Result<(), SandboxError> {
    let err = |reason: String| SandboxError::Pin { path: path.display().to_string(), reason };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    std::fs::write(path, b"").map_err(|e| err(e.to_string()))?;
    let source = PathBuf::from(format!("/proc/{}/ns/net", holder.pid));
    mount(Some(&source), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| err(e.to_string()))?;
    if !holder.alive() {
        unpin_netns(path);
        return Err(err("the holder exited while its namespace was pinned".into()));
    }
    Ok(())
}

/// Unmounts and removes a pinned network namespace (nothing happens if it is not there).
pub fn unpin_netns(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Kills the holder (SIGKILL: it holds nothing that needs a graceful end) and waits briefly for it to go.
pub async fn stop(holder: &ProcessId) {
    if holder.signal(nix::sys::signal::Signal::SIGKILL) {
        for _ in 0..100 {
            if !holder.alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether `path` is pinned: the namespace bind mount [`pin_netns`] makes is there (the path is on nsfs; an
/// unpinned path is the empty file under it). One `statfs`, where reading the mount table would cost a line per
/// mount on the node for every pod sync.
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}
