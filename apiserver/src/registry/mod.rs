//! Generic REST storage: get, list, watch, create, update, patch and delete of any
//! served resource over the [`Store`](crate::storage::Store).
//!
//! Objects are stored as JSON without their `resourceVersion`; on every read the
//! store's `mod_revision` becomes `metadata.resourceVersion`, as kube-apiserver does
//! with etcd. Kind-specific behaviour lives in [`strategy`] (what a create or update
//! may change) and in [`crate::admission`] (defaulting, validation).

pub mod cache;
pub mod decode;
mod delete;
mod options;
mod read;
pub mod strategy;
mod subresources;
mod watch;
pub mod write;

use std::sync::Arc;

use serde_json::Value;

pub use options::{DeleteOptions, FieldValidation, ListOptions, PatchType, WriteOptions};
pub use read::Listing;
pub use watch::{WatchEvent, WatchEventType};

use crate::alloc::Allocator;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::{KeyValue, Store};

/// The generic registry shared by all request handlers.
pub struct Registry {
    pub store: Arc<dyn Store>,
    pub alloc: Allocator,
    /// Serves lists when present (see [`cache`]).
    pub cache: Option<Arc<cache::WatchCache>>,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: std::time::Duration,
    /// Watch events decoded once for all watchers.
    pub memo: Arc<cache::DecodeMemo>,
    /// Whether pod creates go through the ServiceAccount admission plugin (the binary turns it on, as
    /// kube-apiserver's default plugins do; in-process registries leave it off).
    pub service_account_admission: bool,
}

/// The storage key of one object.
pub fn key(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if res.namespaced => format!("/{}/{}/{}/{}", res.storage_group(), res.storage_plural(), ns, name),
        _ => format!("/{}/{}/{}", res.storage_group(), res.storage_plural(), name),
    }
}

/// The storage prefix of a collection: all namespaces when `namespace` is `None`.
pub fn prefix(res: &ResourceInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if res.namespaced => format!("/{}/{}/{}/", res.storage_group(), res.storage_plural(), ns),
        _ => format!("/{}/{}/", res.storage_group(), res.storage_plural()),
    }
}

/// Decodes a stored object and stamps its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("decoding stored object {}: {e}", kv.key)))?;
    set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

pub fn set_resource_version(v: &mut Value, rev: i64) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// Encodes an object for storage (without its resourceVersion).
pub fn encode(v: &Value) -> Result<bytes::Bytes, ApiError> {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&v).map(bytes::Bytes::from).map_err(|e| ApiError::Internal(format!("encoding object: {e}")))
}

/// `metadata.name` of an object, or "".
pub fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// `metadata.namespace` of an object, if set.
pub fn namespace_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl Registry {
    fn memo() -> Arc<cache::DecodeMemo> {
        Arc::new(cache::DecodeMemo::new(4096))
    }

    /// A registry that reads lists from the store.
    pub fn new(store: Arc<dyn Store>, alloc: Allocator) -> Self {
        Registry {
            store,
            alloc,
            cache: None,
            bookmark_interval: watch::BOOKMARK_INTERVAL,
            memo: Self::memo(),
            service_account_admission: false,
        }
    }

    /// A registry that serves lists from a watch cache, as kube-apiserver does.
    pub async fn with_watch_cache(store: Arc<dyn Store>, alloc: Allocator) -> Result<Self, ApiError> {
        let cache = cache::WatchCache::start(store.clone()).await?;
        Ok(Registry {
            store,
            alloc,
            cache: Some(cache),
            bookmark_interval: watch::BOOKMARK_INTERVAL,
            memo: Self::memo(),
            service_account_admission: false,
        })
    }
}
