//! Pod start latency of the node agent (root; build the binaries first: `cargo build --release --bins`):
//! 100 pods on one node (a [`NodeHost`]), each timed from the end of its create call to the first pod watch
//! event showing it Running and Ready, next to the same run's baseline — create → scheduled (the first watch
//! event with `spec.nodeName`), i.e. what the API server and scheduler take before the agent can start.
//! Two shapes: one pod at a time (latency) and all 100 at once (a burst). Goal: create → Running p99 ≤ 1 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use xtests::node_host::{root_or_skip, NodeHost};

const PODS: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        percentile(&v, 0.5) * 1e3,
        percentile(&v, 0.99) * 1e3,
        v.last().copied().unwrap_or(f64::NAN) * 1e3
    )
}

#[derive(Default)]
struct Seen {
    scheduled: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "pods"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]
        }
    }))
    .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    let s = p.status.as_ref();
    s.and_then(|s| s.phase.as_deref()) == Some("Running")
        && s.and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn run_round(host: &NodeHost, prefix: &str, burst: bool) -> Result<(Vec<f64>, Vec<f64>)> {
    let client = host.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let watch_api = pods.clone();
    let watch = tokio::spawn(async move {
        let mut stream = watcher::watcher(watch_api, watcher::Config::default().labels("bench=pods")).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else { continue };
            let name = p.metadata.name.clone().unwrap_or_default();
            let now = Instant::now();
            let mut s = s2.lock().unwrap_or_else(|e| e.into_inner());
            if p.spec.as_ref().and_then(|sp| sp.node_name.as_ref()).is_some() {
                s.scheduled.entry(name.clone()).or_insert(now);
            }
            if ready(&p) {
                s.running.entry(name).or_insert(now);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let names: Vec<String> = (0..PODS).map(|i| format!("{prefix}-{i:03}")).collect();
    let mut created: HashMap<String, Instant> = HashMap::new();
    if burst {
        let futs = names.iter().map(|n| {
            let pods = pods.clone();
            let p = pod(n);
            async move { pods.create(&PostParams::default(), &p).await.map(|_| Instant::now()) }
        });
        for (n, r) in names.iter().zip(futures::future::join_all(futs).await) {
            created.insert(n.clone(), r?);
        }
    } else {
        for n in &names {
            pods.create(&PostParams::default(), &pod(n)).await?;
            created.insert(n.clone(), Instant::now());
            let deadline = Instant::now() + Duration::from_secs(30);
            while !seen.lock().unwrap_or_else(|e| e.into_inner()).running.contains_key(n) {
                if Instant::now() > deadline {
                    bail!("{n} not Running after 30 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = seen.lock().unwrap_or_else(|e| e.into_inner()).running.len();
        if done >= PODS {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {done} of {PODS} pods Running after 180 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch.abort();
    let mut to_running = Vec::new();
    let mut to_scheduled = Vec::new();
    {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner());
        for n in &names {
            let c = created[n];
            to_running.push(s.running[n].saturating_duration_since(c).as_secs_f64());
            if let Some(t) = s.scheduled.get(n) {
                to_scheduled.push(t.saturating_duration_since(c).as_secs_f64());
            }
        }
    }
    pods.delete_collection(&DeleteParams::default(), &kube::api::ListParams::default().labels("bench=pods")).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pods.list(&kube::api::ListParams::default().labels("bench=pods")).await?.items.is_empty() {
        if Instant::now() > deadline {
            bail!("the bench pods were not deleted within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((to_running, to_scheduled))
}

#[tokio::main]
async fn main() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    println!(
        "pod start latency on one node, {PODS} pods (busybox sleep), CNI plugin {:?}",
        xtests::node_host::Plugin::from_env()
    );
    // KNET_BENCH_ROUNDS=burst (or =one) runs one shape only, e.g. to profile it.
    let only = std::env::var("KNET_BENCH_ROUNDS").unwrap_or_default();
    for (label, burst) in [("one at a time", false), ("burst of 100", true)] {
        if (only == "burst" && !burst) || (only == "one" && burst) {
            continue;
        }
        let (running, scheduled) = run_round(&host, if burst { "burst" } else { "seq" }, burst).await?;
        println!("{label}:");
        println!("  create → scheduled (baseline): {}", summary(scheduled));
        println!("  create → Running and Ready:    {}   (goal: p99 ≤ 1000 ms)", summary(running));
    }
    Ok(())
}
