//! A pod's sandbox: what the holder builds (rendered from the pod spec: image files, volume mounts, the
//! managed `/etc` files), then CNI ADD for its pinned network namespace; teardown is CNI DEL, the holder's end
//! and the pin's removal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use crate::cni::runtime::{pod_args, Attachment};
use crate::cni::POD_IFNAME;
use crate::pods::images::{self, ImageKind};
use crate::pods::nginx;
use crate::pods::records::SandboxRecord;
use crate::pods::runtime::PodRuntime;
use crate::pods::sandbox;
use crate::pods::sandbox::spec::{FileSpec, HolderSpec, MountSpec};

/// In-pod paths of the files the runtime manages.
pub const HOSTS: &str = "/etc/hosts";
pub const RESOLV: &str = "/etc/resolv.conf";
pub const HOSTNAME: &str = "/etc/hostname";

/// Node paths of the managed files in the pod dir.
pub fn managed_file(pod_dir: &Path, which: &str) -> PathBuf {
    pod_dir.join(match which {
        HOSTS => "etc-hosts",
        RESOLV => "resolv.conf",
        _ => "hostname",
    })
}

fn all_containers(pod: &Pod) -> Vec<&k8s_openapi::api::core::v1::Container> {
    pod.spec
        .as_ref()
        .map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()).collect())
        .unwrap_or_default()
}

/// Whether some container mounts a volume at `path`.
pub fn mounts_at(pod: &Pod, path: &str) -> bool {
    all_containers(pod).iter().flat_map(|c| c.volume_mounts.iter().flatten()).any(|m| m.mount_path == path)
}

/// The holder's spec for `pod` (pure given its inputs): image files, image programs, volumes, managed files.
pub fn holder_spec(
    pod: &Pod,
    pod_dir: &Path,
    hostname: Option<String>,
    volumes: &HashMap<String, PathBuf>,
    images_dir: &Path,
    agnhost: Option<&Path>,
) -> HolderSpec {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    let containers = all_containers(pod);
    let kinds: Vec<ImageKind> =
        containers.iter().map(|c| images::lookup(c.image.as_deref().unwrap_or_default()).kind).collect();
    let mut files = Vec::new();
    let nginx: Vec<_> = containers.iter().zip(&kinds).filter(|(_, k)| matches!(k, ImageKind::Nginx { .. })).collect();
    if !nginx.is_empty() {
        let https = nginx.iter().any(|(c, k)| {
            matches!(k, ImageKind::Nginx { https: true })
                || c.volume_mounts.iter().flatten().any(|m| m.mount_path.trim_end_matches('/') == nginx::SSL_DIR)
        });
        let ports: Vec<i32> = nginx
            .iter()
            .flat_map(|(c, _)| c.ports.iter().flatten())
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .map(|p| p.container_port)
            .collect();
        files.push(FileSpec { path: nginx::MAIN_CONF.into(), content: nginx::main_conf(), mode: 0o644 });
        files.push(FileSpec {
            path: nginx::DEFAULT_CONF.into(),
            content: nginx::default_conf(&ports, https),
            mode: 0o644,
        });
    }
    let mut mounts = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    let mut add = |m: MountSpec, mounts: &mut Vec<MountSpec>| {
        if !taken.contains(&m.target) {
            taken.push(m.target.clone());
            mounts.push(m);
        }
    };
    if kinds.iter().any(|k| matches!(k, ImageKind::Busybox { .. })) {
        let dir = images_dir.join("busybox");
        if dir.is_dir() {
            add(MountSpec { source: dir, target: images::BUSYBOX_DIR.into(), read_only: true }, &mut mounts);
        }
    }
    if kinds.iter().any(|k| matches!(k, ImageKind::Agnhost | ImageKind::Pause)) {
        if let Some(a) = agnhost {
            add(
                MountSpec { source: a.to_path_buf(), target: images::AGNHOST_PATH.into(), read_only: true },
                &mut mounts,
            );
        }
    }
    for c in &containers {
        for vm in c.volume_mounts.iter().flatten() {
            let Some(base) = volumes.get(&vm.name) else { continue };
            let source = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => base.join(sub),
                None => base.clone(),
            };
            add(
                MountSpec { source, target: vm.mount_path.clone(), read_only: vm.read_only.unwrap_or(false) },
                &mut mounts,
            );
        }
    }
    for which in [HOSTS, RESOLV, HOSTNAME] {
        if !mounts_at(pod, which) {
            add(
                MountSpec { source: managed_file(pod_dir, which), target: which.into(), read_only: false },
                &mut mounts,
            );
        }
    }
    HolderSpec { pod_dir: pod_dir.to_path_buf(), new_netns: !host_network, hostname, files, mounts }
}

