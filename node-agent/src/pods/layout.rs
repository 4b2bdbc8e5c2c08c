//! Where the pod runtime keeps things, all under `--root-dir` so several agents can share a machine (the lab):
//! `pods/<uid>/` (records, volumes, sandbox mount points), `netns/<uid>` (pinned network namespaces),
//! `logs/<ns>_<name>_<uid>/<container>/<restart>.log` (CRI logs), `sock/` (attach sockets), `images/`
//! (busybox applet links).

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

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `pods/<uid>/containers/<name>/<attempt>/`.
    pub fn instance_dir(&self, uid: &str, container: &str, attempt: i32) -> PathBuf {
        self.pod_dir(uid).join("containers").join(container).join(attempt.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
