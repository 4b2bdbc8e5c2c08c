//! [`SledStore`]: the embedded [`Store`] backend, durable in sled.
//!
//! - Reads come from an in-memory `index` of the current keys, updated only when a
//!   group commit is durable, so a read never sees half a transaction, a mix of
//!   revisions, or a write that a crash could still lose.
//! - Writes go through one `writer` task: group commit, one sled batch (keys and
//!   the store revision together, see `record`) and one flush per group.
//! - Watches replay the bounded `history` and then follow the live broadcast
//!   (`watch`), both kept in the shared `state`.
//!
//! Every current value is held in memory (the index) besides sled's own cache:
//! memory grows with the data, which suits the object counts of a small cluster.

mod group;
mod history;
mod index;
mod record;
mod state;
mod watch;
mod writer;

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use self::index::Index;
use self::state::Shared;
use self::writer::{Request, Writer};
use super::{KeyValue, RangeResult, Revision, StorageError, Store, Txn, TxnResult, WatchStream};

/// Tuning of a [`SledStore`].
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// Watch events kept in memory for replaying watches from a past revision.
    pub history_len: usize,
    /// The most transactions made durable by one flush.
    pub batch_size: usize,
    /// Group commits buffered for live watchers; one that falls further behind gets
    /// `Compacted` and must start again.
    pub live_buffer: usize,
    /// Bytes of sled's page cache (reads are served from the index, not from sled).
    pub cache_capacity: u64,
    /// Also `fdatasync` sled's log after each group commit, so acknowledged writes
    /// survive a power loss or host crash, not only a killed process.
    pub sync_data: bool,
}

impl Default for SledOptions {
    fn default() -> SledOptions {
        SledOptions {
            history_len: 100_000,
            batch_size: 512,
            live_buffer: 4096,
            cache_capacity: 32 << 20,
            sync_data: true,
        }
    }
}

/// Counters of a [`SledStore`] since it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SledStats {
    /// Transactions answered (succeeded or not).
    pub transactions: u64,
    /// Group commits written and flushed to disk; `transactions / flushes` is the
    /// average group size.
    pub flushes: u64,
    /// Keys stored now.
    pub keys: usize,
}

/// The sled-backed store. Opened with [`SledStore::open`]; [`SledStore::close`]
/// stops the writer and releases the database (dropping every handle does too, but
/// without waiting, so reopen the directory only after `close`).
pub struct SledStore {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore").field("revision", &self.shared.revision()).finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir` and starts its writer, on the current
    /// tokio runtime when there is one, else on a thread of its own.
    pub fn open(dir: &Path, opts: SledOptions) -> Result<Arc<SledStore>, StorageError> {
        let open_error = |source| StorageError::Open { path: dir.display().to_string(), source };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(open_error)?;
        let (index, revision) = load(&db)?;
        tracing::info!(path = %dir.display(), revision, keys = index.len(), "opened the sled store");
        let shared = Arc::new(Shared::new(index, revision, opts.history_len, opts.live_buffer));
        let batch_size = opts.batch_size.max(1);
        let (requests, queue) = mpsc::channel(batch_size.saturating_mul(2));
        let log = match opts.sync_data {
            // sled keeps its log in the file `db` of its directory.
            true => Some(Arc::new(File::open(dir.join("db")).map_err(|e| open_error(sled::Error::Io(e)))?)),
            false => None,
        };
        let writer = Writer { db, log, shared: shared.clone(), requests: queue, batch_size };
        spawn(writer.run()).map_err(|e| open_error(sled::Error::Io(e)))?;
        Ok(Arc::new(SledStore { shared, requests }))
    }

    /// Finishes the queued writes, ends every watch and closes the database, so the
    /// directory can be opened again. Later calls fail with [`StorageError::Closed`].
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).await.is_ok() {
            // An error means the writer already stopped, which is what was asked.
            let _ = done.await;
        }
    }

    /// Counters of the writer, e.g. for metrics.
    pub fn stats(&self) -> SledStats {
        let (transactions, flushes) = self.shared.counts();
        SledStats { transactions, flushes, keys: self.len() }
    }

    /// The number of keys stored.
    pub fn len(&self) -> usize {
        self.shared.read().index.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        Ok(self.shared.read().index.get(key).map(|entry| entry.to_key_value(key)))
    }

    async fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<RangeResult, StorageError> {
        let state = self.shared.read();
        let (kvs, more) = state.index.range(prefix, start_after, limit);
        // Publishing takes the write lock, so the revision matches the index here.
        Ok(RangeResult { kvs, more, revision: self.shared.revision() })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Txn { txn, reply }).await.map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        watch::watch(self.shared.clone(), prefix, after)
    }

    fn revision(&self) -> Revision {
        self.shared.revision()
    }

    fn oldest_watchable(&self) -> Revision {
        self.shared.oldest_watchable()
    }
}

/// Reads every key and the store revision from sled.
fn load(db: &sled::Db) -> Result<(Index, Revision), StorageError> {
    let backend = |doing| move |source| StorageError::Backend { doing, source };
    let mut revision = match db.get(record::REVISION_KEY).map_err(backend("reading the store revision"))? {
        Some(raw) => record::decode_revision(&raw)?,
        None => 0,
    };
    let mut index = Index::default();
    for item in db.scan_prefix(record::DATA_PREFIX) {
        let (raw_key, raw_value) = item.map_err(backend("loading the stored keys"))?;
        let key = record::decode_key(&raw_key)?;
        let entry = record::decode_entry(&key, &raw_value)?;
        // The revision is written with every batch; this only guards old layouts.
        revision = revision.max(entry.mod_revision);
        index.apply(key, Some(entry));
    }
    Ok((index, revision))
}

/// Runs the writer on the current runtime, or on a thread with its own runtime.
fn spawn(writer: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(writer);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("knet-sled-writer".to_owned()).spawn(move || runtime.block_on(writer))?;
    Ok(())
}
