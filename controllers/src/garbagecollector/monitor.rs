//! One metadata-only list+watch per garbage-collectable resource (upstream's resource monitors), feeding the
//! dependency graph. After every (re)list, objects the graph got from this resource that the list no longer
//! has are reported deleted, so nothing deleted while a watch was down is missed.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::watch;

use super::collector::Collector;
use super::discovery::ServedResource;
use super::graph::ObjectState;

/// Watches `res` for ever, reporting to `gc`'s graph; sets `synced` after the first complete list.
pub async fn run(
    gc: Arc<Collector>,
    client: kube::Client,
    res: ServedResource,
    page_size: u32,
    synced: watch::Sender<bool>,
) {
    // Metadata-only: the API serves PartialObjectMetadata lists and watches.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &res.ar);
    let cfg = watcher::Config::default().page_size(page_size);
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let (api_version, kind) = (res.ar.api_version.as_str(), res.ar.kind.as_str());
    let mut known: HashSet<String> = HashSet::new();
    let mut relist: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Err(e) => {
                tracing::warn!(resource = %res.qualified_name(), error = %e, "garbage collector: watch failed; retrying")
            }
            Ok(Event::Init) => relist = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(state) = ObjectState::from_meta(api_version, kind, &obj.metadata) {
                    if let Some(seen) = relist.as_mut() {
                        seen.insert(state.identity.uid.clone());
                    }
                    let work = gc.graph().upsert(state);
                    gc.enqueue(work);
                }
            }
            Ok(Event::InitDone) => {
                let seen = relist.take().unwrap_or_default();
                for gone in known.difference(&seen) {
                    let work = gc.graph().remove(gone);
                    gc.enqueue(work);
                }
                known = seen;
                synced.send_replace(true);
            }
            Ok(Event::Apply(obj)) => {
                if let Some(state) = ObjectState::from_meta(api_version, kind, &obj.metadata) {
                    known.insert(state.identity.uid.clone());
                    let work = gc.graph().upsert(state);
                    gc.enqueue(work);
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(uid) = obj.metadata.uid.as_deref() {
                    known.remove(uid);
                    let work = gc.graph().remove(uid);
                    gc.enqueue(work);
                }
            }
        }
    }
}
