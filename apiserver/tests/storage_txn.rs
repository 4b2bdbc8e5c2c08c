//! SledStore transactions and reads: compares, revision contiguity under concurrent
//! writers, range paging, and ranges that see whole transactions only.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Compare, Op, StorageError, Store, Txn};

fn put(key: &str, value: impl Into<Bytes>) -> Op {
    Op::Put { key: key.to_owned(), value: value.into() }
}

fn create(key: &str, value: impl Into<Bytes>) -> Txn {
    Txn { compares: vec![Compare::Absent(key.to_owned())], ops: vec![put(key, value)] }
}

fn open() -> Result<(tempfile::TempDir, Arc<SledStore>)> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), SledOptions::default())?;
    Ok((dir, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compares_decide_and_report_failures() -> Result<()> {
    let (_dir, store) = open()?;
    assert_eq!(store.revision(), 0);

    let first = store.txn(create("/svc/a", "1")).await?;
    assert!(first.succeeded && first.failed.is_empty());
    assert_eq!(first.revision, 1);

    let again = store.txn(create("/svc/a", "2")).await?;
    assert!(!again.succeeded);
    assert_eq!(again.failed, [0]);
    assert_eq!(again.revision, 1, "a failed txn reports the current revision");

    let stale = Txn {
        compares: vec![
            Compare::Exists("/svc/a".into()),
            Compare::ModRevision("/svc/a".into(), 7),
            Compare::Exists("/svc/missing".into()),
        ],
        ops: vec![put("/svc/a", "3")],
    };
    let result = store.txn(stale).await?;
    assert!(!result.succeeded);
    assert_eq!(result.failed, [1, 2]);

    let update = Txn {
        compares: vec![Compare::Exists("/svc/a".into()), Compare::ModRevision("/svc/a".into(), 1)],
        ops: vec![put("/svc/a", "4"), put("/ip/10.96.0.5", "svc/a")],
    };
    let result = store.txn(update).await?;
    assert!(result.succeeded);
    assert_eq!(result.revision, 2, "one revision for the whole txn");

    let kv = store.get("/svc/a").await?.context("/svc/a exists")?;
    assert_eq!((kv.value.as_ref(), kv.create_revision, kv.mod_revision), (&b"4"[..], 1, 2));
    let ip = store.get("/ip/10.96.0.5").await?.context("the ip key exists")?;
    assert_eq!((ip.create_revision, ip.mod_revision), (2, 2));

    let delete = Txn {
        compares: vec![Compare::ModRevision("/svc/a".into(), 2)],
        ops: vec![Op::Delete { key: "/svc/a".into() }, Op::Delete { key: "/ip/10.96.0.5".into() }],
    };
    assert_eq!(store.txn(delete).await?.revision, 3);
    assert_eq!(store.get("/svc/a").await?, None);

    let nothing = Txn { compares: vec![], ops: vec![Op::Delete { key: "/svc/a".into() }] };
    let result = store.txn(nothing).await?;
    assert!(result.succeeded);
    assert_eq!(result.revision, 3, "deleting nothing writes nothing");
    assert_eq!(store.revision(), 3);

    let recreated = store.txn(create("/svc/a", "5")).await?;
    assert_eq!(recreated.revision, 4);
    assert_eq!(store.get("/svc/a").await?.map(|kv| kv.create_revision), Some(4));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_contiguous_revisions() -> Result<()> {
    let (_dir, store) = open()?;
    let writers = 16;
    let per_writer = 60;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..per_writer {
                let key = format!("/things/{w:02}-{i:03}");
                let result = store.txn(create(&key, vec![b'x'; 100])).await?;
                ensure!(result.succeeded, "{key} was created once");
                // A second create of the same key must fail, whatever else is queued.
                ensure!(!store.txn(create(&key, "dup")).await?.succeeded, "{key} created twice");
                mine.push(result.revision);
            }
            anyhow::Ok(mine)
        }));
    }
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.extend(task.await??);
    }
    revisions.sort_unstable();
    let expected: Vec<i64> = (1..=(writers * per_writer) as i64).collect();
    assert_eq!(revisions, expected, "every successful txn took the next revision, none twice");
    assert_eq!(store.revision(), (writers * per_writer) as i64);
    assert_eq!(store.len(), writers * per_writer);
    let stats = store.stats();
    assert_eq!(stats.transactions, 2 * (writers * per_writer) as u64);
    assert!(
        stats.flushes * 2 < (writers * per_writer) as u64,
        "group commit: {} flushes for {} writing txns",
        stats.flushes,
        writers * per_writer
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_counter_loses_no_update() -> Result<()> {
    let (_dir, store) = open()?;
    store.txn(create("/counter", "0")).await?;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 25 {
                let kv = store.get("/counter").await?.context("the counter exists")?;
                let n: u64 = std::str::from_utf8(&kv.value)?.parse()?;
                let swap = Txn {
                    compares: vec![Compare::ModRevision("/counter".into(), kv.mod_revision)],
                    ops: vec![put("/counter", (n + 1).to_string())],
                };
                if store.txn(swap).await?.succeeded {
                    done += 1;
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let kv = store.get("/counter").await?.context("the counter exists")?;
    assert_eq!(kv.value.as_ref(), b"300");
    assert_eq!(kv.mod_revision, 301);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_pages_through_a_prefix() -> Result<()> {
    let (_dir, store) = open()?;
    for name in ["a", "b", "c", "d", "e"] {
        store.txn(create(&format!("/core/pods/default/{name}"), name.to_owned())).await?;
    }
    store.txn(create("/core/pods/kube-system/x", "x")).await?;
    store.txn(create("/core/podsx/default/y", "y")).await?;

    let all = store.range("/core/pods/", None, 0).await?;
    assert_eq!(all.kvs.len(), 6);
    assert!(!all.more);
    assert_eq!(all.revision, 7);

    let first = store.range("/core/pods/default/", None, 2).await?;
    let names: Vec<&str> = first.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(names, ["/core/pods/default/a", "/core/pods/default/b"]);
    assert!(first.more);

    let last = store.range("/core/pods/default/", Some("/core/pods/default/c"), 2).await?;
    let names: Vec<&str> = last.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(names, ["/core/pods/default/d", "/core/pods/default/e"]);
    assert!(!last.more, "nothing follows e under the prefix");
    assert_eq!(last.kvs[1].value.as_ref(), b"e");

    let empty = store.range("/apps/", None, 10).await?;
    assert!(empty.kvs.is_empty() && !empty.more);
    Ok(())
}

/// Writers each create a key under `/seq/` and update `/pair/x` and `/pair/y` to the
/// same value in one txn; readers check that a range at revision R holds exactly the
/// creates up to R and never a half-written pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_see_whole_transactions_at_their_revision() -> Result<()> {
    let (_dir, store) = open()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..10 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..80 {
                let key = format!("/seq/{w}-{i:03}");
                let value = format!("{w}-{i}");
                let txn = Txn {
                    compares: vec![Compare::Absent(key.clone())],
                    ops: vec![put(&key, value.clone()), put("/pair/x", value.clone()), put("/pair/y", value)],
                };
                ensure!(store.txn(txn).await?.succeeded);
            }
            anyhow::Ok(())
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut checks = 0u32;
            while !stop.load(Ordering::Relaxed) || checks == 0 {
                let seq = store.range("/seq/", None, 0).await?;
                let revisions: BTreeSet<i64> = seq.kvs.iter().map(|kv| kv.mod_revision).collect();
                let expected: BTreeSet<i64> = (1..=seq.revision).collect();
                ensure!(revisions == expected, "range at {} saw revisions {:?}", seq.revision, revisions);
                let pair = store.range("/pair/", None, 0).await?;
                if let [x, y] = pair.kvs.as_slice() {
                    ensure!(x.value == y.value && x.mod_revision == y.mod_revision, "half a txn: {x:?} {y:?}");
                    ensure!(x.mod_revision == pair.revision, "the pair was written by every txn");
                } else {
                    ensure!(pair.kvs.is_empty() && pair.revision == 0, "pair keys appear together");
                }
                checks += 1;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(checks)
        }));
    }
    for writer in writers {
        writer.await??;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let checks = reader.await??;
        assert!(checks > 0);
    }
    assert_eq!(store.range("/seq/", None, 0).await?.kvs.len(), 800);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_size_of_one_flushes_every_writing_txn() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), SledOptions { batch_size: 1, ..SledOptions::default() })?;
    let mut tasks = Vec::new();
    for w in 0..5 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                store.txn(create(&format!("/b/{w}-{i}"), "v")).await?;
                store.txn(create(&format!("/b/{w}-{i}"), "again")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let stats = store.stats();
    assert_eq!((stats.transactions, stats.flushes, stats.keys), (100, 50, 50), "failed txns write nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_refuses_writes() -> Result<()> {
    let (_dir, store) = open()?;
    store.txn(create("/a", "1")).await?;
    store.close().await;
    assert!(matches!(store.txn(create("/b", "1")).await, Err(StorageError::Closed)));
    assert!(matches!(store.watch("/", 1), Err(StorageError::Closed)));
    assert_eq!(store.get("/a").await?.map(|kv| kv.mod_revision), Some(1), "reads of the last state still work");
    Ok(())
}
