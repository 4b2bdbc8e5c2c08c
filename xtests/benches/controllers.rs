//! The controllers benchmark of issue 3, against real `knet-apiserver` and `knet-controllers` processes
//! (build them first: `cargo build --release --bins`), with the endpoint and endpointslice controllers:
//!
//! 1. 1,000 Services × 10 pods (created directly, bound to Nodes, Running and Ready with distinct IPs);
//! 2. readiness flips of random pods: latency from sending the pod status write to the EndpointSlice
//!    (and Endpoints) change arriving on a watch, next to the baseline of the same status write arriving
//!    on a pod watch;
//! 3. API writes per pod change, counted by the controllers themselves;
//! 4. a full resync after a crash (kill -9) and restart: time until every Service was reconciled, and
//!    the writes it took (none are needed).
//!
//! Each figure is printed with its target.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use xtests::{ApiServer, Controllers, WaitFor};

const NS: &str = "bench";
const SERVICES: usize = 1_000;
const PODS_PER_SERVICE: usize = 10;
const NODES: usize = 10;
const CLIENTS: usize = 32;
const FLIPS: usize = 600;
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    kib / 1024
}

fn pod_name(svc: usize, j: usize) -> String {
    format!("svc-{svc:04}-{j}")
}

fn pod_ip(svc: usize, j: usize) -> String {
    let idx = svc * PODS_PER_SERVICE + j;
    format!("10.200.{}.{}", idx / 250, idx % 250 + 1)
}

fn ready_patch(ip: &str, ready: bool) -> Value {
    let status = if ready { "True" } else { "False" };
    let now = jiff::Timestamp::now().to_string();
    json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now}]}})
}

