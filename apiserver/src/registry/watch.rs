//! Watch: a stream of ADDED/MODIFIED/DELETED events for a collection, from a
//! resourceVersion, with selector filtering (objects moving in or out of the
//! selection become ADDED/DELETED, as the kube-apiserver watch cache does),
//! bookmarks, initial events and 410 Gone for compacted revisions.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::json;

use super::cache::Obj;
use super::read::Filter;
use super::{prefix, ListOptions, Registry};
use crate::convert;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::{EventKind, Revision, StorageError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
            WatchEventType::Bookmark => "BOOKMARK",
            WatchEventType::Error => "ERROR",
        }
    }
}

/// One watch event as sent to the client (`{"type": …, "object": …}`).
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub kind: WatchEventType,
    /// Shared between watchers; its JSON encoding is computed once.
    pub object: Arc<Obj>,
}

/// How often bookmarks are sent when the client allows them.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);
/// The longest a watch stays open when the client sets no timeout.
pub const MAX_WATCH: Duration = Duration::from_secs(1800);

fn bookmark(res: &ResourceInfo, rv: Revision, initial_end: bool) -> WatchEvent {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    WatchEvent {
        kind: WatchEventType::Bookmark,
        object: Arc::new(Obj::new(json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta}))),
    }
}

fn error_event(e: &ApiError) -> WatchEvent {
    WatchEvent { kind: WatchEventType::Error, object: Arc::new(Obj::new(e.to_status())) }
}

impl Registry {
    /// Starts a watch. Errors known before streaming (bad selectors) are returned;
    /// later ones (compaction) arrive as an ERROR event that ends the stream.
    pub async fn watch(
        &self,
        res: &'static ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        let filter = Filter::new(res, opts)?;
        let pfx = prefix(res, ns);
        let requested: Option<Revision> = match opts.resource_version.as_deref() {
            None | Some("0") => None,
            Some(s) => Some(s.parse().map_err(|_| {
                ApiError::BadRequest(format!("resourceVersion: Invalid value: {s:?}: must be an integer"))
            })?),
        };
        let send_initial = opts.send_initial_events.unwrap_or(requested.is_none());
        let bookmarks = opts.allow_watch_bookmarks;
        let interval = self.bookmark_interval;
        let timeout = opts
            .timeout_seconds
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64))
            .unwrap_or(MAX_WATCH)
            .min(MAX_WATCH);

        // Initial state.
        let mut initial: Vec<WatchEvent> = Vec::new();
        let start: Revision;
        if send_initial {
            let listing = self
                .list(
                    res,
                    ns,
                    &ListOptions { resource_version: None, limit: None, continue_token: None, ..opts.clone() },
                )
                .await?;
            start = listing.resource_version;
            initial.extend(listing.items.iter().map(|o| WatchEvent { kind: WatchEventType::Added, object: o.clone() }));
            if opts.send_initial_events == Some(true) {
                initial.push(bookmark(res, start, true));
            }
        } else {
            start = requested.unwrap_or_else(|| self.store.revision());
        }
        let live = match self.store.watch(&pfx, start) {
            Ok(s) => Some(s),
            Err(StorageError::Compacted { requested, oldest }) => {
                initial.push(error_event(&ApiError::too_old(requested, oldest)));
                None
            }
            Err(e) => return Err(e.into()),
        };

        let memo = self.memo.clone();
        let stream = async_stream::stream! {
            for ev in initial {
                yield ev;
            }
            let Some(mut live) = live else { return };
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            let mut last_rev = start;
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = tick.tick(), if bookmarks => {
                        yield bookmark(res, last_rev, false);
                    }
                    item = live.next() => {
                        let Some(item) = item else { break };
                        let ev = match item {
                            Ok(ev) => ev,
                            Err(StorageError::Compacted { requested, oldest }) => {
                                yield error_event(&ApiError::too_old(requested, oldest));
                                break;
                            }
                            Err(e) => {
                                yield error_event(&ApiError::Internal(e.to_string()));
                                break;
                            }
                        };
                        last_rev = ev.revision();
                        let rev = ev.revision();
                        let everything = filter.is_everything();
                        let cur = match ev.kind {
                            EventKind::Put => memo.get(&ev.kv, rev),
                            EventKind::Delete => None,
                        };
                        // The previous state matters for selectors (moving in or out) and deletes.
                        let prev = match &ev.prev {
                            Some(kv) if !everything || cur.is_none() => memo.get(kv, rev),
                            _ => None,
                        };
                        let had_prev = ev.prev.is_some();
                        let cur_ok = cur.as_ref().is_some_and(|o| everything || filter.matches(&o.value));
                        let prev_ok = if everything { had_prev } else { prev.as_ref().is_some_and(|o| filter.matches(&o.value)) };
                        let out = match (cur, prev) {
                            (Some(c), _) if cur_ok && prev_ok => Some((WatchEventType::Modified, c)),
                            (Some(c), _) if cur_ok => Some((WatchEventType::Added, c)),
                            (_, Some(p)) if prev_ok => Some((WatchEventType::Deleted, p)),
                            _ => None,
                        };
                        if let Some((kind, object)) = out {
                            let object = convert::obj_to_view(res, &object);
                            yield WatchEvent { kind, object };
                        }
                    }
                }
            }
        };
        Ok(stream.boxed())
    }
}