/// A random 64-hex-digit ID (sandboxes and containers).
pub fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..4).map(|_| format!("{:016x}", rng.random::<u64>())).collect()
}

/// The CNI attachment of a pod's sandbox.
pub fn attachment(pod: &Pod, sandbox_id: &str, netns: &str) -> Attachment {
    Attachment {
        container_id: sandbox_id.to_string(),
        netns: netns.to_string(),
        ifname: POD_IFNAME.to_string(),
        args: pod_args(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
            sandbox_id,
            pod.metadata.uid.as_deref().unwrap_or_default(),
        ),
    }
}

/// Builds the sandbox: holder, pinned netns, CNI ADD. Returns the record (IPs included).
pub async fn create(rt: &PodRuntime, pod: &Pod, uid: &str, spec: &HolderSpec) -> Result<SandboxRecord, String> {
    let pod_dir = rt.layout.pod_dir(uid);
    let t0 = std::time::Instant::now();
    let holder = sandbox::start(&rt.exe, &pod_dir.join("holder.json"), spec).await.map_err(|e| e.to_string())?;
    tracing::debug!(uid, holder = holder.pid, ms = t0.elapsed().as_millis() as u64, "sandbox holder ready");
    let id = new_id();
    if !spec.new_netns {
        return Ok(SandboxRecord {
            id,
            holder,
            netns: None,
            ips: rt.node_ips.clone(),
            created_at: crate::pods::shim::crilog::now(),
        });
    }
    let netns = rt.layout.netns_path(uid);
    if let Err(e) = sandbox::pin_netns(&holder, &netns) {
        sandbox::stop(&holder).await;
        return Err(e.to_string());
    }
    // Recorded before CNI ADD (without IPs), so neither a GC sweep nor an agent restart in between can lose
    // track of the attachment.
    let pending = SandboxRecord {
        id: id.clone(),
        holder,
        netns: Some(netns.display().to_string()),
        ips: Vec::new(),
        created_at: crate::pods::shim::crilog::now(),
    };
    if let Err(e) = crate::pods::records::write_sandbox(&pod_dir, &pending) {
        sandbox::stop(&holder).await;
        sandbox::unpin_netns(&netns);
        return Err(e.to_string());
    }
    let att = attachment(pod, &id, &netns.display().to_string());
    let started = std::time::Instant::now();
    let result = rt.network.setup_pod(&att).await;
    rt.metrics.cni_add_duration.observe(started.elapsed().as_secs_f64());
    tracing::debug!(uid, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "CNI ADD");
    match result {
        Ok(net) => Ok(SandboxRecord {
            id,
            holder,
            netns: Some(netns.display().to_string()),
            ips: net.ips,
            created_at: crate::pods::shim::crilog::now(),
        }),
        Err(e) => {
            sandbox::stop(&holder).await;
            sandbox::unpin_netns(&netns);
            crate::pods::records::remove_sandbox(&pod_dir);
            Err(format!(
                "plugin type={:?} failed (add): {e}",
                rt.network.current().and_then(|l| l.plugins.first().map(|p| p.plugin_type.clone())).unwrap_or_default()
            ))
        }
    }
}

/// Tears a sandbox down: CNI DEL (also when the holder is already gone), the holder, the pin.
pub async fn teardown(rt: &PodRuntime, pod: Option<&Pod>, uid: &str, rec: &SandboxRecord) -> Result<(), String> {
    if let Some(netns) = &rec.netns {
        let path = PathBuf::from(netns);
        let netns_arg = if sandbox::is_pinned(&path) { netns.clone() } else { String::new() };
        let att = match pod {
            Some(p) => attachment(p, &rec.id, &netns_arg),
            None => Attachment {
                container_id: rec.id.clone(),
                netns: netns_arg,
                ifname: POD_IFNAME.into(),
                args: cached_args(rt, &rec.id).unwrap_or_default(),
            },
        };
        rt.network.teardown_pod(&att).await.map_err(|e| format!("CNI DEL of sandbox {}: {e}", rec.id))?;
    }
    sandbox::stop(&rec.holder).await;
    if let Some(netns) = &rec.netns {
        sandbox::unpin_netns(Path::new(netns));
    }
    let _ = uid;
    Ok(())
}

fn cached_args(rt: &PodRuntime, sandbox_id: &str) -> Option<Vec<(String, String)>> {
    rt.network
        .runtime()
        .cached_attachments()
        .ok()?
        .into_iter()
        .find(|c| c.container_id == sandbox_id)
        .map(|c| c.cni_args)
}

/// The holder is alive and (with its own network) its namespace is still pinned and has its addresses.
pub fn alive(rec: &SandboxRecord) -> bool {
    rec.holder.alive() && rec.netns.as_ref().is_none_or(|n| sandbox::is_pinned(Path::new(n)) && !rec.ips.is_empty())
}

