//! The garbage collector: deletes objects whose owners are gone, and completes orphan and foreground deletion
//! (upstream pkg/controller/garbagecollector). It discovers every resource the API serves, watches each one's
//! metadata into a dependency graph ([`graph`]), and checks with live GETs before deleting ([`collector`]).
//! Pod garbage collection is the separate `podgc` controller ([`crate::podgc`]).

pub mod collector;
pub mod decide;
pub mod discovery;
pub mod graph;
pub mod monitor;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::context::Context;
use crate::runtime::{every, run_workers};
use collector::{Attempt, AttemptWorkers, Collector};
use discovery::ServedResource;

/// How often discovery runs again to find new resources to watch.
const REDISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// How long the collector waits for its first lists before it starts anyway (live GETs keep it correct).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong in the garbage collector.
#[derive(Debug, thiserror::Error)]
pub enum GarbageCollectorError {
    /// API discovery failed.
    #[error("discovering the resources the API serves: {0}")]
    Discovery(#[source] kube::Error),
    /// An owner reference names a kind the API does not serve.
    #[error("kind {kind} of {api_version} is not served by the API")]
    UnknownKind {
        /// The reference's apiVersion.
        api_version: String,
        /// The reference's kind.
        kind: String,
    },
    /// A live GET failed.
    #[error("reading {what}: {source}")]
    Get {
        /// The object.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A delete failed.
    #[error("deleting {what}: {source}")]
    Delete {
        /// The object.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A patch of owner references or finalizers failed.
    #[error("patching {what}: {source}")]
    Patch {
        /// The object.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A referenced owner exists but no watch has reported it yet.
    #[error("owner {0} exists but the garbage collector's watches have not seen it yet")]
    NotObserved(String),
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), GarbageCollectorError> {
    let resources = discover_until_ok(&ctx).await;
    let gc = Arc::new(Collector::new(ctx.client.clone(), resources.clone()));
    let mut watched: HashSet<ServedResource> = HashSet::new();
    let mut synced = Vec::new();
    for res in resources.garbage_collectable() {
        synced.push(start_monitor(&ctx, &gc, res.clone()));
        watched.insert(res.clone());
    }
    let all_synced = async {
        for mut rx in synced {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    if tokio::time::timeout(SYNC_TIMEOUT, all_synced).await.is_err() {
        tracing::warn!("garbage collector: not every resource was listed in time; starting anyway");
    }
    tracing::info!(resources = watched.len(), objects = gc.graph().len(), "garbage collector: graph built");
    let workers = ctx.config.concurrent_gc_syncs;
    for attempt in [Attempt::Delete, Attempt::Orphan] {
        let queue = gc.queue(attempt).clone();
        let r = AttemptWorkers { gc: gc.clone(), attempt };
        tokio::spawn(run_workers(Arc::new(r), queue, workers, ctx.metrics.clone()));
    }
    let g = gc.clone();
    every(ctx.config.resync_period, move || {
        let work = g.graph().pending();
        g.enqueue(work);
    });
    let mut rediscover = tokio::time::interval(REDISCOVERY_PERIOD);
    rediscover.tick().await;
    loop {
        rediscover.tick().await;
        match discovery::discover(&ctx.client).await {
            Ok(found) => {
                for res in found.garbage_collectable() {
                    if watched.insert(res.clone()) {
                        tracing::info!(resource = %res.qualified_name(), "garbage collector: watching a new resource");
                        start_monitor(&ctx, &gc, res.clone());
                    }
                }
                gc.set_resources(found);
            }
            Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed"),
        }
    }
}

fn start_monitor(ctx: &Context, gc: &Arc<Collector>, res: ServedResource) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(monitor::run(gc.clone(), ctx.client.clone(), res, ctx.config.list_page_size, tx));
    rx
}

async fn discover_until_ok(ctx: &Context) -> discovery::ServedResources {
    let mut delay = Duration::from_millis(200);
    loop {
        match discovery::discover(&ctx.client).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::warn!(error = %GarbageCollectorError::Discovery(e), "garbage collector: retrying discovery");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
