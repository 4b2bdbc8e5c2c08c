//! SledStore watches: history replay then live events without gap or duplicate,
//! prefix filtering, delete events, compaction and lagging watchers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Compare, Event, EventKind, Op, StorageError, Store, Txn, WatchStream};

fn put(key: &str, value: &str) -> Txn {
    Txn { compares: vec![], ops: vec![Op::Put { key: key.to_owned(), value: Bytes::from(value.to_owned()) }] }
}

fn open(opts: SledOptions) -> Result<(tempfile::TempDir, Arc<SledStore>)> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), opts)?;
    Ok((dir, store))
}

async fn next_event(stream: &mut WatchStream) -> Result<Event> {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(event))) => Ok(event),
        Ok(Some(Err(e))) => bail!("watch failed: {e}"),
        Ok(None) => bail!("watch ended"),
        Err(_) => bail!("no event within 10s"),
    }
}

async fn nothing_more(stream: &mut WatchStream) -> bool {
    tokio::time::timeout(Duration::from_millis(200), stream.next()).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_history_then_follows_live_writes() -> Result<()> {
    let (_dir, store) = open(SledOptions::default())?;
    for i in 1..=10 {
        store.txn(put(&format!("/w/{i:02}"), "v")).await?;
        store.txn(put(&format!("/other/{i:02}"), "v")).await?;
    }
    let mut stream = store.watch("/w/", 9)?;
    for i in 11..=15 {
        store.txn(put(&format!("/w/{i:02}"), "v")).await?;
    }
    let mut keys = Vec::new();
    let mut revisions = Vec::new();
    for _ in 0..10 {
        let event = next_event(&mut stream).await?;
        keys.push(event.kv.key.clone());
        revisions.push(event.revision());
    }
    let expected: Vec<String> = (6..=15).map(|i| format!("/w/{i:02}")).collect();
    assert_eq!(keys, expected, "history from revision 10, then live; prefix filtered");
    assert_eq!(revisions, [11, 13, 15, 17, 19, 21, 22, 23, 24, 25]);
    assert!(nothing_more(&mut stream).await);
    Ok(())
}

/// Watches started at the revision of a range taken while writers run see exactly
/// the later writes, each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_range_revision_has_no_gap_or_duplicate() -> Result<()> {
    let (_dir, store) = open(SledOptions::default())?;
    let mut writers = Vec::new();
    for w in 0..10 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                store.txn(put(&format!("/k/{w}-{i}"), "v")).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut watches = Vec::new();
    for _ in 0..5 {
        let listed = store.range("/k/", None, 0).await?;
        watches.push((listed.revision, store.watch("/k/", listed.revision)?));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for writer in writers {
        writer.await??;
    }
    let total = store.revision();
    assert_eq!(total, 500);
    for (from, mut stream) in watches {
        for expected in from + 1..=total {
            let event = next_event(&mut stream).await?;
            assert_eq!(event.revision(), expected, "watch from {from}");
        }
        assert!(nothing_more(&mut stream).await, "watch from {from} has a duplicate");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_previous_values() -> Result<()> {
    let (_dir, store) = open(SledOptions::default())?;
    let mut stream = store.watch("/cm/", 0)?;
    store.txn(put("/cm/a", "one")).await?;
    store.txn(put("/cm/a", "two")).await?;
    let delete = Txn { compares: vec![Compare::Exists("/cm/a".into())], ops: vec![Op::Delete { key: "/cm/a".into() }] };
    store.txn(delete).await?;

    let created = next_event(&mut stream).await?;
    assert_eq!((created.kind, created.kv.value.as_ref(), created.prev.is_none()), (EventKind::Put, &b"one"[..], true));
    let updated = next_event(&mut stream).await?;
    assert_eq!(updated.kind, EventKind::Put);
    assert_eq!((updated.kv.create_revision, updated.kv.mod_revision), (1, 2));
    assert_eq!(updated.prev.as_ref().map(|p| (p.value.as_ref(), p.mod_revision)), Some((&b"one"[..], 1)));
    let deleted = next_event(&mut stream).await?;
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.revision(), 3);
    assert!(deleted.kv.value.is_empty());
    assert_eq!(deleted.prev.as_ref().map(|p| (p.value.as_ref(), p.mod_revision)), Some((&b"two"[..], 2)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_after_a_future_revision_gets_only_later_events() -> Result<()> {
    let (_dir, store) = open(SledOptions::default())?;
    store.txn(put("/f/a", "1")).await?;
    let mut stream = store.watch("/f/", 3)?;
    for i in 2..=5 {
        store.txn(put("/f/a", &i.to_string())).await?;
    }
    assert_eq!(next_event(&mut stream).await?.revision(), 4);
    assert_eq!(next_event(&mut stream).await?.revision(), 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_revisions_are_compacted() -> Result<()> {
    let (_dir, store) = open(SledOptions { history_len: 5, ..SledOptions::default() })?;
    assert_eq!(store.oldest_watchable(), 0);
    for i in 1..=12 {
        store.txn(put("/c/a", &i.to_string())).await?;
    }
    assert_eq!(store.oldest_watchable(), 7);
    match store.watch("/c/", 6) {
        Err(StorageError::Compacted { requested: 6, oldest: 7 }) => {}
        Err(other) => bail!("expected Compacted, got {other}"),
        Ok(_) => bail!("expected Compacted, got a stream"),
    }
    let mut stream = store.watch("/c/", 7)?;
    for expected in 8..=12 {
        assert_eq!(next_event(&mut stream).await?.revision(), expected);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_gets_compacted_and_ends() -> Result<()> {
    let (_dir, store) = open(SledOptions { live_buffer: 4, ..SledOptions::default() })?;
    let mut slow = store.watch("/l/", 0)?;
    let mut keeping_up = store.watch("/l/", 0)?;
    for i in 1..=20 {
        store.txn(put("/l/a", &i.to_string())).await?;
        assert_eq!(next_event(&mut keeping_up).await?.revision(), i);
    }
    match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
        Ok(Some(Err(StorageError::Compacted { requested: 0, .. }))) => {}
        other => bail!("expected one Compacted, got {other:?}"),
    }
    let end = tokio::time::timeout(Duration::from_secs(10), slow.next()).await.context("the stream ends")?;
    ensure!(end.is_none(), "the stream ended after Compacted, got {end:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_ends_watches() -> Result<()> {
    let (_dir, store) = open(SledOptions::default())?;
    let mut stream = store.watch("/", 0)?;
    store.txn(put("/x", "1")).await?;
    assert_eq!(next_event(&mut stream).await?.revision(), 1);
    store.close().await;
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.context("the stream ends")?;
    ensure!(end.is_none(), "got {end:?}");
    Ok(())
}
