//! `knet-lab up`: builds the lab — the underlay switch, the root namespace's one veth into it, a namespace per
//! host plugged in — then runs each host's bring-up script inside it (control-plane, outside, workers) and
//! waits until every worker's Node is Ready. `lab.json` is written first, so `down` can undo a half-built lab.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;

use crate::config::{ConfigError, Host, LabConfig, Role};
use crate::lock::{LabLock, LockError};
use crate::netns::{Netns, NetnsError};
use crate::scripts::{self, ScriptError};
use crate::topology::Underlay;

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub config: LabConfig,
    /// Where the knet binaries are (next to knet-lab's own executable).
    pub bin_dir: PathBuf,
    /// How long to wait for the Nodes to be Ready.
    pub wait: Duration,
    /// Whether to wait for the Nodes at all.
    pub wait_ready: bool,
    /// `background` or `systemd` (see `lab/hosts/common.sh`).
    pub supervisor: String,
}

/// Why the lab could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("a lab is already up (state in {0}); run `knet-lab down` first")]
    AlreadyUp(String),
    #[error("network namespace {0} already exists; run `knet-lab down` first")]
    NetnsExists(String),
    #[error("missing binaries in {dir}: {names} (build them: cargo build --workspace --bins)")]
    MissingBinaries { dir: String, names: String },
    #[error("building the lab network: {0}")]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("loading the admin kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("the nodes did not become Ready within {timeout:?}:\n{problems}")]
    NotReady { timeout: Duration, problems: String },
}

/// The binaries the lab runs.
pub fn needed_binaries(config: &LabConfig) -> Vec<&'static str> {
    let mut names = vec!["knet-apiserver", "knet-controllers", "knet-node-agent", "knet-lab"];
    if config.cni == "knet-cni" {
        names.push("knet-cni");
    }
    names
}

fn prefixed(ip: std::net::Ipv4Addr, net: Ipv4Net) -> Ipv4Net {
    Ipv4Net::new(ip, net.prefix_len()).unwrap_or(net)
}

/// The environment a host's script gets.
pub fn script_env(opts: &UpOptions, host: &Host) -> BTreeMap<String, String> {
    let c = &opts.config;
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("KNET_BIN_DIR", opts.bin_dir.display().to_string());
    set("KNET_HOST_DIR", c.host_dir(&host.name).display().to_string());
    set("KNET_SUPERVISOR", opts.supervisor.clone());
    set("KNET_NODE_IP", host.ip.to_string());
    match host.role {
        Role::ControlPlane => {
            set("KNET_API_PORT", c.api_port.to_string());
            set("KNET_ADMIN_KUBECONFIG", c.admin_kubeconfig().display().to_string());
            let workers: Vec<String> =
                c.hosts().into_iter().filter(|h| h.role == Role::Worker).map(|h| h.name).collect();
            set("KNET_WORKERS", workers.join(" "));
            set("KNET_KUBECONFIG_DIR", c.state_dir.join("kubeconfigs").display().to_string());
            set("KNET_CLUSTER_CIDR", c.cluster_cidr.clone());
            set("KNET_SERVICE_CIDR", c.service_cidr.clone());
            set("KNET_LB_POOL", c.lb_pool.clone());
        }
        Role::Worker => {
            set("KNET_NODE_NAME", host.name.clone());
            set(
                "KNET_KUBECONFIG",
                c.state_dir.join("kubeconfigs").join(format!("{}.kubeconfig", host.name)).display().to_string(),
            );
            set("KNET_CNI_PLUGIN", c.cni.clone());
            set("KNET_BACKEND", c.backend.clone());
            set("KNET_NAMESERVER", c.outside_ip.to_string());
            set("KNET_CNI_BIN_DIRS", format!("{},/usr/lib/cni", opts.bin_dir.display()));
        }
        Role::Outside => {}
    }
    env
}

