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

fn per_second(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), SledOptions::default())?;

    let took = sequential(&store, 0, 1_000).await?;
    println!("sequential txns:      {:>8.0} txn/s  (1,000 in {took:?})", per_second(1_000, took));

    let took = concurrent(&store, 1_000, 10_000, 10).await?;
    println!("10 concurrent writers: {:>7.0} txn/s  (10,000 in {took:?})", per_second(10_000, took));

    let took = concurrent(&store, 11_000, 10_000, 100).await?;
    println!("100 concurrent writers: {:>6.0} txn/s  (10,000 in {took:?})", per_second(10_000, took));

    let mut samples = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let listed = store.range("/core/services/default/svc-00", None, 0).await?;
        samples.push(start.elapsed());
        ensure!(listed.kvs.len() == 10_000, "listed {}", listed.kvs.len());
    }
    samples.sort_unstable();
    println!("range of 10,000 keys: p50 {:?}, p99 {:?}", samples[samples.len() / 2], samples[samples.len() * 99 / 100]);
    store.close().await;
    Ok(())
}
