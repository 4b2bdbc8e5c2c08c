//! Cross-node throughput of issue 4 on a real 2-worker lab (`knet-lab up`, knet-cni): iperf3 TCP from a pod on
//! worker-1 to a pod on worker-2 against iperf3 from worker-1 to worker-2 themselves (the underlay), in the same
//! run, for host-gw and VXLAN (goal: pod-to-pod ≥ 90% of node-to-node). The pods are real knet pods (iperf3 run
//! as the container's command, the client through `kubectl exec`); the nodes' iperf3 runs on the lab hosts
//! (`knet-lab exec`). Needs root, the release binaries (`cargo build --release --bins`) and iperf3. Each figure
//! is the median of `RUNS` runs of `SECONDS` seconds, node and pod runs interleaved, iperf3's client pinned to
//! CPU 0 and its server to CPU 1 in both.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use xtests::e2e::{ok, wait_ready};
use xtests::lab::{require_root, Lab, LabOptions};
use xtests::Kubectl;

const RUNS: usize = 5;
const SECONDS: u32 = 4;
const WORKER_2_IP: &str = "192.168.56.12";

/// Gbit/s received, from iperf3's JSON.
fn received(json: &str) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 -J output")?;
    let bps = v["end"]["sum_received"]["bits_per_second"].as_f64().context("no sum_received in iperf3 output")?;
    Ok(bps / 1e9)
}

fn iperf_args(server: &str, port: &str) -> Vec<String> {
    // The client on CPU 0 and the server on CPU 1, in both shapes, so run-to-run placement does not decide.
    ["taskset", "-c", "0", "iperf3", "-c", server, "-p", port, "-t", &SECONDS.to_string(), "-O", "1", "-J"]
        .map(String::from)
        .to_vec()
}

/// node-to-node: an iperf3 server on worker-2 for one test, the client on worker-1.
fn node_run(lab: &Lab) -> Result<f64> {
    let (started, out, err) =
        lab.exec("worker-2", &["taskset", "-c", "1", "iperf3", "-s", "-1", "-D", "-p", "5202"])?;
    if !started {
        bail!("iperf3 server on worker-2: {out}{err}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let args = iperf_args(WORKER_2_IP, "5202");
    let (ok, out, err) = lab.exec("worker-1", &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    if !ok {
        bail!("iperf3 worker-1 → worker-2: {out}{err}");
    }
    received(&out)
}

/// pod-to-pod: the client pod execs iperf3 against the server pod (which serves forever).
fn pod_run(k: &Kubectl, server_ip: &str) -> Result<f64> {
    let mut args = vec!["exec".to_string(), "client".into(), "--".into()];
    args.extend(iperf_args(server_ip, "5201"));
    let out = ok(k, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    received(&out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: server}
spec:
  nodeName: worker-2
  containers:
  - {name: iperf3, image: busybox, command: ["/usr/bin/taskset", "-c", "1", "/usr/bin/iperf3", "-s", "-p", "5201"]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: worker-1
  containers:
  - {name: c, image: busybox, command: ["sleep", "100000"]}
"#;

async fn measure(backend: &str) -> Result<(f64, f64)> {
    let opts = LabOptions { backend: backend.into(), ..LabOptions::default() };
    let mut lab = Lab::up(opts).await?;
    let result = async {
        let k = lab.kubectl();
        k.apply_yaml(PODS)?.ok()?;
        wait_ready(&k, "default", &["pod/server", "pod/client"], Duration::from_secs(60)).await?;
        let server_ip = ok(&k, &["get", "pod", "server", "-o", "jsonpath={.status.podIP}"])?;
        let lab_ref = &lab;
        let mut node_runs = Vec::new();
        let mut pod_runs = Vec::new();
        for _ in 0..RUNS {
            node_runs.push(node_run(lab_ref)?);
            pod_runs.push(pod_run(&k, &server_ip)?);
        }
        println!(
            "{backend:>8}: runs node {:?} pod {:?}",
            node_runs.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>(),
            pod_runs.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>()
        );
        Ok((median(node_runs), median(pod_runs)))
    }
    .await;
    lab.down()?;
    result
}

#[tokio::main]
async fn main() -> Result<()> {
    if !require_root("network benchmark") {
        return Ok(());
    }
    println!(
        "cross-node iperf3 TCP on a 2-worker lab, median of {RUNS} runs of {SECONDS}s \
         (goal: pod-to-pod >= 90% of node-to-node)"
    );
    for backend in ["host-gw", "vxlan"] {
        let (node, pod) = measure(backend).await?;
        println!(
            "{backend:>8}: node-to-node {node:.2} Gbit/s, pod-to-pod across nodes {pod:.2} Gbit/s = {:.0}% {}",
            100.0 * pod / node,
            if pod >= 0.9 * node { "(goal met)" } else { "(below the 90% goal)" }
        );
    }
    Ok(())
}
