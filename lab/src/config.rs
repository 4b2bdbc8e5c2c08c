//! What a lab is made of: host names, addresses, namespaces, the backend and CNI plugin, where its files go.
//! Saved as `lab.json` in the state dir by `up` (first thing), so `down`, `status` and `exec` act on exactly
//! what was built — also after `up` crashed half-way.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The default state dir (every file the lab makes is under it).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/knet-lab";
/// The lock `up` and `down` hold while they run (one lab per machine).
pub const LOCK_FILE: &str = "/run/knet-lab.lock";
/// The file in the state dir that describes the lab.
pub const LAB_FILE: &str = "lab.json";

/// Everything that decides how a lab looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabConfig {
    pub state_dir: PathBuf,
    /// Prefix of every namespace name (`knet-` → `knet-worker-1`).
    pub prefix: String,
    pub workers: u32,
    /// `host-gw` or `vxlan`.
    pub backend: String,
    /// `knet-cni` or `bridge` (Debian's reference plugins).
    pub cni: String,
    pub underlay: Ipv4Net,
    /// The machine's own address on the underlay (on `root_if` in the root namespace).
    pub host_ip: Ipv4Addr,
    pub control_plane_ip: Ipv4Addr,
    /// Worker `i` (1-based) gets `first_worker_ip + i - 1`.
    pub first_worker_ip: Ipv4Addr,
    pub outside_ip: Ipv4Addr,
    /// The LoadBalancer pool handed to the controllers (`A-B`).
    pub lb_pool: String,
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub api_port: u16,
    pub mtu: u32,
    /// The root namespace's veth into the underlay.
    pub root_if: String,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            prefix: "knet-".into(),
            workers: 2,
            backend: "host-gw".into(),
            cni: "knet-cni".into(),
            underlay: Ipv4Net::new(Ipv4Addr::new(192, 168, 56, 0), 24).unwrap_or_default(),
            host_ip: Ipv4Addr::new(192, 168, 56, 1),
            control_plane_ip: Ipv4Addr::new(192, 168, 56, 10),
            first_worker_ip: Ipv4Addr::new(192, 168, 56, 11),
            outside_ip: Ipv4Addr::new(192, 168, 56, 200),
            lb_pool: "192.168.56.240-192.168.56.250".into(),
            cluster_cidr: "10.244.0.0/16".into(),
            service_cidr: "10.96.0.0/16".into(),
            api_port: 6443,
            mtu: 1500,
            root_if: "knet-lab0".into(),
        }
    }
}

/// What a host is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    ControlPlane,
    Worker,
    Outside,
}

/// One lab host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub role: Role,
    pub ip: Ipv4Addr,
    /// The network namespace.
    pub netns: String,
    /// The bridge port of its veth in the underlay namespace.
    pub port: String,
}

