//! Issue 4, test 4 (root), on one real 2-worker `knet-lab`:
//! - deleting a pod frees its IP: its IPAM lease file, veth, pinned namespace, mounts, pod dir and runtime
//!   processes are gone from the node (what the node holds is compared with before the pod);
//! - 100 pods (a Deployment spread over both workers) created and deleted leave no veth, pinned netns, mount,
//!   IPAM lease, pod dir or runtime process on either node (create → all Ready and delete → clean are timed);
//! - a node agent killed with SIGKILL and started again with the same command line adopts its pods: same
//!   container processes (pid and start time), same IPs, still Running and Ready, restart counts unchanged,
//!   still serving and reachable with `kubectl exec`; a pod deleted while the agent was down is finished and
//!   cleaned up by the new agent;
//! - `knet-lab down` with real pods still running leaves nothing behind (namespaces, root links, addresses,
//!   routes, nftables tables, mounts, processes, files). `xtests/tests/lab_lifecycle.rs` covers `down` of a
//!   lab without pods and after a crashed `up`; this adds real sandboxes, veths and IPAM state.
//!
//! The IP release and the agent restart are also run on a lab with Debian's reference plugins and on one with
//! the VXLAN backend.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use xtests::apiserver::bin_dir;
use xtests::e2e::{blocking, ok, wait_ready, Checks, LabHost, NodeState, ProcessIdentity};
use xtests::lab::{require_root, Lab, LabOptions, Snapshot, TEST_STATE_DIR};
use xtests::{wait, Kubectl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_on_a_lab() -> Result<()> {
    let test = "pod_lifecycle_on_a_lab";
    if !require_root(test) {
        return Ok(());
    }
    let start = Instant::now();
    let before = snapshot()?;
    let mut lab = Lab::up(LabOptions::default()).await?;
    eprintln!("{test}: lab up in {:.1?}", start.elapsed());
    let k = lab.kubectl();
    let w1 = LabHost::of(&lab, "worker-1")?;
    let w2 = LabHost::of(&lab, "worker-2")?;
    let empty = (w1.state()?, w2.state()?);

    let mut checks = Checks::new(test);
    checks.run("deleting a pod frees its IP", delete_frees_ip(&k, &w1, &empty.0)).await;
    checks.run("100 pods created and deleted leave nothing", hundred_pods(&k, [&w1, &w2], &empty)).await;
    checks.run("a SIGKILLed agent, started again, adopts its pods", agent_restart(&lab, &k, &w1, &w2)).await;
    if !checks.all_ok() {
        eprintln!("{}", lab.status().unwrap_or_default());
        eprintln!("--- worker-1 agent log (tail):\n{}", tail(&w1.agent_log(), 60));
    }
    // Last: `down` with the adopted pods (and their sandboxes, veths, leases) still there.
    let down_start = Instant::now();
    let down = lab.down();
    eprintln!("{test}: knet-lab down in {:.1?}", down_start.elapsed());
    let down_check = async {
        down?;
        nothing_left(&before).await
    };
    checks.run("knet-lab down with running pods leaves nothing", down_check).await;
    eprintln!("{test}: wall time {:.1?}", start.elapsed());
    checks.finish()
}

/// The same pod lifecycle with Debian's reference `bridge` + `host-local` plugins as the CNI (the adopted
/// sandboxes are CHECKed with them, their IPAM files are host-local's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_with_debian_reference_plugins() -> Result<()> {
    let opts = LabOptions { cni: "bridge".into(), ..LabOptions::default() };
    delete_and_restart("pod_lifecycle_with_debian_reference_plugins", opts).await
}

/// The same with the VXLAN backend (the restarted agent adopts the overlay: cross-node traffic to the adopted
/// pod keeps flowing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_with_vxlan() -> Result<()> {
    delete_and_restart("pod_lifecycle_with_vxlan", LabOptions { backend: "vxlan".into(), ..LabOptions::default() })
        .await
}

