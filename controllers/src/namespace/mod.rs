//! The namespace controller: empties a Namespace that is being deleted, then removes its `kubernetes`
//! finalizer through `/finalize` so the API server can delete it (upstream pkg/controller/namespace). Status
//! conditions ([`conditions`]) say what holds a deletion up; content deletion is in [`deleter`].

pub mod conditions;
pub mod deleter;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::context::Context;
use crate::runtime::{enqueue_changes, resync, run_workers, Action, Reconciler, WorkQueue};

/// The finalizer this controller owns on every Namespace.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// What can go wrong deleting a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Reading or writing the Namespace failed.
    #[error("{what} namespace {name}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Some content could not be discovered or deleted (the status conditions say which).
    #[error("deleting the content of namespace {name}: {message}")]
    Content {
        /// The namespace.
        name: String,
        /// The failures.
        message: String,
    },
    /// The work queue stopped.
    #[error("the namespace controller's work queue stopped")]
    Stopped,
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), NamespaceError> {
    let queue: WorkQueue<String> = WorkQueue::new();
    let namespaces = ctx.informers.namespaces.clone();
    let pods = ctx.informers.pods.clone();
    tokio::spawn(enqueue_changes(namespaces.subscribe(), queue.clone(), |c| {
        c.new.as_deref().and_then(terminating).into_iter().collect()
    }));
    // A pod that finished terminating may have been the last thing a namespace waited for.
    let ns_store = namespaces.store();
    tokio::spawn(enqueue_changes(pods.subscribe(), queue.clone(), move |c| {
        let Some(ns) = c.new.is_none().then(|| c.old.as_ref().and_then(|p| p.metadata.namespace.clone())).flatten()
        else {
            return Vec::new();
        };
        match ns_store.get_named("", &ns) {
            Some(n) if n.metadata.deletion_timestamp.is_some() => vec![ns],
            _ => Vec::new(),
        }
    }));
    namespaces.wait_synced().await;
    pods.wait_synced().await;
    resync(namespaces.store(), queue.clone(), ctx.config.resync_period, terminating);
    let r = NamespaceReconciler { client: ctx.client.clone() };
    run_workers(Arc::new(r), queue, ctx.config.concurrent_namespace_syncs, ctx.metrics.clone()).await;
    Err(NamespaceError::Stopped)
}

/// The name of `ns` if it is being deleted (the only Namespaces this controller works on).
fn terminating(ns: &Namespace) -> Option<String> {
    ns.metadata.deletion_timestamp.as_ref().and(ns.metadata.name.clone())
}

struct NamespaceReconciler {
    client: Client,
}

impl NamespaceReconciler {
    fn err<'a>(what: &'static str, name: &'a str) -> impl FnOnce(kube::Error) -> NamespaceError + 'a {
        move |source| NamespaceError::Api { what, name: name.to_string(), source }
    }
}

impl Reconciler for NamespaceReconciler {
    type Key = String;
    type Error = NamespaceError;

    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    async fn reconcile(&self, name: &String) -> Result<Action, NamespaceError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(mut ns) = api.get_opt(name).await.map_err(Self::err("reading", name))? else {
            return Ok(Action::Done);
        };
        let Some(deleted_at) = ns.metadata.deletion_timestamp.clone() else { return Ok(Action::Done) };
        if ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating") {
            ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
            ns = api
                .replace_status(name, &PostParams::default(), &ns)
                .await
                .map_err(Self::err("marking as terminating", name))?;
        }
        let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
            return Ok(Action::Done);
        }
        let pass = deleter::delete_content(&self.client, name, Some(&deleted_at)).await;
        let mut status = ns.status.clone().unwrap_or_default();
        let mut conds = status.conditions.take().unwrap_or_default();
        if conditions::update(&mut conds, &pass.outcome, &Time(jiff::Timestamp::now())) {
            status.conditions = Some(conds);
            ns.status = Some(status);
            match api.replace_status(name, &PostParams::default(), &ns).await {
                Ok(updated) => ns = updated,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::Done),
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e, "couldn't update the status conditions of a namespace")
                }
            }
        }
        let mut failures: Vec<String> = pass.outcome.discovery_error.iter().cloned().collect();
        failures.extend(pass.outcome.content_errors.iter().cloned());
        if !failures.is_empty() {
            return Err(NamespaceError::Content { name: name.clone(), message: failures.join("; ") });
        }
        if !pass.done() {
            tracing::debug!(namespace = %name, remaining = ?pass.outcome.remaining, estimate = pass.estimate, "namespace content remains");
            let secs = u64::try_from(pass.estimate / 2 + 1).unwrap_or(1);
            return Ok(Action::RequeueAfter(Duration::from_secs(secs)));
        }
        // Everything is gone: give up our finalizer.
        let spec = ns.spec.get_or_insert_with(Default::default);
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER_KUBERNETES).collect());
        match api.replace_subresource("finalize", name, &PostParams::default(), &ns).await {
            Ok(_) => {
                tracing::info!(namespace = %name, "namespace content deleted; finalized");
                Ok(Action::Done)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::Done),
            Err(e) => Err(Self::err("finalizing", name)(e)),
        }
    }
}
