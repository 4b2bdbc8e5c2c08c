//! Issue 4, test 2 (root): pods on a real 2-worker `knet-lab` reach each other by their IPs without NAT, on one
//! node and across nodes, and nodes reach pods — with host-gw (knet-cni), with VXLAN (knet-cni) and with
//! Debian's reference `bridge` + `host-local` plugins (host-gw). Three agnhost `netexec` pods: `a1` and `a2`
//! on worker-1 (one placed by a nodeSelector through the scheduler, one by nodeName), `b1` on worker-2.
//! `/clientip` must answer the true client: the calling pod's own IP, or an address of the calling node.
//! Also: Node InternalIPs are the lab's `--node-ip`s, pod IPs lie in their node's podCIDR, `kubectl get pods
//! -o wide` shows them, agnhost's `/dial` works across nodes, and the pod MTU fits the backend (VXLAN: the
//! underlay's 1500 less 50) with a request and answer bigger than one packet crossing nodes.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use xtests::e2e::{blocking, ok, table, wait_ready, Checks, LabHost};
use xtests::lab::{require_root, Lab, LabOptions};
use xtests::{wait, Kubectl};

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: a1, labels: {app: netexec}}
spec:
  nodeSelector: {kubernetes.io/hostname: worker-1}
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --udp-port=-1]
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: a2, labels: {app: netexec}}
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
metadata: {name: b1, labels: {app: netexec}}
spec:
  nodeSelector: {kubernetes.io/hostname: worker-2}
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --udp-port=-1]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"#;

