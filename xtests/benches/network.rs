//! Cross-node throughput of issue 4: iperf3 TCP between two fake pods on different nodes against iperf3
//! between the two nodes themselves, in the same run, for host-gw and VXLAN (goal: pod-to-pod ≥ 90% of
//! node-to-node). Nodes are network namespaces on a test bridge running knet's cross-node routing in-process
//! (as the routing tests do); pods are namespaces behind a veth with the backend's pod MTU. Needs root, a
//! `knet-apiserver` binary and iperf3. Each figure is the median of `RUNS` runs of `SECONDS` seconds.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Node;
use knet_lab::netns::Netns;
use knet_node_agent::network::{pod_mtu, Backend, Network, NetworkFlags};
use kube::api::{Api, Patch, PatchParams, PostParams};
use xtests::lab::{check_in, in_netns_on_runtime, require_root, run_in, TestNet};
use xtests::ApiServer;

const RUNS: usize = 3;
const SECONDS: u32 = 4;
const NODES: [(&str, &str, &str, &str); 2] = [
    ("node-a", "192.168.56.11", "10.244.1.0/24", "10.244.1.5"),
    ("node-b", "192.168.56.12", "10.244.2.0/24", "10.244.2.5"),
];

/// One iperf3 run from `client` to `server_ip` (server in `server`): Gbit/s received.
fn iperf(server: &Netns, client: &Netns, server_ip: &str) -> Result<f64> {
    let mut srv =
        server.command("iperf3")?.args(["-s", "-1", "-p", "5201"]).stdout(std::process::Stdio::null()).spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let result =
        run_in(client, "iperf3", &["-c", server_ip, "-p", "5201", "-t", &SECONDS.to_string(), "-O", "1", "-J"]);
    let _ = srv.kill();
    let _ = srv.wait();
    let (ok, out, err) = result?;
    if !ok {
        bail!("iperf3 to {server_ip} failed: {out}{err}");
    }
    let json: serde_json::Value = serde_json::from_str(&out).context("iperf3 -J output")?;
    let bps = json["end"]["sum_received"]["bits_per_second"].as_f64().context("no sum_received in iperf3 output")?;
    Ok(bps / 1e9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn measure(backend: Backend, tag: &str) -> Result<(f64, f64)> {
    let server = ApiServer::start().await?;
    let client = server.client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut net = TestNet::new(tag)?;
    let mtu = pod_mtu(backend, 1500).to_string();
    let mut hosts = Vec::new();
    let mut pods = Vec::new();
    for (i, (name, ip, cidr, pod_ip)) in NODES.iter().enumerate() {
        let host = net.host(&format!("n{i}"), format!("{ip}/24").parse()?)?;
        let pod = net.pod(&host, &format!("p{i}"), "vpod", cidr.parse()?, pod_ip.parse()?)?;
        host.ip(&["link", "set", "vpod", "mtu", &mtu])?;
        pod.ip(&["link", "set", "eth0", "mtu", &mtu])?;
        let node: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr}}))?;
        nodes.create(&PostParams::default(), &node).await?;
        let status = serde_json::json!({"status": {"addresses": [{"type": "InternalIP", "address": ip}]}});
        nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await?;
        hosts.push(host);
        pods.push(pod);
    }
    let flags = NetworkFlags { backend, ..NetworkFlags::default() };
    let mut tasks = Vec::new();
    for (i, (name, ..)) in NODES.iter().enumerate() {
        let flags = flags.clone();
        let network = in_netns_on_runtime(&hosts[i], move || Network::open(flags))??;
        tasks.push(tokio::spawn(network.run(client.clone(), name.to_string())));
    }
    // Routes in place: pod a reaches pod b.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check_in(&pods[0], "ip", &["route", "get", NODES[1].3]).is_ok()
            && check_in(&hosts[0], "ip", &["route", "show", NODES[1].2]).map(|r| !r.is_empty()).unwrap_or(false)
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("routes never appeared");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (hosts2, pods2) = (hosts.clone(), pods.clone());
    let result = tokio::task::spawn_blocking(move || -> Result<(f64, f64)> {
        let mut node_runs = Vec::new();
        let mut pod_runs = Vec::new();
        for _ in 0..RUNS {
            node_runs.push(iperf(&hosts2[1], &hosts2[0], NODES[1].1)?);
            pod_runs.push(iperf(&pods2[1], &pods2[0], NODES[1].3)?);
        }
        Ok((median(node_runs), median(pod_runs)))
    })
    .await?;
    for t in &tasks {
        t.abort();
    }
    result
}

#[tokio::main]
async fn main() -> Result<()> {
    if !require_root("network benchmark") {
        return Ok(());
    }
    println!("cross-node iperf3 TCP, median of {RUNS} runs of {SECONDS}s (goal: pod-to-pod >= 90% of node-to-node)");
    for (backend, tag) in [(Backend::HostGw, "bh"), (Backend::Vxlan, "bv")] {
        let (node, pod) = measure(backend, tag).await?;
        println!(
            "{backend:>8}: node-to-node {node:.2} Gbit/s, pod-to-pod across nodes {pod:.2} Gbit/s = {:.0}% {}",
            100.0 * pod / node,
            if pod >= 0.9 * node { "(goal met)" } else { "(below the 90% goal)" }
        );
    }
    Ok(())
}
