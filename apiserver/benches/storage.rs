//! SledStore figures: durable txn throughput (a Service create: 2 compares + 2 puts
//! of ~1 KiB), sequential and with 10 concurrent writers, and the latency of a
//! range over 10,000 keys. Run with `cargo bench -p knet-apiserver --bench storage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Compare, Op, Store, Txn};

fn service_create(n: usize) -> Txn {
    let service = format!("/core/services/default/svc-{n:06}");
    let ip = format!("/alloc/clusterip/10.96.{}.{}", n / 250, n % 250 + 1);
    Txn {
        compares: vec![Compare::Absent(service.clone()), Compare::Absent(ip.clone())],
        ops: vec![
            Op::Put { key: service, value: Bytes::from(vec![b's'; 1024]) },
            Op::Put { key: ip, value: Bytes::from(vec![b'i'; 1024]) },
        ],
    }
}

async fn sequential(store: &SledStore, from: usize, count: usize) -> Result<Duration> {
    let start = Instant::now();
    for n in from..from + count {
        ensure!(store.txn(service_create(n)).await?.succeeded);
    }
    Ok(start.elapsed())
}

async fn concurrent(store: &Arc<SledStore>, from: usize, count: usize, writers: usize) -> Result<Duration> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = from + w;
            while n < from + count {
                ensure!(store.txn(service_create(n)).await?.succeeded);
                n += writers;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

/// CPU time (user + system) of the whole process, from /proc.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Latency from sending a txn to each of `watchers` watchers receiving its event,
/// with 10 concurrent writers making `count` updates.
async fn watch_latency(store: &Arc<SledStore>, watchers: usize, count: usize) -> Result<Vec<Duration>> {
    let epoch = Instant::now();
    let from = store.revision();
    let mut receivers = Vec::new();
    for _ in 0..watchers {
        let mut stream = store.watch("/watched/", from)?;
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            while latencies.len() < count {
                let event = stream.next().await.context("the watch ended")??;
                let sent: [u8; 8] = event.kv.value.as_ref().try_into()?;
                latencies.push(epoch.elapsed().saturating_sub(Duration::from_nanos(u64::from_le_bytes(sent))));
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut writers = Vec::new();
    for w in 0..10 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..count).step_by(10) {
                let sent = epoch.elapsed().as_nanos() as u64;
                let value = Bytes::copy_from_slice(&sent.to_le_bytes());
                store.txn(Txn { compares: vec![], ops: vec![Op::Put { key: format!("/watched/{i}"), value }] }).await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let mut all = Vec::new();
    for receiver in receivers {
        all.extend(receiver.await??);
    }
    all.sort_unstable();
    Ok(all)
}

fn per_second(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), SledOptions::default())?;

    let cpu = process_cpu();
    let took = sequential(&store, 0, 1_000).await?;
    let cpu_per_txn = (process_cpu() - cpu) / 1_000;
    println!("sequential:             {:>6.0} txn/s, {cpu_per_txn:?} CPU/txn", per_second(1_000, took));

    for (from, writers) in [(1_000, 10), (11_000, 100)] {
        let (cpu, flushes) = (process_cpu(), store.stats().flushes);
        let took = concurrent(&store, from, 10_000, writers).await?;
        let cpu_per_txn = (process_cpu() - cpu) / 10_000;
        let group = 10_000.0 / (store.stats().flushes - flushes).max(1) as f64;
        println!(
            "{writers:>3} concurrent writers: {:>6.0} txn/s, {cpu_per_txn:?} CPU/txn, {group:.1} txns per flush",
            per_second(10_000, took)
        );
    }

    let mut samples = Vec::new();
    for _ in 0..100 {
        let start = Instant::now();
        let listed = store.range("/core/services/default/svc-00", None, 0).await?;
        samples.push(start.elapsed());
        ensure!(listed.kvs.len() == 10_000, "listed {}", listed.kvs.len());
    }
    samples.sort_unstable();
    let (p50, p99) = (samples.len() / 2, samples.len() * 99 / 100);
    println!("range of 10,000 keys:   p50 {:?}, p99 {:?}", samples[p50], samples[p99]);

    let latencies = watch_latency(&store, 100, 2_000).await?;
    let (p50, p99) = (latencies.len() / 2, latencies.len() * 99 / 100);
    println!(
        "watch, 100 watchers:    txn sent → event received p50 {:?}, p99 {:?} ({} events)",
        latencies[p50],
        latencies[p99],
        latencies.len()
    );
    store.close().await;
    Ok(())
}
