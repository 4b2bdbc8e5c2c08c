//! Informers: one list+watch per resource (kube-runtime's `watcher`, which relists and backs off on its own)
//! feeding a shared [`Store`] and fanning every change out to subscribed controllers as an old/new pair.
//!
//! Controllers need the old object too: a pod whose labels changed must be removed from the Services that
//! selected it before. After every (re)list the cache is diffed against the new list, so objects deleted
//! while the watch was down produce delete changes and nothing is missed (level-triggered).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use super::store::{ObjectKey, Store};

/// One change of one object, as seen by the informer. `old` is `None` for an add, `new` is `None` for a delete.
pub struct Change<K> {
    /// The object before the change, if the cache had it.
    pub old: Option<Arc<K>>,
    /// The object after the change; `None` when it was deleted.
    pub new: Option<Arc<K>>,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        Change { old: self.old.clone(), new: self.new.clone() }
    }
}

impl<K: Resource> Change<K> {
    /// The key of the changed object.
    pub fn key(&self) -> Option<ObjectKey> {
        self.new.as_deref().or(self.old.as_deref()).map(ObjectKey::of)
    }
}

/// A running list+watch of one resource. Cheap to clone.
pub struct Informer<K> {
    resource: &'static str,
    store: Store<K>,
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Change<K>>>>>,
    synced: watch::Receiver<bool>,
    synced_tx: Arc<watch::Sender<bool>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            resource: self.resource,
            store: self.store.clone(),
            subscribers: self.subscribers.clone(),
            synced: self.synced.clone(),
            synced_tx: self.synced_tx.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer for `resource` (a name for logs and metrics, like "pods"). It does nothing until
    /// [`Informer::run`] is polled.
    pub fn new(resource: &'static str) -> Self {
        let (tx, rx) = watch::channel(false);
        Informer { resource, store: Store::new(), subscribers: Arc::default(), synced: rx, synced_tx: Arc::new(tx) }
    }

    /// The resource name given at creation.
    pub fn resource(&self) -> &'static str {
        self.resource
    }

    /// The informer's cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// A stream of every change from now on. Subscribe before [`Informer::wait_synced`] returns to see the
    /// initial list as adds; later subscribers should read the store for what is already there.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Change<K>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// Waits until the first complete list is in the cache.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.clone();
        // The sender lives as long as any clone of this informer, so this only fails if it was dropped,
        // and then there is nothing to wait for.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Whether the first complete list is in the cache.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    fn publish(&self, change: Change<K>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| tx.send(change.clone()).is_ok());
    }

    /// Lists and watches `api` for ever, keeping the store current. Watch errors are logged and retried with
    /// kube-runtime's default backoff.
    pub async fn run(self, api: Api<K>, config: watcher::Config) {
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut relist: Option<HashMap<ObjectKey, Arc<K>>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Err(e) => {
                    tracing::warn!(resource = self.resource, error = %e, "watch failed; retrying");
                }
                Ok(Event::Init) => relist = Some(HashMap::new()),
                Ok(Event::InitApply(obj)) => {
                    if let Some(buf) = relist.as_mut() {
                        buf.insert(ObjectKey::of(&obj), Arc::new(obj));
                    }
                }
                Ok(Event::InitDone) => {
                    let fresh = relist.take().unwrap_or_default();
                    for key in self.store.keys() {
                        if !fresh.contains_key(&key) {
                            if let Some(old) = self.store.remove(&key) {
                                self.publish(Change { old: Some(old), new: None });
                            }
                        }
                    }
                    for (_, obj) in fresh {
                        self.apply(obj);
                    }
                    self.synced_tx.send_replace(true);
                    tracing::debug!(resource = self.resource, objects = self.store.len(), "informer synced");
                }
                Ok(Event::Apply(obj)) => self.apply(Arc::new(obj)),
                Ok(Event::Delete(obj)) => {
                    let key = ObjectKey::of(&obj);
                    let old = self.store.remove(&key).unwrap_or_else(|| Arc::new(obj));
                    self.publish(Change { old: Some(old), new: None });
                }
            }
        }
    }

    fn apply(&self, obj: Arc<K>) {
        let old = self.store.apply(obj.clone());
        if let Some(o) = &old {
            if o.meta().resource_version.is_some() && o.meta().resource_version == obj.meta().resource_version {
                return;
            }
        }
        self.publish(Change { old, new: Some(obj) });
    }
}
