//! The Recreate strategy (upstream recreate.go): scale every old ReplicaSet to zero, wait until none of their
//! pods is left running, then create (or scale up) the new ReplicaSet to `spec.replicas`.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

use super::sync::Syncer;
use super::{util, DeploymentError};
use crate::replicaset::pods;
use crate::runtime::Action;

/// Pods of the Deployment by the UID of the ReplicaSet that controls them.
pub type PodMap = HashMap<String, Vec<Arc<Pod>>>;

/// `oldPodsRunning`: an old ReplicaSet reports pods, or a pod of one is not yet in a terminal phase.
fn old_pods_running(new: Option<&ReplicaSet>, old: &[ReplicaSet], pods: &PodMap) -> bool {
    let old_refs: Vec<&ReplicaSet> = old.iter().collect();
    if util::sum_status_replicas(&old_refs) > 0 {
        return true;
    }
    let new_uid = new.and_then(|r| r.metadata.uid.as_deref());
    pods.iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, list)| list)
        .any(|p| !matches!(pods::phase(p), "Succeeded" | "Failed"))
}

/// `rolloutRecreate`.
pub async fn rollout(s: &mut Syncer<'_>, rss: &mut Vec<ReplicaSet>, pods: &PodMap) -> Result<Action, DeploymentError> {
    // No new ReplicaSet before the old ones are down.
    let (mut new, mut old) = s.new_and_old(rss, false).await?;

    let mut scaled_down = false;
    for rs in old.iter_mut().filter(|r| util::is_active(r)) {
        let (scaled, updated) = s.scale_and_record(rs, 0).await?;
        *rs = updated;
        scaled_down |= scaled;
    }
    if scaled_down || old_pods_running(new.as_ref(), &old, pods) {
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        return s.sync_rollout_status(&all, new.as_ref()).await;
    }

    if new.is_none() {
        (new, old) = s.new_and_old(rss, true).await?;
    }
    if let Some(rs) = new.as_mut() {
        let desired = util::desired_replicas(&s.d);
        let (_, updated) = s.scale_and_record(rs, desired).await?;
        *rs = updated;
    }
    if util::deployment_complete(&s.d, &s.d.status.clone().unwrap_or_default()) {
        s.cleanup(&old).await?;
    }
    let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
    s.sync_rollout_status(&all, new.as_ref()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::rs;
    use k8s_openapi::api::core::v1::PodStatus;

    fn pod(phase: &str) -> Arc<Pod> {
        Arc::new(Pod {
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        })
    }

    #[test]
    fn old_pods_block_the_new_replica_set() {
        let new = rs("new", 0, 0, 0, 2);
        let old = rs("old", 0, 0, 0, 1);
        let mut pods = PodMap::new();
        assert!(!old_pods_running(Some(&new), std::slice::from_ref(&old), &pods));
        pods.insert("uid-new".into(), vec![pod("Running")]);
        assert!(
            !old_pods_running(Some(&new), std::slice::from_ref(&old), &pods),
            "the new ReplicaSet's pods do not count"
        );
        pods.insert("uid-old".into(), vec![pod("Succeeded")]);
        assert!(!old_pods_running(Some(&new), std::slice::from_ref(&old), &pods));
        pods.insert("uid-old".into(), vec![pod("Running")]);
        assert!(old_pods_running(Some(&new), std::slice::from_ref(&old), &pods));
        let reporting = rs("old", 0, 1, 0, 1);
        assert!(old_pods_running(None, &[reporting], &PodMap::new()));
    }
}
