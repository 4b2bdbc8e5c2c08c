//! Leader election over a `coordination.k8s.io/v1` Lease, with client-go's rules: a candidate takes the
//! lease only when its holder has not renewed it for `lease_duration` as measured by the candidate's own
//! clock (the time it last saw the record change), every write is an optimistic-concurrency update, and a
//! leader that cannot renew within `renew_deadline` stops leading. knet-controllers exits when it stops
//! leading, so two instances never act at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// How leader election is configured (kube-controller-manager's `--leader-elect-*` flags).
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (hostname + unique suffix).
    pub identity: String,
    /// How long a non-leader waits after the last observed renewal before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before giving up leadership.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The leader could not renew its lease within the renew deadline.
    #[error("failed to renew lease {namespace}/{name} within {deadline:?}: leadership lost")]
    Lost {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The renew deadline.
        deadline: Duration,
    },
}

/// What the candidate last saw of the lease record, and when (by its own clock).
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
    at: Instant,
}

/// A candidate for leadership.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Option<Observed>,
}

impl LeaderElector {
    /// A candidate using `client`.
    pub fn new(client: Client, config: LeaderElectionConfig) -> Self {
        LeaderElector { api: Api::namespaced(client, &config.namespace), config, observed: None }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            let attempt = tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await;
            match attempt.unwrap_or(Ok(false)) {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews the lease every retry period; returns an error when a renewal could not succeed within the
    /// renew deadline (the caller must stop acting).
    pub async fn keep_leading(&mut self) -> LeaderElectionError {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            // A request that hangs must not keep this instance acting after its lease ran out: every attempt
            // is bounded by what is left of the renew deadline, as in client-go.
            let left = self.config.renew_deadline.saturating_sub(last_renew.elapsed());
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renew = Instant::now(),
                Ok(Ok(false)) => {
                    return self.lost();
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "failed to renew the leader lease");
                }
                Err(_) => tracing::warn!("renewing the leader lease timed out"),
            }
            if last_renew.elapsed() >= self.config.renew_deadline {
                return self.lost();
            }
        }
    }

    /// Gives the lease up (on a clean shutdown) so a standby can take over at once instead of waiting for
    /// the lease to expire.
    pub async fn release(&mut self) {
        let bound = self.config.retry_period.max(Duration::from_secs(1));
        if tokio::time::timeout(bound, self.release_now()).await.is_err() {
            tracing::warn!("releasing the leader lease timed out");
        }
    }

    async fn release_now(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else { return };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        lease.spec = Some(spec);
        match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.config.name, "released leadership"),
            Err(e) => tracing::warn!(error = %e, "failed to release the leader lease"),
        }
    }

    fn lost(&self) -> LeaderElectionError {
        LeaderElectionError::Lost {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            deadline: self.config.renew_deadline,
        }
    }

    /// One attempt: `Ok(true)` when this candidate holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = self.api.get_opt(&self.config.name).await?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        self.observe(&lease);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let i_hold = holder.as_deref() == Some(self.config.identity.as_str());
        if !i_hold && holder.is_some() {
            let held_for =
                Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0).max(0)).unwrap_or(0))
                    .max(self.config.lease_duration);
            let seen_at = self.observed.as_ref().map(|o| o.at).unwrap_or_else(Instant::now);
            if seen_at.elapsed() < held_for {
                return Ok(false);
            }
        }
        let mut new_spec = spec.clone();
        new_spec.renew_time = Some(now.clone());
        new_spec.lease_duration_seconds = Some(duration_secs);
        if !i_hold {
            new_spec.holder_identity = Some(self.config.identity.clone());
            new_spec.acquire_time = Some(now);
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        lease.spec = Some(new_spec);
        match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            Ok(updated) => {
                self.observe(&updated);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remembers the record and, if it changed, when this candidate first saw it.
    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        let changed = match &self.observed {
            None => true,
            Some(o) => o.holder != spec.holder_identity || o.renew_time != spec.renew_time,
        };
        if changed {
            self.observed = Some(Observed {
                holder: spec.holder_identity,
                renew_time: spec.renew_time,
                resource_version: lease.metadata.resource_version.clone(),
                at: Instant::now(),
            });
        } else if let Some(o) = self.observed.as_mut() {
            o.resource_version = lease.metadata.resource_version.clone();
        }
    }
}

fn jittered(d: Duration) -> Duration {
    let extra = rand::random::<f64>() * 0.2;
    d.mul_f64(1.0 + extra)
}
