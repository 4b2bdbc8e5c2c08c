//! The RollingUpdate strategy (upstream rolling.go): each sync either grows the new ReplicaSet within
//! `maxSurge`, or shrinks old ones within `maxUnavailable` (unhealthy pods first), then reports progress. The
//! next step happens on the next sync, when the ReplicaSets' statuses have moved.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::sync::Syncer;
use super::{plan, util, DeploymentError};
use crate::runtime::Action;

/// `rolloutRolling`.
pub async fn rollout(s: &mut Syncer<'_>, rss: &mut Vec<ReplicaSet>) -> Result<Action, DeploymentError> {
    let (new, mut old) = s.new_and_old(rss, true).await?;
    let Some(mut new) = new else {
        // Not created (cannot happen with create = true); report what there is.
        let all: Vec<&ReplicaSet> = old.iter().collect();
        return s.sync_rollout_status(&all, None).await;
    };

    // Scale up, if we can.
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
    let target = plan::new_replica_set_size(&s.d, &all, &new)
        .map_err(|source| DeploymentError::Strategy { key: s.key.clone(), source })?;
    if let Some(size) = target {
        let (scaled, updated) = s.scale_and_record(&new, size).await?;
        new = updated;
        if scaled {
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
            return s.sync_rollout_status(&all, Some(&new)).await;
        }
    }

    // Scale down, if we can.
    if reconcile_old(s, &mut old, &new).await? {
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
        return s.sync_rollout_status(&all, Some(&new)).await;
    }

    if util::deployment_complete(&s.d, &s.d.status.clone().unwrap_or_default()) {
        s.cleanup(&old).await?;
    }
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
    s.sync_rollout_status(&all, Some(&new)).await
}

/// `reconcileOldReplicaSets`: shrinks old ReplicaSets as far as availability allows; whether any shrank.
async fn reconcile_old(s: &Syncer<'_>, old: &mut [ReplicaSet], new: &ReplicaSet) -> Result<bool, DeploymentError> {
    let old_refs: Vec<&ReplicaSet> = old.iter().filter(|r| util::is_active(r)).collect();
    if util::sum_sizes(&old_refs) == 0 {
        return Ok(false);
    }
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(new)).collect();
    let budget = plan::scale_down_budget(&s.d, &all, new);
    if budget <= 0 {
        return Ok(false);
    }
    let mut total = 0;
    // Unhealthy replicas first: they would otherwise block the rollout.
    let active: Vec<usize> = (0..old.len()).filter(|i| util::is_active(&old[*i])).collect();
    let active_refs: Vec<&ReplicaSet> = active.iter().map(|i| &old[*i]).collect();
    let (cleanup, cleaned) = plan::cleanup_unhealthy(&active_refs, budget);
    for (j, size) in cleanup {
        let i = active[j];
        let (_, updated) = s.scale_and_record(&old[i], size).await?;
        old[i] = updated;
    }
    total += cleaned;
    // Then available ones, as far as maxUnavailable allows.
    let active: Vec<usize> = (0..old.len()).filter(|i| util::is_active(&old[*i])).collect();
    let active_refs: Vec<&ReplicaSet> = active.iter().map(|i| &old[*i]).collect();
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(new)).collect();
    let down = plan::scale_down_old(&s.d, &all, &active_refs);
    for (j, size) in down {
        let i = active[j];
        total += util::size(&old[i]) - size;
        let (_, updated) = s.scale_and_record(&old[i], size).await?;
        old[i] = updated;
    }
    Ok(total > 0)
}