async fn delete_and_restart(test: &str, opts: LabOptions) -> Result<()> {
    if !require_root(test) {
        return Ok(());
    }
    let start = Instant::now();
    let lab = Lab::up(opts).await?;
    eprintln!("{test}: lab up in {:.1?}", start.elapsed());
    let k = lab.kubectl();
    let w1 = LabHost::of(&lab, "worker-1")?;
    let w2 = LabHost::of(&lab, "worker-2")?;
    let empty = w1.state()?;
    let mut checks = Checks::new(test);
    checks.run("deleting a pod frees its IP", delete_frees_ip(&k, &w1, &empty)).await;
    checks.run("a SIGKILLed agent, started again, adopts its pods", agent_restart(&lab, &k, &w1, &w2)).await;
    if !checks.all_ok() {
        eprintln!("{}", lab.status().unwrap_or_default());
        eprintln!("--- worker-1 agent log (tail):\n{}", tail(&w1.agent_log(), 60));
    }
    eprintln!("{test}: wall time {:.1?}", start.elapsed());
    checks.finish()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn snapshot() -> Result<Snapshot> {
    Ok(Snapshot::take(&bin_dir()?, &[Path::new(TEST_STATE_DIR), Path::new("/run/knet-lab.lock")]))
}

/// Whether a difference could be the lab's (other tests on this machine make namespaces and mounts of their
/// own, with other names and under other dirs).
fn labs(item: &str) -> bool {
    match item.split_once(": ") {
        Some(("namespace", name)) => name.starts_with("knet-"),
        Some(("mount", m)) => m.contains(TEST_STATE_DIR) || m.contains("/run/netns/knet-"),
        _ => true,
    }
}

/// Waits (zombies need a moment to be reaped) until nothing the lab could have made is left.
async fn nothing_left(before: &Snapshot) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = before.added_in(&snapshot()?).into_iter().filter(|i| labs(i)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("knet-lab down left behind:\n{}", left.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the node holds nothing more than `baseline`.
async fn node_back_to(host: &LabHost, baseline: &NodeState, timeout: Duration) -> Result<()> {
    wait::until(timeout, &format!("{} to hold nothing more than before", host.name), || async {
        let left = baseline.added_in(&host.state()?);
        if left.is_empty() {
            Ok(Some(()))
        } else {
            bail!("left: {left:?}")
        }
    })
    .await
}

async fn delete_frees_ip(k: &Kubectl, w1: &LabHost, empty: &NodeState) -> Result<()> {
    k.apply_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: freed}\nspec:\n  nodeName: worker-1\n  \
         terminationGracePeriodSeconds: 2\n  containers: [{name: c, image: busybox, command: [sleep, '3600']}]\n",
    )?
    .ok()?;
    wait_ready(k, "default", &["pod/freed"], Duration::from_secs(60)).await?;
    let ip = ok(k, &["get", "pod", "freed", "-o", "jsonpath={.status.podIP}"])?;
    let lease = w1.lease_of(&ip).with_context(|| format!("no IPAM lease for {ip} on worker-1"))?;
    // What the pod added, so the comparison below can fail.
    let added = empty.added_in(&w1.state()?);
    for kind in ["veth: ", "pinned netns: ", "mount: ", "IPAM lease: ", "pod dir: ", "runtime process: "] {
        ensure!(added.iter().any(|a| a.starts_with(kind)), "the pod added no {kind:?} on worker-1: {added:?}");
    }
    ok(k, &["delete", "pod", "freed", "--timeout=60s"])?;
    node_back_to(w1, empty, Duration::from_secs(10)).await?;
    ensure!(!lease.exists(), "{} is still there", lease.display());
    Ok(())
}

const PODS: usize = 100;

async fn hundred_pods(k: &Kubectl, hosts: [&LabHost; 2], empty: &(NodeState, NodeState)) -> Result<()> {
    let k = k.clone().with_timeout(Duration::from_secs(240));
    let start = Instant::now();
    k.apply_yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: scale}}\nspec:\n  replicas: {PODS}\n  \
         selector: {{matchLabels: {{app: scale}}}}\n  template:\n    metadata: {{labels: {{app: scale}}}}\n    \
         spec:\n      terminationGracePeriodSeconds: 2\n      \
         containers: [{{name: c, image: busybox, command: [sleep, '3600']}}]\n"
    ))?
    .ok()?;
    let k2 = k.clone();
    blocking(move || ok(&k2, &["rollout", "status", "deployment/scale", "--timeout=200s"])).await?;
    let ready = start.elapsed();
    let k2 = k.clone();
    let placed = blocking(move || {
        ok(
            &k2,
            &[
                "get",
                "pods",
                "-l",
                "app=scale",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP}{\"\\n\"}{end}",
            ],
        )
    })
    .await?;
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ips: Vec<&str> = Vec::new();
    for line in placed.lines() {
        let (node, ip) = line.split_once(' ').with_context(|| format!("bad line {line:?}"))?;
        *per_node.entry(node).or_default() += 1;
        ips.push(ip);
    }
    ips.sort_unstable();
    ips.dedup();
    ensure!(ips.len() == PODS && !ips.contains(&""), "{} distinct pod IPs for {PODS} pods", ips.len());
    ensure!(per_node.len() == 2 && per_node.values().all(|n| *n >= 10), "placement {per_node:?}");
    let leases = hosts[0].state()?.ipam_leases.len() + hosts[1].state()?.ipam_leases.len();
    ensure!(leases == PODS, "{leases} IPAM leases for {PODS} pods");

    let del = Instant::now();
    let k2 = k.clone();
    blocking(move || ok(&k2, &["delete", "deployment", "scale", "--timeout=200s"])).await?;
    wait::until(Duration::from_secs(180), "every scale pod to be gone", || async {
        let k = k.clone();
        let left = blocking(move || ok(&k, &["get", "pods", "-l", "app=scale", "-o", "name"])).await?;
        let n = left.lines().count();
        if n == 0 {
            Ok(Some(()))
        } else {
            bail!("{n} pods left")
        }
    })
    .await?;
    for (host, baseline) in [(hosts[0], &empty.0), (hosts[1], &empty.1)] {
        node_back_to(host, baseline, Duration::from_secs(30)).await?;
    }
    eprintln!(
        "hundred_pods: {PODS} pods ({per_node:?}) Ready in {ready:.1?}; deleted and cleaned from both nodes in {:.1?}",
        del.elapsed()
    );
    Ok(())
}