/// A pod of the test and where it landed.
#[derive(Debug, Clone)]
struct Placed {
    name: String,
    ip: Ipv4Addr,
    node: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gw_with_knet_cni() -> Result<()> {
    pods_reach_pods("host_gw_with_knet_cni", LabOptions::default(), 1500).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_with_knet_cni() -> Result<()> {
    pods_reach_pods("vxlan_with_knet_cni", LabOptions { backend: "vxlan".into(), ..LabOptions::default() }, 1450).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gw_with_debian_reference_plugins() -> Result<()> {
    let opts = LabOptions { cni: "bridge".into(), ..LabOptions::default() };
    pods_reach_pods("host_gw_with_debian_reference_plugins", opts, 1500).await
}

async fn pods_reach_pods(test: &str, opts: LabOptions, pod_mtu: u32) -> Result<()> {
    if !require_root(test) {
        return Ok(());
    }
    let start = Instant::now();
    let lab = Lab::up(opts.clone()).await?;
    eprintln!("{test}: lab up ({} / {}) in {:.1?}", opts.backend, opts.cni, start.elapsed());
    let k = lab.kubectl();
    k.apply_yaml(PODS)?.ok()?;
    wait_ready(&k, "default", &["pod/a1", "pod/a2", "pod/b1"], Duration::from_secs(90)).await?;
    eprintln!("{test}: pods ready after {:.1?}", start.elapsed());
    let pods = placed(&lab).await?;
    let (a1, a2, b1) = (&pods[0], &pods[1], &pods[2]);

    let mut checks = Checks::new(test);
    checks.run("nodes and pod placement", nodes_and_placement(&lab, &pods)).await;
    checks.run("kubectl get pods -o wide", wide(&k, &pods)).await;
    checks.run("pod to pod on one node (a1 → a2)", pod_to_pod(&k, a1, a2)).await;
    checks.run("pod to pod across nodes (a1 → b1)", pod_to_pod(&k, a1, b1)).await;
    checks.run("pod to pod across nodes (b1 → a1)", pod_to_pod(&k, b1, a1)).await;
    checks.run("agnhost /dial across nodes (a2 dials b1)", dial(&lab, a2, b1)).await;
    checks.run("node to local pod (worker-1 → a1)", node_to_pod(&lab, "worker-1", a1)).await;
    checks.run("node to remote pod (worker-1 → b1)", node_to_pod(&lab, "worker-1", b1)).await;
    checks.run("node to remote pod (worker-2 → a2)", node_to_pod(&lab, "worker-2", a2)).await;
    checks.run("pod MTU", mtu(&k, &pods, pod_mtu)).await;
    checks.run("bigger than a packet across nodes", big_request(&k, b1, a1)).await;
    checks.run("the kubelet API wants the API server's client certificate", kubelet_api_refuses(&lab, &k)).await;
    if !checks.all_ok() {
        eprintln!("{}", lab.status().unwrap_or_default());
        for host in ["worker-1", "worker-2"] {
            let (_, routes, _) = lab.exec(host, &["ip", "route"])?;
            eprintln!(
                "--- {host} routes:\n{routes}--- {host} agent log (tail):\n{}",
                tail(&lab.log(host, "node-agent"))
            );
        }
    }
    eprintln!("{test}: wall time {:.1?}", start.elapsed());
    checks.finish()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn placed(lab: &Lab) -> Result<Vec<Placed>> {
    let api: Api<Pod> = Api::default_namespaced(lab.client().await?);
    let mut out = Vec::new();
    for name in ["a1", "a2", "b1"] {
        let pod = api.get(name).await?;
        let ip: Ipv4Addr = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).context("no podIP")?.parse()?;
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).context("not bound")?;
        // The dual-stack fields agree with the single ones: podIPs is [podIP], hostIPs [hostIP], and the host
        // IP is the node's underlay address.
        let status = pod.status.as_ref().context("no status")?;
        let pod_ips: Vec<String> = status.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
        ensure!(pod_ips == [ip.to_string()], "{name}: podIPs {pod_ips:?}, podIP {ip}");
        let host_ip = status.host_ip.clone().unwrap_or_default();
        let host_ips: Vec<String> = status.host_ips.iter().flatten().map(|h| h.ip.clone()).collect();
        let want_host = if node == "worker-1" { "192.168.56.11" } else { "192.168.56.12" };
        ensure!(host_ip == want_host && host_ips == [want_host], "{name}: hostIP {host_ip}, hostIPs {host_ips:?}");
        out.push(Placed { name: name.to_string(), ip, node });
    }
    Ok(out)
}

async fn nodes_and_placement(lab: &Lab, pods: &[Placed]) -> Result<()> {
    let api: Api<Node> = Api::all(lab.client().await?);
    for (name, want_ip) in [("worker-1", "192.168.56.11"), ("worker-2", "192.168.56.12")] {
        let node = api.get(name).await?;
        let status = node.status.context("no Node status")?;
        let internal: Vec<String> = status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
            .collect();
        ensure!(internal == vec![want_ip.to_string()], "{name}: InternalIP {internal:?}, want [{want_ip}]");
        let cidr: Ipv4Net =
            node.spec.and_then(|s| s.pod_cidr).context("no podCIDR")?.parse().context("podCIDR is not IPv4")?;
        for p in pods.iter().filter(|p| p.node == name) {
            ensure!(cidr.contains(&p.ip), "pod {} has {} outside {name}'s podCIDR {cidr}", p.name, p.ip);
        }
    }
    let nodes: Vec<(&str, &str)> = pods.iter().map(|p| (p.name.as_str(), p.node.as_str())).collect();
    ensure!(nodes == [("a1", "worker-1"), ("a2", "worker-1"), ("b1", "worker-2")], "placement: {nodes:?}");
    Ok(())
}

async fn wide(k: &Kubectl, pods: &[Placed]) -> Result<()> {
    let k = k.clone();
    let text = blocking(move || ok(&k, &["get", "pods", "-l", "app=netexec", "-o", "wide"])).await?;
    let rows = table(&text);
    ensure!(rows.len() == pods.len(), "{text}");
    for (row, p) in rows.iter().zip(pods) {
        let got = (row["NAME"].as_str(), row["STATUS"].as_str(), row["READY"].as_str(), row["IP"].as_str());
        ensure!(got == (p.name.as_str(), "Running", "1/1", p.ip.to_string().as_str()), "{text}");
        ensure!(row["NODE"] == p.node, "{text}");
    }
    Ok(())
}

/// Retries `f` for a few seconds (routes of a just-started lab may take a resync to appear) and returns its
/// first success.
async fn retry<T: Send + 'static>(what: &str, f: impl Fn() -> Result<T> + Send + Sync + Clone + 'static) -> Result<T> {
    wait::until(Duration::from_secs(15), what, || {
        let f = f.clone();
        async move { blocking(move || f().map(Some)).await }
    })
    .await
}

/// `/clientip`'s answer `IP:PORT` → IP.
fn client_ip(answer: &str) -> Result<Ipv4Addr> {
    let (ip, port) = answer.trim().rsplit_once(':').with_context(|| format!("not IP:PORT: {answer:?}"))?;
    port.parse::<u16>().with_context(|| format!("bad port in {answer:?}"))?;
    ip.parse().with_context(|| format!("bad IP in {answer:?}"))
}

async fn pod_to_pod(k: &Kubectl, from: &Placed, to: &Placed) -> Result<()> {
    let (k, from_name) = (k.clone(), from.name.clone());
    let url = format!("http://{}:8080/clientip", to.ip);
    let answer = retry(&format!("{} to answer {url}", from.name), move || {
        ok(&k, &["exec", &from_name, "--", "curl", "-sS", "--max-time", "3", &url])
    })
    .await?;
    let seen = client_ip(&answer)?;
    ensure!(seen == from.ip, "{} saw client {seen}, not {}'s own IP {} (NAT?)", to.name, from.name, from.ip);
    Ok(())
}

async fn dial(lab: &Lab, via: &Placed, target: &Placed) -> Result<()> {
    let worker = LabHost::of(lab, "worker-2")?;
    let url =
        format!("http://{}:8080/dial?request=clientip&host={}&port=8080&protocol=http&tries=1", via.ip, target.ip);
    let answer = retry("the /dial answer", move || {
        let (ok, out, err) = worker.run("curl", &["-sS", "--max-time", "5", &url])?;
        ensure!(ok, "curl failed: {err}");
        Ok(out)
    })
    .await?;
    let v: serde_json::Value = serde_json::from_str(&answer).with_context(|| format!("not JSON: {answer}"))?;
    let responses = v["responses"].as_array().with_context(|| format!("no responses: {answer}"))?;
    ensure!(responses.len() == 1, "{answer}");
    let seen = client_ip(responses[0].as_str().context("response is not a string")?)?;
    ensure!(seen == via.ip, "{} saw the dial from {seen}, not {} ({})", target.name, via.name, via.ip);
    Ok(())
}

async fn node_to_pod(lab: &Lab, node: &str, to: &Placed) -> Result<()> {
    let host = LabHost::of(lab, node)?;
    let addresses = host.addresses()?;
    let url = format!("http://{}:8080/clientip", to.ip);
    // As a user does it: `knet-lab exec worker-N -- curl …`.
    let (bin, state, n) = (Lab::binary()?, lab.state_dir().to_path_buf(), node.to_string());
    let answer = retry(&format!("{node} to reach {url}"), move || {
        let out = std::process::Command::new(&bin)
            .arg("--state-dir")
            .arg(&state)
            .args(["exec", &n, "--", "curl", "-sS", "--max-time", "3", &url])
            .output()?;
        ensure!(out.status.success(), "knet-lab exec curl failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await?;
    let seen = client_ip(&answer)?;
    ensure!(
        addresses.contains(&seen.to_string()),
        "{} saw client {seen}, which is not an address of {node} ({addresses:?})",
        to.name
    );
    // A node reaching a remote pod over host-gw comes from its underlay address (no masquerade to anything else).
    if node != to.node && lab_backend(lab)? == "host-gw" {
        let ip = if node == "worker-1" { "192.168.56.11" } else { "192.168.56.12" };
        ensure!(seen.to_string() == ip, "host-gw: {node} → {} came from {seen}, not {ip}", to.name);
    }
    Ok(())
}

fn lab_backend(lab: &Lab) -> Result<String> {
    let config = knet_lab::config::LabConfig::load(lab.state_dir())?.context("no lab.json")?;
    Ok(config.backend)
}

async fn mtu(k: &Kubectl, pods: &[Placed], want: u32) -> Result<()> {
    for p in pods {
        let (k, name) = (k.clone(), p.name.clone());
        let out = blocking(move || ok(&k, &["exec", &name, "--", "cat", "/sys/class/net/eth0/mtu"])).await?;
        ensure!(out.trim() == want.to_string(), "pod {}: eth0 MTU {}, want {want}", p.name, out.trim());
    }
    Ok(())
}

/// An 8 KB request and answer between pods on different nodes (several full-size packets each way).
async fn big_request(k: &Kubectl, from: &Placed, to: &Placed) -> Result<()> {
    let msg: String = "0123456789abcdef".repeat(512);
    let url = format!("http://{}:8080/echo?msg={msg}", to.ip);
    let (k, name) = (k.clone(), from.name.clone());
    let out = blocking(move || ok(&k, &["exec", &name, "--", "curl", "-sS", "--max-time", "5", &url])).await?;
    if out != msg {
        bail!("the echo came back with {} bytes instead of {}", out.len(), msg.len());
    }
    Ok(())
}

/// `kubectl logs` reaches the agent's kubelet API through the API server, while a client without the API
/// server's kubelet-client certificate (another node, the machine itself) is refused by the agent.
async fn kubelet_api_refuses(lab: &Lab, k: &Kubectl) -> Result<()> {
    let k = k.clone();
    blocking(move || ok(&k, &["logs", "a1"])).await?;
    let url = "https://192.168.56.11:10250/containerLogs/default/a1/netexec";
    let (served, out, _) =
        lab.exec("worker-2", &["curl", "-sk", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url])?;
    ensure!(
        !served || out.starts_with('4'),
        "worker-2 read a1's logs from the kubelet API without a certificate: {out}"
    );
    let direct = std::process::Command::new("curl").args(["-sk", "--max-time", "5", url]).output()?;
    let body = String::from_utf8_lossy(&direct.stdout);
    ensure!(
        !direct.status.success() || !body.contains("GET /"),
        "the machine read a1's logs without a certificate: {body}"
    );
    Ok(())
}
