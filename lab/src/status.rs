//! `knet-lab status`: the hosts (namespace, address, processes from their pid files) and `kubectl get nodes`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::LabConfig;
use crate::netns::Netns;

/// The kubectl to use: `$KNET_KUBECTL`, else `target/tools/kubectl` beside the binaries' `target/<profile>`,
/// else `kubectl` on PATH.
pub fn kubectl_binary(bin_dir: &Path) -> PathBuf {
    if let Some(k) = std::env::var_os("KNET_KUBECTL") {
        return PathBuf::from(k);
    }
    let beside = bin_dir.join("../tools/kubectl");
    if beside.is_file() {
        return beside;
    }
    PathBuf::from("kubectl")
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The status report.
pub fn status(config: &LabConfig, bin_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab: {} workers, backend {}, cni {}, underlay {} (this machine {} on {}), state {}",
        config.workers,
        config.backend,
        config.cni,
        config.underlay,
        config.host_ip,
        config.root_if,
        config.state_dir.display()
    );
    let _ = writeln!(out, "{:<15} {:<20} {:<16} PROCESSES", "HOST", "NETNS", "ADDRESS");
    for host in config.hosts() {
        let ns = Netns::named(&host.netns);
        let netns = if ns.exists() { host.netns.clone() } else { format!("{} (missing)", host.netns) };
        let mut processes = Vec::new();
        if let Ok(entries) = std::fs::read_dir(config.host_dir(&host.name).join("run")) {
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().trim_end_matches(".pid").to_string();
                let pid: i32 = std::fs::read_to_string(e.path()).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
                let state = if pid > 0 && alive(pid) { "running" } else { "dead" };
                processes.push(format!("{name}[{pid}] {state}"));
            }
        }
        let _ = writeln!(out, "{:<15} {:<20} {:<16} {}", host.name, netns, host.ip, processes.join(", "));
    }
    let kubectl = kubectl_binary(bin_dir);
    let _ = writeln!(out, "\n$ kubectl get nodes -o wide");
    match std::process::Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &config.admin_kubeconfig().display().to_string(),
            "get",
            "nodes",
            "-o",
            "wide",
            "--request-timeout=5s",
        ])
        .env("KUBECACHEDIR", config.state_dir.join("kubecache"))
        .env("KUBERC", "off")
        .output()
    {
        Ok(o) => {
            out.push_str(&String::from_utf8_lossy(&o.stdout));
            out.push_str(&String::from_utf8_lossy(&o.stderr));
        }
        Err(e) => {
            let _ = writeln!(out, "(cannot run {}: {e})", kubectl.display());
        }
    }
    out
}
