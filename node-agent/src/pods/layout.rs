//! Where the pod runtime keeps things, all under `--root-dir` so several agents can share a machine (the lab):
//! `pods/<uid>/` (records, volumes, sandbox mount points), `netns/<uid>` (pinned network namespaces),
//! `logs/<ns>_<name>_<uid>/<container>/<restart>.log` (CRI logs), `sock/` (attach sockets), `images/`
//! (busybox applet links). `pods/`, `netns/`, `sock/`, `logs/` and the CNI state (`cni/networks`, `cni/cache`) are
//! tmpfs mounts the agent makes at start (see [`transient_dirs`], [`mount_state_tmpfs`]).

use std::path::{Path, PathBuf};

/// The directory layout of one agent.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pods_dir(&self) -> PathBuf {
        self.root.join("pods")
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir().join(uid)
    }

    pub fn netns_dir(&self) -> PathBuf {
        self.root.join("netns")
    }

    pub fn netns_path(&self, uid: &str) -> PathBuf {
        self.netns_dir().join(uid)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// kubelet's `/var/log/pods/<ns>_<name>_<uid>` under the root dir.
    pub fn pod_logs_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.logs_dir().join(format!("{namespace}_{name}_{uid}"))
    }

    pub fn log_path(&self, namespace: &str, name: &str, uid: &str, container: &str, restart: i32) -> PathBuf {
        self.pod_logs_dir(namespace, name, uid).join(container).join(format!("{restart}.log"))
    }

    pub fn sock_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// A container's attach socket (short: unix socket paths are limited to 108 bytes).
    pub fn socket(&self, container_id: &str) -> PathBuf {
        self.sock_dir().join(format!("{}.sock", &container_id[..container_id.len().min(16)]))
    }

    /// host-local's `dataDir` in the CNI config the agent writes (IPAM leases).
    pub fn cni_data_dir(&self) -> PathBuf {
        self.root.join("cni").join("networks")
    }

    /// The CNI result cache unless `--cni-cache-dir` names another.
    pub fn cni_cache_dir(&self) -> PathBuf {
        self.root.join("cni").join("cache")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `pods/<uid>/containers/<name>/<attempt>/`.
    pub fn instance_dir(&self, uid: &str, container: &str, attempt: i32) -> PathBuf {
        self.pod_dir(uid).join("containers").join(container).join(attempt.to_string())
    }
}

/// What happened to a state directory at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDir {
    /// Mounted now (it was empty or missing).
    Mounted,
    /// Already a mount point (a previous agent mounted it; its pods are adopted from it).
    AlreadyMounted,
    /// Left on the root dir's filesystem: it holds state of an agent that ran without the tmpfs.
    KeptOnDisk,
}

/// The directories whose contents live and die with the pods on this node, each a tmpfs: per-pod records,
/// instance state and volumes (`pods/`), the files the network namespaces are pinned on (`netns/`, as
/// iproute2's `/run/netns`), attach sockets (`sock/`), container logs (`logs/`, as kubelet's
/// `/var/log/pods`), and the CNI IPAM leases and result cache (`cni/networks`, and `cni/cache` when
/// `default_cni_cache`, i.e. `--cni-cache-dir` did not move it). Pods do not outlive a reboot of the node, so neither need this state
/// (containerd keeps its own under `/run` for the same reason); and creating and deleting a dozen small files
/// per pod on a disk filesystem was, even after the pod records moved, ≈ 11% of all CPU in a burst of pod
/// starts (ext4 looking for a free inode among recently deleted ones; BENCHMARKS.md). The cost: container logs
/// are held in memory (a tmpfs takes at most half the RAM) and are gone after a reboot, as the pods are.
pub fn transient_dirs(layout: &Layout, default_cni_cache: bool) -> Vec<PathBuf> {
    let mut dirs =
        vec![layout.pods_dir(), layout.netns_dir(), layout.sock_dir(), layout.logs_dir(), layout.cni_data_dir()];
    if default_cni_cache {
        dirs.push(layout.cni_cache_dir());
    }
    dirs
}

/// Mounts a tmpfs at `dir` (one of [`transient_dirs`]). A directory that already holds something (state of an
/// agent that ran before the tmpfs existed) is left as it is, and a mount point is reused.
pub fn mount_state_tmpfs(dir: &Path) -> std::io::Result<StateDir> {
    std::fs::create_dir_all(dir)?;
    if is_mount_point(dir) {
        return Ok(StateDir::AlreadyMounted);
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        return Ok(StateDir::KeptOnDisk);
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
    .map_err(std::io::Error::from)?;
    Ok(StateDir::Mounted)
}

/// Whether `path` is a mount point in this process's mount namespace (from `/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> bool {
    let want = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(m) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_dir_with_pods_of_an_earlier_agent_stays_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let pods = dir.path().join("pods");
        std::fs::create_dir_all(pods.join("some-uid")).unwrap();
        assert_eq!(mount_state_tmpfs(&pods).unwrap(), StateDir::KeptOnDisk);
        assert!(!is_mount_point(&pods));
    }

    #[test]
    fn paths() {
        let l = Layout::new(Path::new("/var/lib/knet"));
        assert_eq!(
            l.log_path("default", "web", "u1", "nginx", 2),
            Path::new("/var/lib/knet/logs/default_web_u1/nginx/2.log")
        );
        assert_eq!(l.socket("0123456789abcdef0123"), Path::new("/var/lib/knet/sock/0123456789abcdef.sock"));
        assert_eq!(l.instance_dir("u1", "c", 0), Path::new("/var/lib/knet/pods/u1/containers/c/0"));
    }
}