/// Removes what a sandbox left without a record (the agent died while making it): processes of the pod,
/// the pin, and network attachments cached for the pod's UID.
pub async fn clean_unrecorded(rt: &PodRuntime, uid: &str) {
    for (p, owner) in crate::pods::orphans::runtime_processes(&rt.layout.pods_dir()) {
        if owner == uid {
            p.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
    let pin = rt.layout.netns_path(uid);
    let pinned = sandbox::is_pinned(&pin);
    if let Ok(cached) = rt.network.runtime().cached_attachments() {
        for c in cached.into_iter().filter(|c| c.cni_args.iter().any(|(k, v)| k == "K8S_POD_UID" && v == uid)) {
            let att = Attachment {
                container_id: c.container_id.clone(),
                netns: if pinned { pin.display().to_string() } else { String::new() },
                ifname: c.ifname.clone(),
                args: c.cni_args.clone(),
            };
            if let Err(e) = rt.network.teardown_pod(&att).await {
                tracing::warn!(uid, sandbox = %c.container_id, error = %e, "removing an unrecorded attachment");
            }
        }
    }
    sandbox::unpin_netns(&pin);
}

/// The pod's IPs as reported: the sandbox's, or the node's for host-network pods.
pub fn pod_ips(rec: Option<&SandboxRecord>) -> Vec<IpAddr> {
    rec.map(|r| r.ips.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn holder_spec_for_the_seed_https_nginx() {
        let p = pod(json!({
            "metadata": {"name": "my-nginx", "namespace": "default", "uid": "u"},
            "spec": {
                "volumes": [{"name": "secret-volume", "secret": {"secretName": "nginxsecret"}}],
                "containers": [{
                    "name": "nginxhttps", "image": "bprashanth/nginxhttps:1.0",
                    "ports": [{"containerPort": 443}, {"containerPort": 80}],
                    "volumeMounts": [{"mountPath": "/etc/nginx/ssl", "name": "secret-volume"}]
                }]
            }
        }));
        let vols: HashMap<String, PathBuf> =
            [("secret-volume".to_string(), PathBuf::from("/r/pods/u/volumes/s"))].into();
        let spec =
            holder_spec(&p, Path::new("/r/pods/u"), Some("my-nginx".into()), &vols, Path::new("/r/images"), None);
        assert!(spec.new_netns);
        assert_eq!(spec.hostname.as_deref(), Some("my-nginx"));
        let paths: Vec<&str> = spec.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d/default.conf"]);
        assert!(spec.files[1].content.contains("listen 443 ssl;") && spec.files[1].content.contains("listen 80;"));
        let mounts: Vec<(String, String, bool)> =
            spec.mounts.iter().map(|m| (m.source.display().to_string(), m.target.clone(), m.read_only)).collect();
        assert_eq!(
            mounts,
            [
                ("/r/pods/u/volumes/s".to_string(), "/etc/nginx/ssl".to_string(), false),
                ("/r/pods/u/etc-hosts".to_string(), "/etc/hosts".to_string(), false),
                ("/r/pods/u/resolv.conf".to_string(), "/etc/resolv.conf".to_string(), false),
                ("/r/pods/u/hostname".to_string(), "/etc/hostname".to_string(), false),
            ]
        );
    }

    #[test]
    fn holder_spec_images_sub_paths_and_host_network() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {
                "hostNetwork": true,
                "volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
                "containers": [
                    {"name": "a", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39"},
                    {"name": "b", "image": "busybox", "volumeMounts": [
                        {"mountPath": "/etc/hosts", "name": "cfg", "subPath": "hosts", "readOnly": true}
                    ]}
                ]
            }
        }));
        let images = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(images.path().join("busybox")).unwrap();
        let vols: HashMap<String, PathBuf> = [("cfg".to_string(), PathBuf::from("/v/cfg"))].into();
        let spec = holder_spec(&p, Path::new("/r/pods/u"), None, &vols, images.path(), Some(Path::new("/bin/agnhost")));
        assert!(!spec.new_netns && spec.hostname.is_none() && spec.files.is_empty());
        let targets: Vec<&str> = spec.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/.knet/busybox", "/agnhost", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]);
        assert_eq!(spec.mounts[2].source, PathBuf::from("/v/cfg/hosts"), "the user's /etc/hosts wins");
        assert!(spec.mounts[2].read_only);
    }

    #[test]
    fn ids_and_attachments() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        let p =
            pod(json!({"metadata": {"name": "web", "namespace": "prod", "uid": "u-1"}, "spec": {"containers": []}}));
        let att = attachment(&p, &id, "/r/netns/u-1");
        assert_eq!(att.ifname, "eth0");
        assert_eq!(
            crate::cni::runtime::render_args(&att.args),
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID=u-1")
        );
    }
}
