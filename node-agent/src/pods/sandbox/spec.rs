//! What the agent tells a sandbox holder to build (written as JSON next to the pod's state).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A file written into the pod's root (image configuration such as nginx's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// In-pod absolute path.
    pub path: String,
    pub content: String,
    pub mode: u32,
}

/// A bind mount from the node into the pod's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Node path (a directory or a file).
    pub source: PathBuf,
    /// In-pod absolute path.
    pub target: String,
    pub read_only: bool,
}

/// The sandbox of one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderSpec {
    /// The pod's state directory: `rootfs/` and `layers/` below it are mount points inside the pod only.
    pub pod_dir: PathBuf,
    /// A new network namespace (false for host-network pods).
    pub new_netns: bool,
    /// The UTS namespace's hostname (`None`: the node's UTS namespace, for host-network pods).
    pub hostname: Option<String>,
    /// Files written into the pod's root, in order, before the mounts.
    pub files: Vec<FileSpec>,
    /// Bind mounts, in order (later ones cover earlier ones).
    pub mounts: Vec<MountSpec>,
}

/// The one line a holder prints when it is ready or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HolderReport {
    Ready { pid: u32 },
    Failed { error: String },
}
