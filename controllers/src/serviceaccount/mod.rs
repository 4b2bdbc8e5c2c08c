//! The serviceaccount controller (upstream pkg/controller/serviceaccount, `ServiceAccountsController`): every
//! active namespace has a `default` ServiceAccount; one that is deleted is made again. Namespaces being deleted
//! are left alone.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::context::Context;
use crate::runtime::{enqueue_changes, resync, run_workers, Action, Reconciler, Store, WorkQueue};

/// The accounts every namespace gets.
pub const ACCOUNTS: &[&str] = &["default"];
const WORKERS: usize = 2;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("creating service account {namespace}/{name}: {source}")]
    Create { namespace: String, name: String, source: kube::Error },
    #[error("the serviceaccount controller's work queue stopped")]
    Stopped,
}

/// Whether a namespace is active (not being deleted).
pub fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// The accounts `namespace` lacks (pure: `exists` answers from the cache).
pub fn missing(ns: &Namespace, exists: impl Fn(&str) -> bool) -> Vec<&'static str> {
    if !active(ns) {
        return Vec::new();
    }
    ACCOUNTS.iter().copied().filter(|a| !exists(a)).collect()
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), ServiceAccountError> {
    let queue: WorkQueue<String> = WorkQueue::new();
    let namespaces = ctx.informers.namespaces.clone();
    let accounts = ctx.informers.service_accounts.clone();
    tokio::spawn(enqueue_changes(namespaces.subscribe(), queue.clone(), |c| {
        c.new.as_deref().and_then(|n| n.metadata.name.clone()).into_iter().collect()
    }));
    tokio::spawn(enqueue_changes(accounts.subscribe(), queue.clone(), |c| {
        // Only a deletion can take away what this controller makes.
        match (&c.old, &c.new) {
            (Some(old), None) if ACCOUNTS.contains(&old.metadata.name.as_deref().unwrap_or("")) => {
                old.metadata.namespace.clone().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }));
    namespaces.wait_synced().await;
    accounts.wait_synced().await;
    resync(namespaces.store(), queue.clone(), ctx.config.resync_period, |n: &Namespace| n.metadata.name.clone());
    let r = ServiceAccountsReconciler {
        client: ctx.client.clone(),
        namespaces: namespaces.store(),
        accounts: accounts.store(),
    };
    run_workers(Arc::new(r), queue, WORKERS, ctx.metrics.clone()).await;
    Err(ServiceAccountError::Stopped)
}

struct ServiceAccountsReconciler {
    client: Client,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
}

impl Reconciler for ServiceAccountsReconciler {
    type Key = String;
    type Error = ServiceAccountError;

    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    async fn reconcile(&self, namespace: &String) -> Result<Action, ServiceAccountError> {
        let Some(ns) = self.namespaces.get_named("", namespace) else { return Ok(Action::Done) };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        for name in missing(&ns, |a| self.accounts.get_named(namespace, a).is_some()) {
            let sa = ServiceAccount {
                metadata: kube::api::ObjectMeta { name: Some(name.to_string()), ..Default::default() },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => tracing::info!(namespace = %namespace, name, "created service account"),
                // Made meanwhile, or the namespace is going away: nothing to do.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => {}
                Err(source) => {
                    return Err(ServiceAccountError::Create {
                        namespace: namespace.clone(),
                        name: name.to_string(),
                        source,
                    })
                }
            }
        }
        Ok(Action::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn ns(phase: &str) -> Namespace {
        Namespace {
            metadata: kube::api::ObjectMeta { name: Some("n".into()), ..Default::default() },
            status: Some(NamespaceStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn default_account_in_active_namespaces_only() {
        assert_eq!(missing(&ns("Active"), |_| false), vec!["default"]);
        assert!(missing(&ns("Active"), |a| a == "default").is_empty());
        assert!(missing(&ns("Terminating"), |_| false).is_empty());
    }
}
