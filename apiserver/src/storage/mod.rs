//! Storage: a revisioned key-value store with transactions and watch, shaped like etcd v3.
//!
//! The API server keeps every object as JSON under a key
//! (`/<group>/<plural>/<namespace>/<name>`, `core` for the core group). Every
//! successful write transaction advances one global revision, which becomes the
//! `resourceVersion` of the objects it wrote. [`Store`] is the only interface the rest
//! of the API server sees; [`sled::SledStore`] is the embedded default, and an etcd
//! backend would implement the same trait.
//!
//! Contract (every backend):
//! - `txn` is atomic and durable: when it returns `Ok`, the write survives `kill -9`.
//! - Revisions start at 1, increase by exactly 1 per successful transaction that
//!   wrote at least one key, and keep increasing across restarts.
//! - `watch(prefix, after)` yields every event on keys under `prefix` with revision
//!   `> after`, in revision order, with no gaps or duplicates, then follows live writes;
//!   if `after` is older than the history kept, it fails with [`StorageError::Compacted`].
//!   A watcher that falls too far behind gets one `Err(Compacted)` item and its stream ends.
//! - A `range` answer is consistent: it reflects exactly the transactions up to its
//!   `revision`.

pub mod sled;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

/// A store revision; the `resourceVersion` of objects.
pub type Revision = i64;

/// One key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the transaction that created the key.
    pub create_revision: Revision,
    /// Revision of the transaction that last wrote the key.
    pub mod_revision: Revision,
}

/// A condition of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists, whatever its revision.
    Exists(String),
    /// The key exists and was last written at exactly this revision.
    ModRevision(String, Revision),
}

/// A write in a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Bytes },
    Delete { key: String },
}

/// An etcd-style transaction: if every compare holds, apply `ops` atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

/// The answer to a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// All compares held and the ops were applied.
    pub succeeded: bool,
    /// Indexes into `compares` of those that failed (empty when `succeeded`).
    pub failed: Vec<usize>,
    /// The revision of this transaction if it succeeded, else the current revision.
    pub revision: Revision,
}

/// A range read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    /// Keys in key order.
    pub kvs: Vec<KeyValue>,
    /// More keys under the prefix follow the last one returned.
    pub more: bool,
    /// The store revision the read reflects.
    pub revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put`, the new value. For `Delete`, the key with an empty value and
    /// `mod_revision` set to the deleting transaction's revision.
    pub kv: KeyValue,
    /// The value before this event, if the key existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StorageError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage revision {requested} has been compacted; the oldest available is {oldest}")]
    Compacted { requested: Revision, oldest: Revision },
    #[error("opening the store at {path}: {source}")]
    Open { path: String, source: ::sled::Error },
    #[error("storage backend failed while {doing}: {source}")]
    Backend { doing: &'static str, source: ::sled::Error },
    #[error("stored record for key {key} is corrupt: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("the store is shutting down")]
    Closed,
}

/// The storage interface of the API server. See the module docs for the contract.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;

    /// Keys starting with `prefix`, in key order, strictly after `start_after` when
    /// given, at most `limit` of them (`0` = no limit).
    async fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<RangeResult, StorageError>;

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StorageError>;

    /// Events under `prefix` with revision `> after`, then live ones.
    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// The revision of the last durable transaction.
    fn revision(&self) -> Revision;

    /// The oldest `after` that [`Store::watch`] still accepts.
    fn oldest_watchable(&self) -> Revision;
}