/// What must not change when an agent restarts, per pod.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    uid: String,
    ip: String,
    phase: String,
    ready: String,
    restarts: i32,
    process: ProcessIdentity,
}

async fn observe(api: &Api<Pod>, host: &LabHost, name: &str) -> Result<Observed> {
    let pod = api.get(name).await?;
    let uid = pod.metadata.uid.context("no uid")?;
    let status = pod.status.context("no status")?;
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status)
        .unwrap_or_default();
    let cs = status.container_statuses.unwrap_or_default();
    let c = cs.first().context("no container status")?;
    Ok(Observed {
        process: host.container_process(&uid, &c.name)?,
        uid,
        ip: status.pod_ip.unwrap_or_default(),
        phase: status.phase.unwrap_or_default(),
        ready,
        restarts: c.restart_count,
    })
}

const ADOPTED: &str = "
apiVersion: v1
kind: Pod
metadata: {name: keep-web}
spec:
  nodeName: worker-1
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --udp-port=-1]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: keep-sleep}
spec:
  nodeName: worker-1
  containers: [{name: c, image: busybox, command: [sleep, '3600']}]
---
apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  nodeName: worker-1
  terminationGracePeriodSeconds: 2
  containers: [{name: c, image: busybox, command: [sleep, '3600']}]
";

/// worker-1's Ready condition: its status and last transition time.
async fn node_ready_since(nodes: &Api<Node>) -> Result<String> {
    let node = nodes.get("worker-1").await?;
    let c = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .context("worker-1 has no Ready condition")?;
    ensure!(c.status == "True", "worker-1 is not Ready: {c:?}");
    Ok(format!("{} since {:?}", c.status, c.last_transition_time.map(|t| t.0.to_string())))
}

