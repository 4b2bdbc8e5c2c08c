//! SledStore across restarts: data and revision survive a close and reopen,
//! revisions are never reused, the watch history starts at the revision at open,
//! and corrupt records are reported, not served.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Compare, Op, StorageError, Store, Txn};

fn put(key: &str, value: &str) -> Txn {
    Txn { compares: vec![], ops: vec![Op::Put { key: key.to_owned(), value: Bytes::from(value.to_owned()) }] }
}

fn delete(key: &str) -> Txn {
    Txn { compares: vec![Compare::Exists(key.to_owned())], ops: vec![Op::Delete { key: key.to_owned() }] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_keys_and_revision() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let before = {
        let store = SledStore::open(dir.path(), SledOptions::default())?;
        for i in 0..50 {
            store.txn(put(&format!("/r/{i:02}"), &format!("v{i}"))).await?;
        }
        store.txn(put("/r/07", "updated")).await?;
        store.txn(delete("/r/49")).await?;
        assert!(
            matches!(SledStore::open(dir.path(), SledOptions::default()), Err(StorageError::Open { .. })),
            "the directory is locked while open"
        );
        let before = store.range("/", None, 0).await?;
        store.close().await;
        before
    };
    assert_eq!(before.revision, 52);

    let store = SledStore::open(dir.path(), SledOptions::default())?;
    assert_eq!(store.revision(), 52, "the revision of the trailing delete is kept");
    let after = store.range("/", None, 0).await?;
    assert_eq!(after, before);
    let updated = store.get("/r/07").await?.context("/r/07 exists")?;
    assert_eq!((updated.value.as_ref(), updated.create_revision, updated.mod_revision), (&b"updated"[..], 8, 51));

    assert_eq!(store.oldest_watchable(), 52, "the history is empty after a restart");
    match store.watch("/", 51) {
        Err(StorageError::Compacted { requested: 51, oldest: 52 }) => {}
        Err(other) => bail!("expected Compacted, got {other}"),
        Ok(_) => bail!("expected Compacted, got a stream"),
    }
    let mut stream = store.watch("/", 52)?;
    let next = store.txn(put("/r/new", "n")).await?;
    assert_eq!(next.revision, 53, "revisions continue, never reused");
    let event = stream.next().await.context("an event")??;
    assert_eq!((event.kv.key.as_str(), event.revision()), ("/r/new", 53));
    store.close().await;

    let again = SledStore::open(dir.path(), SledOptions::default())?;
    assert_eq!(again.revision(), 53);
    assert_eq!(again.len(), 50);
    Ok(())
}

/// Without a tokio runtime the writer runs on a thread of its own.
#[test]
fn opens_outside_a_runtime() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path(), SledOptions::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(store.txn(put("/x", "1")))?;
    assert_eq!(result.revision, 1);
    runtime.block_on(store.close());
    let reopened = SledStore::open(dir.path(), SledOptions::default())?;
    assert_eq!(reopened.revision(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_fail_the_open() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let store = SledStore::open(dir.path(), SledOptions::default())?;
        store.txn(put("/ok", "1")).await?;
        store.close().await;
    }
    {
        let db = sled::open(dir.path())?;
        db.insert(b"k/broken", &[1u8, 0, 0][..])?;
        db.flush()?;
    }
    match SledStore::open(dir.path(), SledOptions::default()) {
        Err(StorageError::Corrupt { key, .. }) => assert_eq!(key, "/broken"),
        Err(other) => bail!("expected Corrupt, got {other}"),
        Ok(_) => bail!("a corrupt record was accepted"),
    }
    Ok(())
}
