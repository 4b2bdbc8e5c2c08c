//! `knet-lab down`: removes everything a lab made, also after `up` or a component crashed half-way. It trusts
//! no process to clean up after itself: it kills every process in the lab's namespaces and in the pod
//! namespaces bind-mounted under the state dir (found in `/proc/self/mountinfo` by their `net:[INODE]` roots),
//! unmounts everything under the state dir, deletes the namespaces (their links and nftables tables go with
//! them), the root namespace's veth, the state dir and the lock file.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, LabConfig};
use crate::lock::{LabLock, LockError, LOCK_FILE};
use crate::netns::{Netns, NetnsError};
use crate::procs;

/// Why something could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("unmounting {path}: {source}")]
    Unmount { path: String, source: nix::Error },
    #[error("removing {path}: {source}")]
    Remove { path: String, source: std::io::Error },
    #[error("{0} is still mounted after unmounting everything under the state dir")]
    StillMounted(String),
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct DownReport {
    pub killed: Vec<i32>,
    pub unmounted: Vec<PathBuf>,
    pub namespaces: Vec<String>,
    pub removed_state: bool,
}

/// Tears down the lab whose state is in `state_dir` (`fallback` describes it when `lab.json` is missing).
pub fn down(state_dir: &Path, fallback: &LabConfig) -> Result<DownReport, DownError> {
    let lock = LabLock::acquire(Path::new(LOCK_FILE))?;
    let config = LabConfig::load(state_dir)?
        .unwrap_or_else(|| LabConfig { state_dir: state_dir.to_path_buf(), ..fallback.clone() });
    let mut report = DownReport::default();

    // 1. Every process in the lab's namespaces and in pod namespaces pinned under the state dir.
    let lab_ns: Vec<Netns> = config.namespaces().into_iter().map(Netns::named).collect();
    let mut inodes: Vec<u64> = lab_ns.iter().filter_map(|ns| procs::netns_inode(&ns.path())).collect();
    inodes.extend(procs::netns_mounts_under(&config.state_dir).into_iter().map(|(_, ino)| ino));
    inodes.sort_unstable();
    inodes.dedup();
    report.killed = procs::kill_all_in(&inodes);
    // Processes a pid file names (e.g. started in the root namespace by a half-run script) go too.
    for pid in pid_files(&config) {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok() {
            report.killed.push(pid);
        }
    }

    // 2. Every mount under the state dir, deepest first (repeated: unmounting may reveal mounts below).
    for _ in 0..10 {
        let mut under: Vec<PathBuf> =
            procs::mounts().into_iter().map(|m| m.mount_point).filter(|p| p.starts_with(&config.state_dir)).collect();
        if under.is_empty() {
            break;
        }
        under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for path in under {
            match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => report.unmounted.push(path),
                Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                Err(source) => return Err(DownError::Unmount { path: path.display().to_string(), source }),
            }
        }
    }
    if let Some(m) = procs::mounts().into_iter().find(|m| m.mount_point.starts_with(&config.state_dir)) {
        return Err(DownError::StillMounted(m.mount_point.display().to_string()));
    }

    // 3. The namespaces (links, addresses, routes and nftables tables inside go with them) and the root veth.
    for ns in &lab_ns {
        if ns.exists() {
            ns.delete()?;
            report.namespaces.push(ns.name().to_string());
        }
    }
    if Path::new("/sys/class/net").join(&config.root_if).exists() {
        crate::netns::run_ip(&["link", "del", &config.root_if])?;
    }

    // 4. Files: the state dir and the lock.
    if config.state_dir.exists() {
        std::fs::remove_dir_all(&config.state_dir)
            .map_err(|source| DownError::Remove { path: config.state_dir.display().to_string(), source })?;
        report.removed_state = true;
    }
    let _ = std::fs::remove_file(LOCK_FILE);
    drop(lock);
    Ok(report)
}

/// Pids in `<state>/<host>/run/*.pid`.
fn pid_files(config: &LabConfig) -> Vec<i32> {
    let mut pids = Vec::new();
    for host in config.hosts() {
        let Ok(entries) = std::fs::read_dir(config.host_dir(&host.name).join("run")) else { continue };
        for e in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                pids.extend(text.trim().parse::<i32>().ok().filter(|p| *p > 1));
            }
        }
    }
    pids
}
