//! Fixtures shared by the API server's integration suites: a registry on a sled store,
//! bootstrapped as a starting server is, and short names for served resources and options.

// Each suite uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::bootstrap::Bootstrap;
use knet_apiserver::registry::{Registry, WriteOptions};
use knet_apiserver::resources::{self, ResourceInfo};
use knet_apiserver::storage::sled::{SledOptions, SledStore};

/// A registry on a fresh store, removed when the fixture is dropped.
pub struct Fixture {
    pub reg: Registry,
    pub store: Arc<SledStore>,
    _dir: tempfile::TempDir,
}

/// A bootstrapped registry with a watch cache on a fresh store.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reg, store) = open(dir.path()).await;
    Fixture { reg, store, _dir: dir }
}

/// A registry with a watch cache on the store in `dir` (created, or reopened with its
/// allocations loaded), bootstrapped. The store is returned to close it before reopening.
pub async fn open(dir: &Path) -> (Registry, Arc<SledStore>) {
    let store = SledStore::open(dir, SledOptions::default()).expect("open store");
    let alloc = Allocator::new(AllocConfig::default());
    alloc.load(store.as_ref()).await.expect("load allocations");
    let reg = Registry::with_watch_cache(store.clone(), alloc).await.expect("watch cache");
    bootstrap(&reg).await;
    (reg, store)
}

/// The system namespaces and the `kubernetes` Service (10.96.0.1:443 → 127.0.0.1:6443).
pub async fn bootstrap(reg: &Registry) {
    Bootstrap {
        advertise_address: "127.0.0.1".parse().expect("ip"),
        secure_port: 6443,
        service_ip: "10.96.0.1".parse().expect("ip"),
    }
    .run(reg)
    .await
    .expect("bootstrap");
}

/// The served v1 resource `plural` of `group` (`""` for core).
pub fn r(group: &str, plural: &str) -> &'static ResourceInfo {
    resources::find(group, "v1", plural).expect("resource")
}

pub fn w() -> WriteOptions {
    WriteOptions::default()
}
