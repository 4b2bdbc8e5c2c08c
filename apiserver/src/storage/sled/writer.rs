//! The single writer: takes transactions from the queue in groups, evaluates them
//! in order, makes each group durable with one sled batch and one flush (group
//! commit), then publishes it and answers the callers.
//!
//! While a group is being flushed the next transactions wait in the queue, so the
//! busier the store, the larger the groups and the fewer flushes per transaction.

use std::fs::File;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::group::Group;
use super::record;
use super::state::Shared;
use crate::storage::{StorageError, Txn, TxnResult};

/// What the store handle asks of the writer.
pub enum Request {
    Txn {
        txn: Txn,
        reply: oneshot::Sender<Result<TxnResult, StorageError>>,
    },
    /// Finish the queued work, close the database and answer.
    Close {
        reply: oneshot::Sender<()>,
    },
}

pub struct Writer {
    pub db: sled::Db,
    /// sled's log file, synced with `fdatasync` after each flush when set.
    pub log: Option<Arc<File>>,
    pub shared: Arc<Shared>,
    pub requests: mpsc::Receiver<Request>,
    /// The most transactions in one group commit.
    pub batch_size: usize,
}

type Reply = oneshot::Sender<Result<TxnResult, StorageError>>;

impl Writer {
    /// Serves requests until the store is closed or dropped, or the disk fails.
    pub async fn run(mut self) {
        let mut closing = Vec::new();
        let mut txns = Vec::with_capacity(self.batch_size);
        let mut replies: Vec<Reply> = Vec::with_capacity(self.batch_size);
        while let Some(first) = self.requests.recv().await {
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Txn { txn, reply } => {
                        txns.push(txn);
                        replies.push(reply);
                    }
                    Request::Close { reply } => {
                        closing.push(reply);
                        break;
                    }
                }
                if txns.len() < self.batch_size {
                    next = self.requests.try_recv().ok();
                }
            }
            let failed = match self.commit(&txns).await {
                Ok(results) => {
                    for (reply, result) in replies.drain(..).zip(results) {
                        // The caller may have given up waiting; the write stands.
                        let _ = reply.send(Ok(result));
                    }
                    false
                }
                Err(error) => {
                    tracing::error!(%error, "the store failed to commit; it stops accepting writes");
                    for reply in replies.drain(..) {
                        let _ = reply.send(Err(clone_error(&error)));
                    }
                    true
                }
            };
            txns.clear();
            if failed || !closing.is_empty() {
                break;
            }
            // Let the callers just answered queue their next transactions, so they
            // join the next group instead of waiting one more flush.
            tokio::task::yield_now().await;
        }
        self.shutdown(closing);
    }

    async fn commit(&self, txns: &[Txn]) -> Result<Vec<TxnResult>, StorageError> {
        if txns.is_empty() {
            return Ok(Vec::new());
        }
        let mut group = {
            let state = self.shared.read();
            Group::evaluate(&state.index, self.shared.revision(), txns)
        };
        if group.has_writes() {
            let mut batch = sled::Batch::default();
            for (key, entry) in &group.writes {
                match entry {
                    Some(entry) => batch.insert(record::data_key(key), record::encode_entry(entry)),
                    None => batch.remove(record::data_key(key)),
                }
            }
            batch.insert(record::REVISION_KEY, &record::encode_revision(group.revision));
            let (db, log) = (self.db.clone(), self.log.clone());
            tokio::task::spawn_blocking(move || durably_apply(&db, log.as_deref(), batch)).await.map_err(
                |join| StorageError::Backend {
                    doing: "waiting for a group commit to reach the disk",
                    source: sled::Error::Io(std::io::Error::other(join.to_string())),
                },
            )??;
        }
        let results = std::mem::take(&mut group.results);
        self.shared.count(txns.len(), group.has_writes());
        self.shared.publish(group);
        Ok(results)
    }

    fn shutdown(mut self, closing: Vec<oneshot::Sender<()>>) {
        self.shared.close();
        // Queued transactions are answered `Closed` when their reply senders drop.
        self.requests.close();
        if let Err(source) = self.db.flush() {
            tracing::error!(error = %source, "flushing the store on close");
        }
        drop(self.db);
        for reply in closing {
            let _ = reply.send(());
        }
    }
}

/// Applies a group's batch and makes it durable. sled's flush writes its log with
/// `sync_file_range`, which survives a process kill but neither persists the file's
/// size nor flushes the device cache; `fdatasync` on the log adds both.
fn durably_apply(db: &sled::Db, log: Option<&File>, batch: sled::Batch) -> Result<(), StorageError> {
    db.apply_batch(batch).map_err(|source| StorageError::Backend { doing: "applying a group commit", source })?;
    db.flush().map_err(|source| StorageError::Backend { doing: "flushing a group commit to disk", source })?;
    if let Some(log) = log {
        log.sync_data().map_err(|e| StorageError::Backend {
            doing: "syncing the store's log file to disk",
            source: sled::Error::Io(e),
        })?;
    }
    Ok(())
}

/// A copy of a commit error for every caller of the failed group.
fn clone_error(error: &StorageError) -> StorageError {
    match error {
        StorageError::Backend { doing, source } => StorageError::Backend { doing, source: source.clone() },
        StorageError::Compacted { requested, oldest } => {
            StorageError::Compacted { requested: *requested, oldest: *oldest }
        }
        StorageError::Open { path, source } => StorageError::Open { path: path.clone(), source: source.clone() },
        StorageError::Corrupt { key, detail } => StorageError::Corrupt { key: key.clone(), detail: detail.clone() },
        StorageError::Closed => StorageError::Closed,
    }
}
