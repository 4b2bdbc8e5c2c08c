//! The watch cache: an in-memory copy of every stored object, kept current by one
//! store watch, from which lists are served — kube-apiserver's cacher.
//!
//! Each object is kept decoded (for selectors) and encoded with its resourceVersion
//! (so a list answer is a concatenation, not a re-serialization). Lists are
//! consistent reads: they wait until the cache has caught up with the revision the
//! store had when the request arrived.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::{decode, set_resource_version};
use crate::storage::{EventKind, KeyValue, Revision, StorageError, Store};

/// Keys that are not API objects (allocation records) stay out of the cache.
fn is_object_key(key: &str) -> bool {
    !key.starts_with(crate::alloc::CLUSTER_IP_PREFIX) && !key.starts_with(crate::alloc::NODE_PORT_PREFIX)
}

/// One object as lists hand it out: decoded, and encoded on first need.
#[derive(Debug)]
pub struct Obj {
    pub value: Value,
    json: OnceLock<Bytes>,
}

impl Obj {
    pub fn new(value: Value) -> Self {
        Obj { value, json: OnceLock::new() }
    }

    /// The JSON encoding (with resourceVersion).
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| Bytes::from(serde_json::to_vec(&self.value).unwrap_or_default()))
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<Obj>>,
    revision: Revision,
}

/// See the module docs.
pub struct WatchCache {
    state: RwLock<State>,
    progress: watch::Sender<Revision>,
}

fn to_obj(kv: &KeyValue) -> Option<Arc<Obj>> {
    let obj = Obj::new(decode(kv).ok()?);
    let _ = obj.json();
    Some(Arc::new(obj))
}

impl WatchCache {
    /// Loads every object and starts following the store.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<WatchCache>, StorageError> {
        let (progress, _) = watch::channel(0);
        let cache = Arc::new(WatchCache { state: RwLock::new(State::default()), progress });
        let rev = cache.reload(store.as_ref()).await?;
        let stream = store.watch("/", rev)?;
        tokio::spawn(follow(Arc::downgrade(&cache), store, stream));
        Ok(cache)
    }

    async fn reload(&self, store: &dyn Store) -> Result<Revision, StorageError> {
        let all = store.range("/", None, 0).await?;
        let objects: BTreeMap<String, Arc<Obj>> = all
            .kvs
            .iter()
            .filter(|kv| is_object_key(&kv.key))
            .filter_map(|kv| to_obj(kv).map(|o| (kv.key.clone(), o)))
            .collect();
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.objects = objects;
        st.revision = all.revision;
        drop(st);
        self.progress.send_replace(all.revision);
        Ok(all.revision)
    }

    fn apply(&self, ev: &crate::storage::Event) {
        let rev = ev.revision();
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        if is_object_key(&ev.kv.key) {
            match ev.kind {
                EventKind::Put => match to_obj(&ev.kv) {
                    Some(o) => {
                        st.objects.insert(ev.kv.key.clone(), o);
                    }
                    None => {
                        st.objects.remove(&ev.kv.key);
                    }
                },
                EventKind::Delete => {
                    st.objects.remove(&ev.kv.key);
                }
            }
        }
        st.revision = st.revision.max(rev);
        drop(st);
        self.progress.send_if_modified(|r| {
            if rev > *r {
                *r = rev;
                true
            } else {
                false
            }
        });
    }

    /// Waits until the cache reflects revision `rev`; false on timeout.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await.is_ok_and(|r| r.is_ok())
    }

    /// Objects with keys under `prefix` (after `start_after`), in key order, and the
    /// revision they reflect. `visit` returns false to stop early.
    pub fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        mut visit: impl FnMut(&str, &Arc<Obj>) -> bool,
    ) -> Revision {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let lower = match start_after {
            Some(k) if k >= prefix => Bound::Excluded(k.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        for (k, o) in st.objects.range::<String, _>((lower, Bound::Unbounded)) {
            if !k.starts_with(prefix) || !visit(k, o) {
                break;
            }
        }
        st.revision
    }

    pub fn revision(&self) -> Revision {
        self.state.read().unwrap_or_else(|e| e.into_inner()).revision
    }
}

/// Applies store events to the cache; relists when the watch falls behind.
async fn follow(cache: std::sync::Weak<WatchCache>, store: Arc<dyn Store>, mut stream: crate::storage::WatchStream) {
    loop {
        match stream.next().await {
            Some(Ok(ev)) => match cache.upgrade() {
                Some(c) => c.apply(&ev),
                None => return,
            },
            Some(Err(StorageError::Compacted { .. })) => {
                let Some(c) = cache.upgrade() else { return };
                tracing::warn!("watch cache fell behind the store; relisting");
                match c.reload(store.as_ref()).await.and_then(|rev| store.watch("/", rev)) {
                    Ok(s) => stream = s,
                    Err(e) => {
                        tracing::error!(error = %e, "watch cache cannot follow the store");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "watch cache stream failed");
                return;
            }
            None => return,
        }
    }
}

/// Decoded objects of recent watch events, shared by all watchers, so that an event
/// seen by a hundred watchers is decoded and encoded once.
pub struct DecodeMemo {
    inner: std::sync::Mutex<MemoState>,
    capacity: usize,
}

/// A memo entry's key: the object's storage key and the revision of the event.
type MemoKey = (String, Revision);

/// Decoded objects, and their insertion order for eviction.
#[derive(Default)]
struct MemoState {
    map: std::collections::HashMap<MemoKey, Arc<Obj>>,
    order: std::collections::VecDeque<MemoKey>,
}

impl DecodeMemo {
    pub fn new(capacity: usize) -> Self {
        DecodeMemo { inner: std::sync::Mutex::new(Default::default()), capacity }
    }

    /// The object `kv` holds, stamped with resourceVersion `rev`.
    pub fn get(&self, kv: &KeyValue, rev: Revision) -> Option<Arc<Obj>> {
        let k = (kv.key.clone(), rev);
        if let Some(o) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).map.get(&k) {
            return Some(o.clone());
        }
        let mut v = decode(kv).ok()?;
        set_resource_version(&mut v, rev);
        let obj = Arc::new(Obj::new(v));
        let _ = obj.json();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *g;
        if st.map.insert(k.clone(), obj.clone()).is_none() {
            st.order.push_back(k);
            while st.order.len() > self.capacity {
                if let Some(old) = st.order.pop_front() {
                    st.map.remove(&old);
                }
            }
        }
        Some(obj)
    }
}

/// Stamps a decoded object for a list (used by the store fallback path).
pub fn obj_from_value(mut v: Value, rev: Option<Revision>) -> Arc<Obj> {
    if let Some(r) = rev {
        set_resource_version(&mut v, r);
    }
    Arc::new(Obj::new(v))
}
