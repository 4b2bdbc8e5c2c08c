//! The API server benchmark of issue 2, against a real `knet-apiserver` process
//! (build it first: `cargo build --release -p knet-apiserver`), over HTTPS with
//! kube-rs and reqwest like any client:
//!
//! 1. create 10,000 Services (ClusterIP allocation, durable writes), 32 clients;
//! 2. 100 watchers connected: delivery latency of 1,000 updates to every watcher;
//! 3. list 10,000 Services (JSON), 20 times;
//! 4. resident memory of the server with 10,000 Services.
//!
//! Each figure is printed with the target it is compared with.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use xtests::ApiServer;

const SERVICES: usize = 10_000;
const CLIENTS: usize = 32;
const WATCHERS: usize = 100;
const UPDATES: usize = 1_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn service(name: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"selector": {"app": "bench"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))?)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

async fn create_services(server: &ApiServer) -> Result<f64> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let api: Api<Service> = Api::namespaced(server.client().await?, "default");
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= SERVICES {
                    return anyhow::Ok(());
                }
                api.create(&PostParams::default(), &service(&format!("svc-{i:05}"))?).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(SERVICES as f64 / start.elapsed().as_secs_f64())
}

/// Latencies (ms) of 1,000 updates delivered to 100 watchers.
async fn watch_latency(server: &ApiServer) -> Result<WatchFigures> {
    let client = server.client().await?;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "watch-bench"}}))?).await?;
    let api: Api<Service> = Api::namespaced(client.clone(), "watch-bench");
    api.create(&PostParams::default(), &service("target")?).await?;
    let rv = api.get("target").await?.metadata.resource_version.context("no resourceVersion")?;

    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; UPDATES]));
    let acked: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; UPDATES]));
    // (seq, arrival) of every event at every watcher.
    let samples: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let mut watchers = Vec::new();
    let token = server.admin_token()?;
    let url = format!("{}/api/v1/namespaces/watch-bench/services?watch=1&resourceVersion={rv}", server.url());
    for _ in 0..WATCHERS {
        // Raw HTTP watchers (one connection each) that only look for the sequence number, so
        // that the client side's decoding does not dominate what is measured.
        let http = server.http()?;
        let resp = http.get(&url).bearer_auth(&token).send().await?.error_for_status()?;
        let mut body = resp.bytes_stream();
        let samples = samples.clone();
        watchers.push(tokio::spawn(async move {
            let mut seen = 0;
            let mut buf: Vec<u8> = Vec::new();
            while seen < UPDATES {
                let Some(chunk) = body.try_next().await? else { break };
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let now = Instant::now();
                    let text = String::from_utf8_lossy(&line);
                    if !text.starts_with("{\"type\":\"MODIFIED\"") {
                        continue;
                    }
                    let seq = text
                        .split("\"seq\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .and_then(|n| n.parse::<usize>().ok());
                    if let (Some(q), Ok(mut v)) = (seq, samples.lock()) {
                        v.push((q, now));
                    }
                    seen += 1;
                }
            }
            anyhow::Ok(seen)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    for seq in 0..UPDATES {
        if let Ok(mut s) = sent.lock() {
            s[seq] = Some(Instant::now());
        }
        api.patch(
            "target",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"seq": seq.to_string()}}})),
        )
        .await?;
        if let Ok(mut a) = acked.lock() {
            a[seq] = Some(Instant::now());
        }
    }
    let write_rate = UPDATES as f64 / start.elapsed().as_secs_f64();
    let mut delivered = 0;
    for w in watchers {
        delivered += tokio::time::timeout(Duration::from_secs(60), w).await???;
    }
    let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let samples = samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // End to end: from sending the write to the event's arrival at a watcher.
    let mut e2e: Vec<f64> = samples
        .iter()
        .filter_map(|(q, at)| sent.get(*q).copied().flatten().map(|t| ms(at.duration_since(t))))
        .collect();
    // Fan-out: from the write's acknowledgement (it is durable and published) to the arrival.
    let mut fanout: Vec<f64> = samples
        .iter()
        .filter_map(|(q, at)| acked.get(*q).copied().flatten().map(|t| ms(at.saturating_duration_since(t))))
        .collect();
    // The write alone: send to acknowledgement (includes the fsync).
    let mut write: Vec<f64> =
        sent.iter().zip(acked.iter()).filter_map(|(s, a)| Some(ms(a.as_ref()?.duration_since(*s.as_ref()?)))).collect();
    for v in [&mut e2e, &mut fanout, &mut write] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    Ok(WatchFigures {
        e2e: (percentile(&e2e, 0.5), percentile(&e2e, 0.99)),
        fanout: (percentile(&fanout, 0.5), percentile(&fanout, 0.99)),
        write: (percentile(&write, 0.5), percentile(&write, 0.99)),
        write_rate,
        delivered,
    })
}

struct WatchFigures {
    e2e: (f64, f64),
    fanout: (f64, f64),
    write: (f64, f64),
    write_rate: f64,
    delivered: usize,
}

async fn list_latency(server: &ApiServer) -> Result<(f64, f64, usize)> {
    let http = server.http()?;
    let token = server.admin_token()?;
    let url = format!("{}/api/v1/services", server.url());
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let body = http.get(&url).bearer_auth(&token).send().await?.error_for_status()?.bytes().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        count = v["items"].as_array().map(Vec::len).unwrap_or(0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok((percentile(&times, 0.5), percentile(&times, 0.99), count))
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = ApiServer::start().await?;
    let pid = server.pid().context("server not running")?;
    println!("knet-apiserver benchmark (2-core machine), server pid {pid}");
    println!("rss at start: {} MiB", rss_kib(pid).unwrap_or(0) / 1024);

    let rate = create_services(&server).await?;
    println!("create {SERVICES} Services, {CLIENTS} clients: {rate:.0}/s   (target >= 1000/s)");

    let (p50, p99, n) = list_latency(&server).await?;
    println!("list {n} Services (JSON, all namespaces): p50 {p50:.1} ms, p99 {p99:.1} ms   (target <= 100 ms)");

    let w = watch_latency(&server).await?;
    println!(
        "watch, {WATCHERS} watchers x {UPDATES} sequential updates ({} events, writer {:.0} updates/s):",
        w.delivered, w.write_rate
    );
    println!(
        "  delivery after the write is acknowledged: p50 {:.2} ms, p99 {:.2} ms   (target <= 10 ms; kine's published etcd figure: p99 12.5 ms)",
        w.fanout.0, w.fanout.1
    );
    println!("  end to end, from sending the write:        p50 {:.2} ms, p99 {:.2} ms", w.e2e.0, w.e2e.1);
    println!("  the write itself (incl. fsync):           p50 {:.2} ms, p99 {:.2} ms", w.write.0, w.write.1);
    println!("rss with {SERVICES} Services and {WATCHERS} watchers: {} MiB", rss_kib(pid).unwrap_or(0) / 1024);
    Ok(())
}