/// Why a configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} {ip} is not in the underlay {underlay}")]
    OutsideUnderlay { what: String, ip: Ipv4Addr, underlay: Ipv4Net },
    #[error("{0} workers do not fit: worker addresses would run past the underlay or into another host")]
    TooManyWorkers(u32),
    #[error("--backend must be host-gw or vxlan, not {0:?}")]
    Backend(String),
    #[error("--cni must be knet-cni or bridge, not {0:?}")]
    Cni(String),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl LabConfig {
    /// The hosts: control-plane, worker-1…N, outside.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts = vec![self.host("control-plane", Role::ControlPlane, self.control_plane_ip, "u-cp".into())];
        for i in 1..=self.workers {
            let ip = Ipv4Addr::from(u32::from(self.first_worker_ip).saturating_add(i - 1));
            hosts.push(self.host(&format!("worker-{i}"), Role::Worker, ip, format!("u-w{i}")));
        }
        hosts.push(self.host("outside", Role::Outside, self.outside_ip, "u-out".into()));
        hosts
    }

    fn host(&self, name: &str, role: Role, ip: Ipv4Addr, port: String) -> Host {
        Host { name: name.into(), role, ip, netns: format!("{}{name}", self.prefix), port }
    }

    /// The host called `name`.
    pub fn find_host(&self, name: &str) -> Option<Host> {
        self.hosts().into_iter().find(|h| h.name == name)
    }

    /// The underlay switch's namespace.
    pub fn underlay_netns(&self) -> String {
        format!("{}underlay", self.prefix)
    }

    /// Every namespace the lab makes.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.hosts().into_iter().map(|h| h.netns).collect();
        all.push(self.underlay_netns());
        all
    }

    /// Checks addresses, backend and plugin names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["host-gw", "vxlan"].contains(&self.backend.as_str()) {
            return Err(ConfigError::Backend(self.backend.clone()));
        }
        if !["knet-cni", "bridge"].contains(&self.cni.as_str()) {
            return Err(ConfigError::Cni(self.cni.clone()));
        }
        let underlay = self.underlay;
        let check = |what: &str, ip: Ipv4Addr| {
            if underlay.contains(&ip) && ip != underlay.network() && ip != underlay.broadcast() {
                Ok(())
            } else {
                Err(ConfigError::OutsideUnderlay { what: what.into(), ip, underlay })
            }
        };
        check("the host address", self.host_ip)?;
        let hosts = self.hosts();
        for h in &hosts {
            check(&h.name, h.ip)?;
        }
        let mut ips: Vec<Ipv4Addr> = hosts.iter().map(|h| h.ip).chain([self.host_ip]).collect();
        ips.sort();
        ips.dedup();
        if ips.len() != hosts.len() + 1 {
            return Err(ConfigError::TooManyWorkers(self.workers));
        }
        Ok(())
    }

    /// The state dir of `host` (its agent's `--root-dir`, logs, pid files).
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.state_dir.join(host)
    }

    /// The admin kubeconfig the user gets.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.state_dir.join("admin.kubeconfig")
    }

    /// The API server's URL.
    pub fn server_url(&self) -> String {
        format!("https://{}:{}", self.control_plane_ip, self.api_port)
    }

    pub fn lab_file(&self) -> PathBuf {
        self.state_dir.join(LAB_FILE)
    }

    /// Writes `lab.json`.
    pub fn save(&self) -> Result<(), ConfigError> {
        let path = self.lab_file();
        let shown = path.display().to_string();
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|source| ConfigError::Write { path: shown.clone(), source })?;
        let text =
            serde_json::to_string_pretty(self).map_err(|source| ConfigError::Parse { path: shown.clone(), source })?;
        std::fs::write(&path, text).map_err(|source| ConfigError::Write { path: shown, source })
    }

    /// Reads `lab.json` from `state_dir`; `None` when there is none (no lab).
    pub fn load(state_dir: &Path) -> Result<Option<LabConfig>, ConfigError> {
        let path = state_dir.join(LAB_FILE);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path: shown, source }),
        };
        serde_json::from_str(&text).map(Some).map_err(|source| ConfigError::Parse { path: shown, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lab_hosts() {
        let c = LabConfig::default();
        c.validate().unwrap();
        let hosts = c.hosts();
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["control-plane", "worker-1", "worker-2", "outside"]);
        assert_eq!(hosts[1].ip, Ipv4Addr::new(192, 168, 56, 11));
        assert_eq!(hosts[2].ip, Ipv4Addr::new(192, 168, 56, 12));
        assert_eq!(hosts[3].ip, Ipv4Addr::new(192, 168, 56, 200));
        assert_eq!(hosts[2].netns, "knet-worker-2");
        assert!(c.namespaces().contains(&"knet-underlay".to_string()));
        assert!(hosts.iter().all(|h| h.port.len() <= 15) && c.root_if.len() <= 15);
    }

    #[test]
    fn rejects_what_cannot_be_built() {
        let mut c = LabConfig { workers: 190, ..LabConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::TooManyWorkers(190))));
        c.workers = 300;
        assert!(c.validate().is_err());
        let c = LabConfig { backend: "ipip".into(), ..LabConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::Backend(_))));
        let c = LabConfig { outside_ip: Ipv4Addr::new(10, 0, 0, 1), ..LabConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::OutsideUnderlay { .. })));
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let c = LabConfig { state_dir: dir.path().to_path_buf(), workers: 3, ..LabConfig::default() };
        assert_eq!(LabConfig::load(dir.path()).unwrap(), None);
        c.save().unwrap();
        assert_eq!(LabConfig::load(dir.path()).unwrap(), Some(c));
    }
}
