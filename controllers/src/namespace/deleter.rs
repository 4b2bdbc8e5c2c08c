//! Deleting a terminating Namespace's content (upstream deletion/namespaced_resources_deleter.go): every
//! namespaced resource the API serves is emptied with `deletecollection` (or one delete per object when the
//! resource has no `deletecollection`), pods first and the rest only once no pod is left (ordered namespace
//! deletion), then what is left is counted for the status conditions and the requeue estimate.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, PartialObjectMeta};
use kube::discovery::verbs;
use kube::{Api, Client};

use super::conditions::Outcome;
use crate::garbagecollector::discovery::{self, ServedResource};

/// Seconds to wait for objects held by finalizers (upstream's finalizerEstimateSeconds).
pub const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// The result of one pass.
#[derive(Debug, Default)]
pub struct Pass {
    /// Conditions input.
    pub outcome: Outcome,
    /// Seconds until the rest is expected to be gone (0: nothing expected to wait).
    pub estimate: i64,
}

impl Pass {
    /// Whether the namespace is empty and nothing failed.
    pub fn done(&self) -> bool {
        self.outcome.discovery_error.is_none()
            && self.outcome.content_errors.is_empty()
            && self.outcome.remaining.values().all(|n| *n == 0)
    }
}

fn is_pods(r: &ServedResource) -> bool {
    r.ar.group.is_empty() && r.ar.plural == "pods"
}

/// upstream's key for a resource in messages: `resource.group` (`pods.` for the core group).
fn gvr_name(r: &ServedResource) -> String {
    format!("{}.{}", r.ar.plural, r.ar.group)
}

/// Deletes what is in `namespace` (deleted at `deleted_at`), returning what is left.
pub async fn delete_content(client: &Client, namespace: &str, deleted_at: Option<&Time>) -> Pass {
    let mut pass = Pass::default();
    let served = match discovery::discover(client).await {
        Ok(s) => s,
        Err(e) => {
            pass.outcome.discovery_error = Some(e.to_string());
            return pass;
        }
    };
    let resources: Vec<ServedResource> = served.namespaced_deletable().cloned().collect();
    let (pods, rest): (Vec<_>, Vec<_>) = resources.into_iter().partition(is_pods);
    for r in &pods {
        delete_resource(client, namespace, r, deleted_at, &mut pass).await;
    }
    if pass.outcome.remaining.values().any(|n| *n > 0) {
        // Ordered deletion: nothing else goes while pods are still terminating.
        return pass;
    }
    for r in &rest {
        delete_resource(client, namespace, r, deleted_at, &mut pass).await;
    }
    pass
}

async fn delete_resource(
    client: &Client,
    namespace: &str,
    r: &ServedResource,
    deleted_at: Option<&Time>,
    pass: &mut Pass,
) {
    let mut estimate = 0;
    if is_pods(r) {
        match pod_grace_estimate(client, namespace, deleted_at).await {
            Ok(e) => estimate = e,
            Err(e) => pass.outcome.content_errors.push(format!("estimating pod termination: {e}")),
        }
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.ar);
    let meta_api: Api<PartialObjectMeta<DynamicObject>> = Api::namespaced_with(client.clone(), namespace, &r.ar);
    let deleted = if r.supports(verbs::DELETE_COLLECTION) {
        api.delete_collection(&DeleteParams::background(), &ListParams::default()).await.map(|_| ())
    } else if r.supports(verbs::LIST) {
        delete_each(&api, &meta_api).await
    } else {
        Ok(())
    };
    if let Err(e) = deleted {
        if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 405) {
            pass.outcome.content_errors.push(format!("deleting {}: {e}", gvr_name(r)));
        }
    }
    if !r.supports(verbs::LIST) {
        pass.estimate = pass.estimate.max(estimate);
        return;
    }
    let left = match meta_api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            pass.outcome.content_errors.push(format!("listing {}: {e}", gvr_name(r)));
            return;
        }
    };
    if left.is_empty() {
        pass.estimate = pass.estimate.max(estimate);
        return;
    }
    pass.outcome.remaining.insert(gvr_name(r), left.len());
    let mut with_finalizers = false;
    for item in &left {
        for f in item.metadata.finalizers.iter().flatten() {
            *pass.outcome.finalizers.entry(f.clone()).or_default() += 1;
            with_finalizers = true;
        }
    }
    if estimate == 0 && with_finalizers {
        estimate = FINALIZER_ESTIMATE_SECONDS;
    }
    if estimate == 0 && !with_finalizers {
        pass.outcome.content_errors.push(format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {}/{}, Resource={}",
            r.ar.group, r.ar.version, r.ar.plural
        ));
    }
    pass.estimate = pass.estimate.max(estimate);
}

async fn delete_each(
    api: &Api<DynamicObject>,
    meta_api: &Api<PartialObjectMeta<DynamicObject>>,
) -> Result<(), kube::Error> {
    for item in meta_api.list(&ListParams::default()).await?.items {
        let Some(name) = item.metadata.name.as_deref() else { continue };
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The longest termination grace period of the namespace's running pods, or 0 once that much time has
/// passed since the namespace's deletion (upstream estimateGracefulTerminationForPods).
async fn pod_grace_estimate(client: &Client, namespace: &str, deleted_at: Option<&Time>) -> Result<i64, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default()).await?;
    let estimate = grace_estimate(&list.items);
    let elapsed = deleted_at.map(|t| jiff::Timestamp::now().as_second() - t.0.as_second()).unwrap_or(0);
    Ok(if elapsed >= estimate { 0 } else { estimate })
}

/// The longest `terminationGracePeriodSeconds` of the pods that are not terminated.
pub fn grace_estimate(pods: &[Pod]) -> i64 {
    pods.iter()
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .max()
        .unwrap_or(0)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(grace: Option<i64>, phase: &str) -> Pod {
        Pod {
            spec: Some(PodSpec { termination_grace_period_seconds: grace, ..Default::default() }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn grace_estimate_ignores_terminated_pods() {
        assert_eq!(grace_estimate(&[]), 0);
        assert_eq!(grace_estimate(&[pod(Some(30), "Running"), pod(Some(60), "Succeeded"), pod(None, "Running")]), 30);
        assert_eq!(grace_estimate(&[pod(Some(60), "Failed")]), 0);
    }
}
