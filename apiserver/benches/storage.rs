//! SledStore figures: durable txn throughput (a Service create: 2 compares + 2 puts
//! of ~1 KiB), sequential and with 10 concurrent writers, and the latency of a
//! range over 10,000 keys. Run with `cargo bench -p knet-apiserver --bench storage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use bytes::Bytes;
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

/// CPU time of the calling thread, from /proc (figures stay meaningful on a busy machine).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split(' ').next().and_then(|ns| ns.parse().ok()).unwrap_or(0))
}

/// CPU time (user + system) of the whole process, from /proc.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
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
    let mut cpu_samples = Vec::new();
    for _ in 0..100 {
        let (start, cpu) = (Instant::now(), thread_cpu());
        // The range runs without yielding, so the thread's CPU time is its cost.
        let listed = store.range("/core/services/default/svc-00", None, 0).await?;
        cpu_samples.push(thread_cpu() - cpu);
        samples.push(start.elapsed());
        ensure!(listed.kvs.len() == 10_000, "listed {}", listed.kvs.len());
    }
    samples.sort_unstable();
    cpu_samples.sort_unstable();
    let (p50, p99) = (samples.len() / 2, samples.len() * 99 / 100);
    println!(
        "range of 10,000 keys:   p50 {:?}, p99 {:?} (CPU p50 {:?}, p99 {:?})",
        samples[p50], samples[p99], cpu_samples[p50], cpu_samples[p99]
    );
    store.close().await;
    Ok(())
}