/// Brings the lab up (see the module doc). Prints progress to stderr.
pub async fn up(opts: &UpOptions) -> Result<(), UpError> {
    let c = &opts.config;
    c.validate()?;
    let missing: Vec<&str> = needed_binaries(c).into_iter().filter(|b| !opts.bin_dir.join(b).is_file()).collect();
    if !missing.is_empty() {
        return Err(UpError::MissingBinaries { dir: opts.bin_dir.display().to_string(), names: missing.join(", ") });
    }
    let _lock = LabLock::acquire(Path::new(crate::lock::LOCK_FILE))?;
    if LabConfig::load(&c.state_dir)?.is_some() {
        return Err(UpError::AlreadyUp(c.state_dir.display().to_string()));
    }
    if let Some(ns) = c.namespaces().into_iter().find(|n| Netns::named(n.as_str()).exists()) {
        return Err(UpError::NetnsExists(ns));
    }
    c.save()?;

    eprintln!("knet-lab: building the underlay {} and {} hosts", c.underlay, c.hosts().len());
    let underlay = Underlay::create(&c.underlay_netns(), "br0")?;
    underlay.attach_root(&c.root_if, "u-host", prefixed(c.host_ip, c.underlay), c.mtu)?;
    for host in c.hosts() {
        let ns = Netns::create(&host.netns)?;
        underlay.attach(&ns, "eth0", &host.port, prefixed(host.ip, c.underlay), c.mtu)?;
        if host.role != Role::Outside {
            // "The internet" is the outside host: it answers or drops, nothing leaves the machine.
            ns.ip(&["route", "add", "default", "via", &c.outside_ip.to_string()])?;
        }
    }

    let script_dir = scripts::install(&c.state_dir.join("hosts"))?;
    let order = |role: Role| c.hosts().into_iter().filter(move |h| h.role == role);
    for host in order(Role::ControlPlane).chain(order(Role::Outside)).chain(order(Role::Worker)) {
        let script = match host.role {
            Role::ControlPlane => "control-plane.sh",
            Role::Worker => "worker.sh",
            Role::Outside => "outside.sh",
        };
        eprintln!("knet-lab: bringing up {} ({script})", host.name);
        let log = c.host_dir(&host.name).join("log").join("bringup.log");
        scripts::run(&Netns::named(&host.netns), &script_dir.join(script), &script_env(opts, &host), &log)?;
    }

    if !opts.wait_ready {
        return Ok(());
    }
    eprintln!("knet-lab: waiting up to {:?} for the nodes to be Ready", opts.wait);
    wait_ready(c, opts.wait).await
}

/// What keeps each worker from being a Ready Node (empty: all Ready).
pub fn readiness_problems(config: &LabConfig, nodes: &[Node]) -> Vec<String> {
    let mut problems = Vec::new();
    for host in config.hosts().into_iter().filter(|h| h.role == Role::Worker) {
        let log = config.host_dir(&host.name).join("log").join("node-agent.log");
        let Some(node) = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(host.name.as_str())) else {
            problems.push(format!(
                "{}: no Node object yet (is knet-node-agent running in {}? see {})",
                host.name,
                host.netns,
                log.display()
            ));
            continue;
        };
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
        match ready {
            Some(c) if c.status == "True" => {}
            Some(c) => problems.push(format!(
                "{}: Ready={} ({}: {}); see {}",
                host.name,
                c.status,
                c.reason.as_deref().unwrap_or("no reason"),
                c.message.as_deref().unwrap_or(""),
                log.display()
            )),
            None => problems.push(format!("{}: no Ready condition yet; see {}", host.name, log.display())),
        }
    }
    problems
}

