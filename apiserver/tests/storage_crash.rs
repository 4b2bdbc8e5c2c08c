//! Crash safety of SledStore: a child process (this test binary, re-executed)
//! streams acknowledged creates to stdout from 10 concurrent writers and is killed
//! with SIGKILL mid-flight; every create it acknowledged must be there on reopen,
//! and revisions must keep increasing across the crashes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Compare, Op, Store, Txn};

const CHILD_DIR: &str = "KNET_STORAGE_CRASH_DIR";
const CHILD_ROUND: &str = "KNET_STORAGE_CRASH_ROUND";
const WRITERS: usize = 10;

/// The child: writes until killed, printing `ACK <key> <revision>` after each
/// acknowledged create.
#[test]
#[ignore = "the child process of acknowledged_creates_survive_kill_9"]
fn crash_child() -> Result<()> {
    // Run by hand (e.g. with --include-ignored) it has nothing to do.
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let store = SledStore::open(std::path::Path::new(&dir), SledOptions::default())?;
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (store, round) = (store.clone(), round.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{round}/{w}-{i}");
                    let txn = Txn {
                        compares: vec![Compare::Absent(key.clone())],
                        ops: vec![Op::Put { key: key.clone(), value: Bytes::from(vec![b'v'; 1024]) }],
                    };
                    let result = store.txn(txn).await?;
                    ensure!(result.succeeded, "{key} was new");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {}", result.revision)?;
                    out.flush()?;
                }
                anyhow::Ok(())
            }));
        }
        for writer in writers {
            writer.await??;
        }
        anyhow::Ok(())
    })
}

/// Runs one child until it has acknowledged `kill_after` creates, kills it with
/// SIGKILL and returns every create it acknowledged.
fn run_and_kill(dir: &std::path::Path, round: usize, kill_after: usize) -> Result<BTreeMap<String, i64>> {
    let stderr_path = dir.with_extension(format!("stderr-{round}"));
    let mut child = Command::new(std::env::current_exe()?)
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = BTreeMap::new();
    let mut killed = false;
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                // A line cut by the kill has no revision and is not counted.
                let mut parts = line.split(' ');
                if let (Some("ACK"), Some(key), Some(rev)) = (parts.next(), parts.next(), parts.next()) {
                    if let Ok(rev) = rev.parse::<i64>() {
                        acked.insert(key.to_owned(), rev);
                    }
                }
                if !killed && acked.len() >= kill_after {
                    child.kill()?;
                    killed = true;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                child.kill()?;
                bail!("the child was silent for 60s");
            }
        }
    }
    let status = child.wait()?;
    let _ = reader.join();
    if !killed {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("the child exited ({status}) after {} acks before being killed:\n{stderr}", acked.len());
    }
    Ok(acked)
}

#[test]
fn acknowledged_creates_survive_kill_9() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut all_acked: BTreeMap<String, i64> = BTreeMap::new();
    let mut highest_acked = 0;
    for (round, kill_after) in [300, 1000, 50, 2000].into_iter().enumerate() {
        let acked = run_and_kill(&dir, round, kill_after)?;
        ensure!(acked.len() >= kill_after, "round {round}: {} acks", acked.len());
        let lowest_new = acked.values().copied().min().unwrap_or(i64::MAX);
        ensure!(lowest_new > highest_acked, "round {round} reused revision {lowest_new} (had {highest_acked})");
        highest_acked = highest_acked.max(acked.values().copied().max().unwrap_or(0));
        all_acked.extend(acked);

        runtime.block_on(async {
            let store = SledStore::open(&dir, SledOptions::default())?;
            ensure!(store.revision() >= highest_acked, "revision {} < acked {highest_acked}", store.revision());
            let stored = store.range("/crash/", None, 0).await?;
            let stored: BTreeMap<&str, i64> = stored.kvs.iter().map(|kv| (kv.key.as_str(), kv.mod_revision)).collect();
            for (key, rev) in &all_acked {
                ensure!(stored.get(key.as_str()) == Some(rev), "round {round}: acked {key} at {rev} is lost");
            }
            let mut revisions: Vec<i64> = stored.values().copied().collect();
            revisions.sort_unstable();
            revisions.dedup();
            ensure!(revisions.len() == stored.len(), "two creates share a revision");
            store.close().await;
            anyhow::Ok(())
        })?;
    }
    Ok(())
}
