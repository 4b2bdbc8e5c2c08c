//! Cleaning up what no pod owns any more — after a restart of the agent, or a pod deleted while it was down:
//! container shims and sandbox holders (found through the records in `pods/<uid>/` and, for anything without
//! a record, by their command line naming a pod dir of this root dir), the pod's network attachment (CNI DEL
//! from the cached result), pinned network namespaces, records and logs. Only this agent's root dir is touched.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::records;
use super::runtime::PodRuntime;
use super::sandbox::{self, ProcessId};
use super::worker::sandbox as wsandbox;

/// The UIDs with a pod dir.
pub fn pod_dirs(rt: &PodRuntime) -> Vec<String> {
    std::fs::read_dir(rt.layout.pods_dir())
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Holder and shim processes of this agent's root dir: (pid identity, pod UID).
pub fn runtime_processes(pods_dir: &Path) -> Vec<(ProcessId, String)> {
    let mut out = Vec::new();
    let prefix = pods_dir.display().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.len() < 3 || (args[1] != "__sandbox" && args[1] != "__shim") {
            continue;
        }
        let Some(rest) = args[2].strip_prefix(&prefix) else { continue };
        let Some(uid) = rest.trim_start_matches('/').split('/').next() else { continue };
        if let Some(id) = ProcessId::of(pid) {
            out.push((id, uid.to_string()));
        }
    }
    out
}

/// Removes everything of the pod `uid` (which no worker owns).
pub async fn cleanup(rt: &PodRuntime, uid: &str) {
    let dir = rt.layout.pod_dir(uid);
    for (_, instances) in records::read_instances(&dir) {
        for inst in instances {
            if let Some(state) = inst.state {
                if state.shim.alive() {
                    let _ = super::shim::signal(&rt.layout.socket(&inst.meta.id), nix::libc::SIGKILL).await;
                    state.shim.signal(nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
    for (p, owner) in runtime_processes(&rt.layout.pods_dir()) {
        if owner == uid {
            p.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
    if let Some(rec) = records::read_sandbox(&dir) {
        if let Err(e) = wsandbox::teardown(rt, None, uid, &rec).await {
            tracing::warn!(uid, error = %e, "cleaning up an orphaned sandbox");
        }
    }
    sandbox::unpin_netns(&rt.layout.netns_path(uid));
    if let Some(pod) = records::read_pod(&dir) {
        let _ = std::fs::remove_dir_all(rt.layout.pod_logs_dir(&pod.namespace, &pod.name, uid));
    }
    let _ = std::fs::remove_dir_all(&dir);
    tracing::info!(uid, "removed an orphaned pod");
}

/// Sweeps what belongs to no pod in `live`: pod dirs, pins, processes, then CNI GC with the live sandboxes.
pub async fn sweep(rt: &PodRuntime, live: &HashSet<String>) {
    for uid in pod_dirs(rt) {
        if !live.contains(&uid) {
            cleanup(rt, &uid).await;
        }
    }
    if let Ok(pins) = std::fs::read_dir(rt.layout.netns_dir()) {
        for p in pins.flatten() {
            let uid = p.file_name().to_string_lossy().into_owned();
            if !live.contains(&uid) {
                sandbox::unpin_netns(&p.path());
            }
        }
    }
    for (p, owner) in runtime_processes(&rt.layout.pods_dir()) {
        if !live.contains(&owner) {
            p.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
    if let Ok(logs) = std::fs::read_dir(rt.layout.logs_dir()) {
        for l in logs.flatten() {
            let name = l.file_name().to_string_lossy().into_owned();
            let uid = name.rsplit('_').next().unwrap_or_default().to_string();
            if !live.contains(&uid) {
                let _ = std::fs::remove_dir_all(l.path());
            }
        }
    }
    if rt.network.ready() {
        let sandboxes: Vec<String> =
            live.iter().filter_map(|uid| records::read_sandbox(&rt.layout.pod_dir(uid))).map(|r| r.id).collect();
        match rt.network.gc(&sandboxes).await {
            Ok(deleted) => {
                for a in deleted {
                    tracing::info!(sandbox = %a.container_id, "removed an orphaned network attachment");
                }
            }
            Err(e) => tracing::warn!(error = %e, "CNI GC failed"),
        }
    }
}

/// The sockets dir's entries whose shim is gone (a crashed shim leaves its socket).
pub fn stale_sockets(sock_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(sock_dir)
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| std::os::unix::net::UnixStream::connect(p).is_err()).collect()
        })
        .unwrap_or_default()
}