async fn wait_ready(config: &LabConfig, timeout: Duration) -> Result<(), UpError> {
    let kc = knet_component_base::kubeconfig::load(Some(&config.admin_kubeconfig()))
        .await
        .map_err(|e| UpError::Kubeconfig(e.to_string()))?;
    let client = kube::Client::try_from(kc).map_err(|e| UpError::Kubeconfig(e.to_string()))?;
    let api: kube::Api<Node> = kube::Api::all(client);
    let deadline = Instant::now() + timeout;
    loop {
        let problems = match api.list(&Default::default()).await {
            Ok(list) => readiness_problems(config, &list.items),
            Err(e) => vec![format!("listing Nodes: {e}")],
        };
        if problems.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(UpError::NotReady { timeout, problems: problems.join("\n") });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How to use the lab, printed after `up`.
pub fn usage(config: &LabConfig) -> String {
    let kc = config.admin_kubeconfig();
    format!(
        "The lab is up: control-plane {cp}, workers {w}, outside {out} (underlay {net}, this machine {host}).\n\
         Use it with:\n  export KUBECONFIG={kc}\n  kubectl get nodes -o wide\n\
         Run a command on a host:  knet-lab exec worker-1 -- ip route\n\
         Tear it down:             knet-lab down\n",
        cp = config.control_plane_ip,
        w = config
            .hosts()
            .iter()
            .filter(|h| h.role == Role::Worker)
            .map(|h| format!("{}={}", h.name, h.ip))
            .collect::<Vec<_>>()
            .join(" "),
        out = config.outside_ip,
        net = config.underlay,
        host = config.host_ip,
        kc = kc.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: Option<(&str, &str)>) -> Node {
        let conditions: Vec<serde_json::Value> = ready
            .map(|(status, reason)| serde_json::json!({"type": "Ready", "status": status, "reason": reason, "message": "m"}))
            .into_iter()
            .collect();
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "status": {"conditions": conditions}}))
            .unwrap()
    }

    #[test]
    fn says_which_node_is_missing_what() {
        let config = LabConfig { workers: 3, ..LabConfig::default() };
        let nodes = vec![
            node("worker-1", Some(("True", "KubeletReady"))),
            node("worker-2", Some(("False", "NetworkNotReady"))),
        ];
        let problems = readiness_problems(&config, &nodes);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("worker-2: Ready=False (NetworkNotReady: m)"), "{}", problems[0]);
        assert!(problems[0].contains("/var/lib/knet-lab/worker-2/log/node-agent.log"));
        assert!(problems[1].starts_with("worker-3: no Node object yet (is knet-node-agent running in knet-worker-3?"));
        let all_ready: Vec<Node> =
            (1..=3).map(|i| node(&format!("worker-{i}"), Some(("True", "KubeletReady")))).collect();
        assert!(readiness_problems(&config, &all_ready).is_empty());
        let unknown = vec![node("worker-1", None)];
        assert!(readiness_problems(&LabConfig { workers: 1, ..LabConfig::default() }, &unknown)[0]
            .contains("no Ready condition"));
    }

    #[test]
    fn scripts_get_the_fixed_flags_inputs() {
        let config = LabConfig::default();
        let opts = UpOptions {
            config: config.clone(),
            bin_dir: "/opt/knet/bin".into(),
            wait: Duration::from_secs(1),
            wait_ready: false,
            supervisor: "background".into(),
        };
        let worker = config.find_host("worker-2").unwrap();
        let env = script_env(&opts, &worker);
        assert_eq!(env["KNET_NODE_NAME"], "worker-2");
        assert_eq!(env["KNET_NODE_IP"], "192.168.56.12");
        assert_eq!(env["KNET_NAMESERVER"], "192.168.56.200");
        assert_eq!(env["KNET_CNI_BIN_DIRS"], "/opt/knet/bin,/usr/lib/cni");
        assert_eq!(env["KNET_KUBECONFIG"], "/var/lib/knet-lab/kubeconfigs/worker-2.kubeconfig");
        let cp = script_env(&opts, &config.find_host("control-plane").unwrap());
        assert_eq!(cp["KNET_WORKERS"], "worker-1 worker-2");
        assert_eq!(cp["KNET_LB_POOL"], "192.168.56.240-192.168.56.250");
        assert!(usage(&config).contains("export KUBECONFIG=/var/lib/knet-lab/admin.kubeconfig"));
    }
}