async fn agent_restart(lab: &Lab, k: &Kubectl, w1: &LabHost, w2: &LabHost) -> Result<()> {
    k.apply_yaml(ADOPTED)?.ok()?;
    wait_ready(k, "default", &["pod/keep-web", "pod/keep-sleep", "pod/doomed"], Duration::from_secs(60)).await?;
    let api: Api<Pod> = Api::default_namespaced(lab.client().await?);
    let mut before = BTreeMap::new();
    for name in ["keep-web", "keep-sleep"] {
        before.insert(name, observe(&api, w1, name).await?);
    }
    let doomed_ip = ok(k, &["get", "pod", "doomed", "-o", "jsonpath={.status.podIP}"])?;
    let doomed_uid = ok(k, &["get", "pod", "doomed", "-o", "jsonpath={.metadata.uid}"])?;
    let web_url = format!("http://{}:8080/clientip", before["keep-web"].ip);
    // worker-2 reaches the pod from one of its own addresses (its underlay IP with host-gw, its VXLAN
    // device's with VXLAN).
    let w2_addresses = w2.addresses()?;
    let from_w2 = |answer: &str| answer.rsplit_once(':').is_some_and(|(ip, _)| w2_addresses.iter().any(|a| a == ip));
    let old_agent = w1.agent_pid()?;
    let nodes: Api<Node> = Api::all(lab.client().await?);
    let ready_since = node_ready_since(&nodes).await?;

    let cmd = w1.kill9_agent()?;
    let killed = Instant::now();
    // With the agent gone the pods keep running and serving (the datapath is the kernel's).
    let (served, out, err) = w2.run("curl", &["-sS", "--max-time", "3", &web_url])?;
    ensure!(served && from_w2(&out), "keep-web without its agent: {out}{err}");
    // Deleted while nobody runs it: the pod waits for its node.
    ok(k, &["delete", "pod", "doomed", "--wait=false"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let new_agent = w1.start_agent(&cmd)?;
    ensure!(new_agent != old_agent, "the agent pid did not change");

    // The new agent finishes the deleted pod and cleans up after it (its IP lease, pod dir).
    wait::until(Duration::from_secs(60), "the new agent to finish pod doomed", || async {
        let out = k.run(&["get", "pod", "doomed"])?;
        Ok((!out.success() && out.stderr.contains("NotFound")).then_some(()))
    })
    .await?;
    wait::until(Duration::from_secs(20), "doomed's IP lease to go", || async {
        Ok(w1.lease_of(&doomed_ip).is_none().then_some(()))
    })
    .await?;
    eprintln!(
        "agent_restart: the new agent finished a pod deleted while it was down {:.1?} after the kill",
        killed.elapsed()
    );
    // For a few sync periods of the new agent the pod without a probe stays Ready throughout (a NotReady
    // node status at start-up made the node lifecycle controller mark it NotReady), then nothing about the
    // adopted pods has changed.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let now = observe(&api, w1, "keep-sleep").await?;
        ensure!(now.ready == "True", "keep-sleep went NotReady after the agent restart: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = node_ready_since(&nodes).await?;
    ensure!(since == ready_since, "worker-1's Ready condition changed across the restart ({ready_since} → {since})");
    for (name, was) in &before {
        let now = observe(&api, w1, name).await?;
        ensure!(&now == was, "{name} changed across the agent restart:\nbefore {was:?}\nafter  {now:?}");
        ensure!(now.phase == "Running" && now.ready == "True", "{name}: {now:?}");
        ensure!(now.process.alive(), "{name}'s container process {:?} is gone", now.process);
    }
    let doomed_dir = w1.dir.join("pods").join(&doomed_uid);
    ensure!(!doomed_uid.is_empty() && !doomed_dir.exists(), "{} is still there", doomed_dir.display());
    // The new agent serves the kubelet API for adopted pods, and they still serve.
    let host = ok(k, &["exec", "keep-sleep", "--", "hostname"])?;
    ensure!(host == "keep-sleep\n", "{host:?}");
    let (served, out, err) = w2.run("curl", &["-sS", "--max-time", "3", &web_url])?;
    ensure!(served && from_w2(&out), "keep-web after the restart: {out}{err}");
    Ok(())
}