/// Creates the Nodes, Services and pods (Running, Ready), `CLIENTS` writers at a time.
async fn populate(server: &ApiServer) -> Result<()> {
    let client = server.client().await?;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NS}}))?).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for n in 0..NODES {
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("node-{n}")}}))?,
            )
            .await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = server.client().await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
            let pods: Api<Pod> = Api::namespaced(client, NS);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= SERVICES {
                    return anyhow::Ok(());
                }
                let app = format!("svc-{i:04}");
                let svc = json!({"metadata": {"name": app}, "spec": {"selector": {"app": app},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
                svcs.create(&PostParams::default(), &serde_json::from_value(svc)?).await?;
                for j in 0..PODS_PER_SERVICE {
                    let name = pod_name(i, j);
                    let pod = json!({"metadata": {"name": name, "labels": {"app": app}},
                        "spec": {"nodeName": format!("node-{}", j % NODES),
                            "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}]}});
                    pods.create(&PostParams::default(), &serde_json::from_value(pod)?).await?;
                    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(ready_patch(&pod_ip(i, j), true)))
                        .await?;
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Waits until every Service has one slice with all its pods ready.
async fn wait_converged(server: &ApiServer, timeout: Duration) -> Result<Duration> {
    let client = server.client().await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client, NS);
    let start = Instant::now();
    loop {
        let list = slices.list(&ListParams::default()).await?;
        let full = list
            .items
            .iter()
            .filter(|s| {
                s.endpoints.len() == PODS_PER_SERVICE
                    && s.endpoints.iter().all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            })
            .count();
        if full == SERVICES {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("only {full} of {SERVICES} Services have complete slices after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A raw watch whose events (arrival time, decoded object) come out of a channel.
async fn watch(server: &ApiServer, path: &str, rv: &str) -> Result<mpsc::UnboundedReceiver<(Instant, Value)>> {
    let url = format!("{}{path}?watch=1&resourceVersion={rv}&allowWatchBookmarks=false", server.url());
    let resp = server.http()?.get(&url).bearer_auth(server.admin_token()?).send().await?.error_for_status()?;
    let mut body = resp.bytes_stream();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = body.try_next().await {
            let now = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    if tx.send((now, v["object"].clone())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// Waits for the first event satisfying `pred`, returning its arrival time.
async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    pred: impl Fn(&Value) -> bool,
) -> Result<Instant> {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => bail!("no matching watch event within {EVENT_TIMEOUT:?}"),
            Ok(None) => bail!("watch ended"),
            Ok(Some((at, obj))) if pred(&obj) => return Ok(at),
            Ok(Some(_)) => {}
        }
    }
}

fn slice_says(obj: &Value, pod: &str, ready: bool) -> bool {
    obj["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["targetRef"]["name"].as_str() == Some(pod) && e["conditions"]["ready"].as_bool() == Some(ready))
}

fn endpoints_say(obj: &Value, ip: &str, ready: bool) -> bool {
    let field = if ready { "addresses" } else { "notReadyAddresses" };
    obj["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|ss| ss[field].as_array().into_iter().flatten().any(|a| a["ip"].as_str() == Some(ip)))
}

fn pod_says(obj: &Value, pod: &str, ready: bool) -> bool {
    obj["metadata"]["name"].as_str() == Some(pod)
        && obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"].as_str() == Some(if ready { "True" } else { "False" }))
}

struct FlipFigures {
    slice: (f64, f64),
    endpoints: (f64, f64),
    pod_watch: (f64, f64),
    write: (f64, f64),
}

/// Flips the readiness of `FLIPS` pseudo-random pods one after the other.
async fn flips(server: &ApiServer) -> Result<FlipFigures> {
    let client = server.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let rv = pods.list_metadata(&ListParams::default().limit(1)).await?.metadata.resource_version.context("no rv")?;
    let mut slice_rx = watch(server, &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"), &rv).await?;
    let mut ep_rx = watch(server, &format!("/api/v1/namespaces/{NS}/endpoints"), &rv).await?;
    let mut pod_rx = watch(server, &format!("/api/v1/namespaces/{NS}/pods"), &rv).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (mut slice, mut endpoints, mut pod_watch, mut write) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ready: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..FLIPS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let idx = usize::try_from(seed >> 33).unwrap_or(0) % (SERVICES * PODS_PER_SERVICE);
        let (svc, j) = (idx / PODS_PER_SERVICE, idx % PODS_PER_SERVICE);
        let now_ready = !ready.get(&(svc, j)).copied().unwrap_or(true);
        ready.insert((svc, j), now_ready);
        let (name, ip) = (pod_name(svc, j), pod_ip(svc, j));
        let sent = Instant::now();
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(ready_patch(&ip, now_ready))).await?;
        write.push(ms(sent.elapsed()));
        let at = next_matching(&mut pod_rx, |o| pod_says(o, &name, now_ready)).await.context("pod watch")?;
        pod_watch.push(ms(at - sent));
        let at = next_matching(&mut slice_rx, |o| slice_says(o, &name, now_ready)).await.context("slice watch")?;
        slice.push(ms(at - sent));
        let at = next_matching(&mut ep_rx, |o| endpoints_say(o, &ip, now_ready)).await.context("endpoints watch")?;
        endpoints.push(ms(at - sent));
    }
    Ok(FlipFigures {
        slice: p50_p99(slice),
        endpoints: p50_p99(endpoints),
        pod_watch: p50_p99(pod_watch),
        write: p50_p99(write),
    })
}

async fn writes(ctrl: &Controllers, resource: &str) -> Result<f64> {
    // `+ 0.0`: an empty sum is -0.0.
    Ok(ctrl.metric_sum("knet_controllers_api_writes_total", &[("resource", resource)]).await? + 0.0)
}

/// `knet_controllers_initial_sync_seconds` of each controller that finished its initial pass, in ms.
fn initial_syncs(metrics: &str) -> BTreeMap<String, u64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("knet_controllers_initial_sync_seconds{controller=\""))
        .filter_map(|rest| {
            let (controller, value) = rest.split_once("\"} ")?;
            let secs: f64 = value.trim().parse().ok()?;
            Some((controller.to_string(), (secs * 1000.0).round() as u64))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = ApiServer::start().await?;
    println!(
        "knet-controllers benchmark (2-core machine): {SERVICES} Services x {PODS_PER_SERVICE} pods, {NODES} Nodes"
    );
    let t = Instant::now();
    populate(&server).await?;
    println!(
        "created {} pods (Running, Ready) and {SERVICES} Services in {:.1} s",
        SERVICES * PODS_PER_SERVICE,
        t.elapsed().as_secs_f64()
    );

    let args = ["--controllers", "endpoint,endpointslice", "--identity", "knet-bench", "--resync-period", "1h"];
    let t = Instant::now();
    let mut ctrl = Controllers::start_with(&server, &args, WaitFor::Ready).await?;
    let converged = wait_converged(&server, Duration::from_secs(120)).await?;
    let pid = ctrl.pid().context("controllers not running")?;
    println!(
        "first sync: every Service's slice complete {:.1} s after start ({:.1} s after ready); {} Endpoints and {} EndpointSlice writes",
        t.elapsed().as_secs_f64(),
        converged.as_secs_f64(),
        writes(&ctrl, "endpoints").await?,
        writes(&ctrl, "endpointslices").await?
    );

    let (e0, s0) = (writes(&ctrl, "endpoints").await?, writes(&ctrl, "endpointslices").await?);
    let f = flips(&server).await?;
    // Let anything the flips caused settle before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (e1, s1) = (writes(&ctrl, "endpoints").await?, writes(&ctrl, "endpointslices").await?);
    println!("{FLIPS} readiness flips of random pods, one at a time:");
    println!(
        "  pod status write -> EndpointSlice change on a watch: p50 {:.2} ms, p99 {:.2} ms   (target p99 <= 50 ms)",
        f.slice.0, f.slice.1
    );
    println!(
        "  pod status write -> Endpoints change on a watch:     p50 {:.2} ms, p99 {:.2} ms",
        f.endpoints.0, f.endpoints.1
    );
    println!(
        "  baseline, pod status write -> pod watch event:       p50 {:.2} ms, p99 {:.2} ms",
        f.pod_watch.0, f.pod_watch.1
    );
    println!("  the status write itself (incl. fsync):              p50 {:.2} ms, p99 {:.2} ms", f.write.0, f.write.1);
    println!(
        "API writes per pod change: {:.3} EndpointSlice, {:.3} Endpoints   (target: 1 EndpointSlice update)",
        (s1 - s0) / FLIPS as f64,
        (e1 - e0) / FLIPS as f64
    );
    let updates = ctrl
        .metric_sum("knet_controllers_api_writes_total", &[("resource", "endpointslices"), ("verb", "update")])
        .await?;
    println!("  (EndpointSlice updates since start: {updates}; controllers' RSS {} MiB)", rss_mib(pid));

    // A crash and restart: time until every key was reconciled again.
    ctrl.kill9();
    let t = Instant::now();
    ctrl.restart(WaitFor::Healthy).await?;
    let mut ready_at = None;
    let http = reqwest::Client::new();
    let readyz = format!("{}/readyz", ctrl.url());
    let synced = loop {
        if ready_at.is_none() {
            let resp = http.get(&readyz).timeout(Duration::from_secs(1)).send().await;
            let ok = resp.is_ok_and(|r| r.status().is_success());
            if ok {
                ready_at = Some(t.elapsed());
            }
        }
        let syncs = initial_syncs(&ctrl.metrics().await.unwrap_or_default());
        if syncs.len() == 2 {
            break (t.elapsed(), syncs);
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("no initial sync after 60 s: {syncs:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (e, s) = (writes(&ctrl, "endpoints").await?, writes(&ctrl, "endpointslices").await?);
    println!(
        "full resync after kill -9 and restart: every Service reconciled {:.0} ms after the restart   (target <= 2 s)",
        synced.0.as_secs_f64() * 1000.0
    );
    println!(
        "  informers synced (/readyz) after {:.0} ms; in-process initial pass: {:?} ms; writes: {e} Endpoints, {s} EndpointSlices (expected 0)",
        ready_at.unwrap_or_default().as_secs_f64() * 1000.0,
        synced.1
    );
    Ok(())
}
