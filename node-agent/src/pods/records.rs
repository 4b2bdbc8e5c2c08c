//! What the runtime writes next to a pod so a restarted agent can adopt it (or clean it up): the pod's
//! identity, its sandbox, and each container instance (the shim writes `state.json` and `exit.json` itself).

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::sandbox::ProcessId;
use super::shim::{read_json, write_json, ExitRecord, ShimState};

/// `pods/<uid>/pod.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// `pods/<uid>/sandbox.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    /// The sandbox's ID (the CNI container ID).
    pub id: String,
    pub holder: ProcessId,
    /// The pinned network namespace; `None` for host-network pods.
    pub netns: Option<String>,
    pub ips: Vec<IpAddr>,
    pub created_at: String,
}

/// `pods/<uid>/containers/<name>/<attempt>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceMeta {
    pub id: String,
    pub attempt: i32,
    pub image: String,
    /// The environment and working directory the container runs with (for exec after a restart).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

/// One container instance as found on disk.
#[derive(Debug, Clone)]
pub struct InstanceOnDisk {
    pub meta: InstanceMeta,
    pub state: Option<ShimState>,
    pub exit: Option<ExitRecord>,
}

pub fn read_pod(dir: &Path) -> Option<PodRecord> {
    read_json(&dir.join("pod.json"))
}

pub fn write_pod(dir: &Path, r: &PodRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("pod.json"), r)
}

pub fn read_sandbox(dir: &Path) -> Option<SandboxRecord> {
    read_json(&dir.join("sandbox.json"))
}

pub fn write_sandbox(dir: &Path, r: &SandboxRecord) -> std::io::Result<()> {
    write_json(&dir.join("sandbox.json"), r)
}

pub fn remove_sandbox(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("sandbox.json"));
}

/// Every instance of every container of the pod in `dir`, by container name, oldest attempt first.
pub fn read_instances(dir: &Path) -> Vec<(String, Vec<InstanceOnDisk>)> {
    let mut out = Vec::new();
    let Ok(names) = std::fs::read_dir(dir.join("containers")) else { return out };
    for name in names.flatten() {
        let cname = name.file_name().to_string_lossy().into_owned();
        let mut instances = Vec::new();
        let Ok(attempts) = std::fs::read_dir(name.path()) else { continue };
        for a in attempts.flatten() {
            let p = a.path();
            let Some(meta) = read_json::<InstanceMeta>(&p.join("meta.json")) else { continue };
            instances.push(InstanceOnDisk {
                meta,
                state: read_json(&p.join("state.json")),
                exit: read_json(&p.join("exit.json")),
            });
        }
        instances.sort_by_key(|i| i.meta.attempt);
        out.push((cname, instances));
    }
    out
}
