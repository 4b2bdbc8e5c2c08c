//! LoadBalancer IPAM (like MetalLB, or upstream's service controller with a cloud): Services of type
//! LoadBalancer without a `loadBalancerClass` get `status.loadBalancer.ingress: [{ip, ipMode: VIP}]` from
//! `--load-balancer-ip-pool`. `spec.loadBalancerIP` is honored when it is in the pool and free; an empty or
//! exhausted pool gives a Warning event and no address; the address is released when the Service is deleted
//! or stops being a LoadBalancer. The allocations are rebuilt from the Services' statuses on start and at
//! every repair (`--repair-interval`), which also resolves double claims and addresses outside the pool.

pub mod plan;
pub mod pool;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::context::Context;
use crate::runtime::allocator::{AllocatorKey, Ledger};
use crate::runtime::{
    enqueue_changes, every, run_workers, Action, EventRecorder, ObjectKey, Reconciler, Store, WorkQueue,
};
use plan::{Allocations, Decision, Problem, Scope, ServiceView};
use pool::{Pool, PoolError};

/// The component name of the events (upstream's service controller).
pub const COMPONENT: &str = "service-controller";

/// What stops the controller or fails one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum LoadBalancerError {
    /// `--load-balancer-ip-pool` does not parse.
    #[error("LoadBalancer IPAM configuration: {0}")]
    Config(#[from] PoolError),
    /// Writing a Service's status failed.
    #[error("updating status.loadBalancer of Service {service}: {source}")]
    Status {
        service: ObjectKey,
        #[source]
        source: kube::Error,
    },
}

/// A work item: one Service, or a repair pass (rebuild the allocations from the Services' statuses and
/// recheck every LoadBalancer Service).
pub type Key = AllocatorKey<ObjectKey>;

struct State {
    allocs: Allocations,
    /// Status writes in flight, problems reported, Services waiting for an address to be released.
    ledger: Ledger<ObjectKey>,
}

/// The LoadBalancer IPAM reconciler.
pub struct LoadBalancerController {
    services: Store<Service>,
    client: Client,
    recorder: EventRecorder,
    queue: WorkQueue<Key>,
    pool: Pool,
    state: Mutex<State>,
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), LoadBalancerError> {
    let pool = Pool::parse(&ctx.config.load_balancer_ip_pool)?;
    let informer = ctx.informers.services.clone();
    let queue: WorkQueue<Key> = WorkQueue::new();
    tokio::spawn(enqueue_changes(informer.subscribe(), queue.clone(), |c| {
        c.key().map(Key::Object).into_iter().collect()
    }));
    informer.wait_synced().await;
    let r = Arc::new(LoadBalancerController {
        services: informer.store(),
        client: ctx.client.clone(),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
        pool,
        state: Mutex::new(State { allocs: Allocations::default(), ledger: Ledger::default() }),
    });
    // Every address in a status is taken before any Service gets a new one.
    r.repair();
    tracing::info!(pool = %r.pool, held = r.lock().allocs.len(), "LoadBalancer IPAM synced");
    // The repair rechecks every LoadBalancer Service, so it is also the resync: it runs at the shorter period.
    let q = queue.clone();
    every(ctx.config.repair_interval.min(ctx.config.resync_period), move || q.add(Key::Repair));
    run_workers(r, queue, 1, ctx.metrics.clone()).await;
    Ok(())
}

impl Reconciler for LoadBalancerController {
    type Key = Key;
    type Error = LoadBalancerError;

    fn name(&self) -> &'static str {
        "service-lb-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, LoadBalancerError> {
        match key {
            Key::Repair => {
                self.repair();
                Ok(Action::Done)
            }
            Key::Object(k) => self.reconcile_service(k).await,
        }
    }
}

/// The status for `ip` (`None`: no address).
fn status_patch(rv: &str, ip: Option<std::net::IpAddr>) -> Value {
    let ingress = match ip {
        Some(ip) => json!([{ "ip": ip.to_string(), "ipMode": "VIP" }]),
        None => Value::Null,
    };
    json!({ "metadata": { "resourceVersion": rv }, "status": { "loadBalancer": { "ingress": ingress } } })
}

impl LoadBalancerController {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports `problem` as a Warning event unless it is what was last reported about this Service.
    fn report(&self, st: &mut State, svc: &Service, key: &ObjectKey, problem: &Problem) {
        let message = problem.message(key);
        if st.ledger.first_report(key, &message) {
            tracing::info!(service = %key, reason = problem.reason(), "{message}");
            self.recorder.warning(svc, problem.reason(), "Allocating", message);
        }
    }

    /// After an address was released: the Services waiting for one try again.
    fn wake(&self, st: &State) {
        for k in st.ledger.waiting() {
            self.queue.add(Key::Object(k.clone()));
        }
    }

    /// The Service needs no address (or has one): nothing to report, nothing to wait for.
    fn settled(st: &mut State, key: &ObjectKey) {
        st.ledger.clear_report(key);
        st.ledger.set_waiting(key, false);
    }

    async fn reconcile_service(&self, key: &ObjectKey) -> Result<Action, LoadBalancerError> {
        let Some(svc) = self.services.get(key) else {
            let mut st = self.lock();
            st.ledger.forget(key);
            if let Some(ip) = st.allocs.release(key) {
                tracing::info!(service = %key, %ip, "Service deleted; its LoadBalancer IP is free again");
                self.wake(&st);
            }
            return Ok(Action::Done);
        };
        let view = ServiceView::of(&svc);
        let rv = svc.metadata.resource_version.clone().unwrap_or_default();
        let decision = {
            let mut st = self.lock();
            if st.ledger.in_flight(key, Some(&rv)) {
                return Ok(Action::Done); // written; the cache has not caught up yet
            }
            let d = plan::decide(&self.pool, &mut st.allocs, &view);
            match &d {
                Decision::Ignore | Decision::Keep(_) => Self::settled(&mut st, key),
                Decision::Released(ip) => {
                    Self::settled(&mut st, key);
                    if let Some(ip) = ip {
                        tracing::info!(service = %key, %ip, "Service is no longer a LoadBalancer; its IP is free again");
                        self.recorder.normal(
                            &*svc,
                            "DeletingLoadBalancer",
                            "Deleting",
                            "Deleting load balancer".into(),
                        );
                        self.recorder.normal(&*svc, "DeletedLoadBalancer", "Deleted", "Deleted load balancer".into());
                        self.wake(&st);
                    }
                }
                Decision::Assign { problem, .. } => {
                    if let Some(p) = problem {
                        self.report(&mut st, &svc, key, p);
                    }
                    st.ledger.set_waiting(key, false);
                }
                Decision::Fail { problem, .. } => {
                    self.report(&mut st, &svc, key, problem);
                    st.ledger.set_waiting(key, problem.waits_for_release());
                }
            }
            d
        };
        let ip = match decision {
            Decision::Assign { ip, .. } => {
                self.recorder.normal(&*svc, "EnsuringLoadBalancer", "Ensuring", "Ensuring load balancer".into());
                Some(ip)
            }
            Decision::Fail { clear: true, .. } => None,
            _ => return Ok(Action::Done),
        };
        let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&status_patch(&rv, ip))).await {
            Ok(_) => {
                let mut st = self.lock();
                st.ledger.wrote(key.clone(), rv);
                if let Some(ip) = ip {
                    tracing::info!(service = %key, %ip, "assigned LoadBalancer IP");
                    st.ledger.clear_report(key);
                    self.recorder.normal(&*svc, "EnsuredLoadBalancer", "Ensured", "Ensured load balancer".into());
                }
                Ok(Action::Done)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let mut st = self.lock();
                if st.allocs.release(key).is_some() {
                    self.wake(&st);
                }
                Ok(Action::Done)
            }
            // On a conflict the Service changed meanwhile: retry with the newer one, keeping the address.
            Err(source) => Err(LoadBalancerError::Status { service: key.clone(), source }),
        }
    }

    /// Rebuilds the allocations from the cached Services' statuses (keeping addresses just written to
    /// Services the cache does not show with them yet), releases stale ones, and queues every LoadBalancer
    /// Service to bring its status in line.
    fn repair(&self) {
        let services = self.services.list();
        let views: Vec<ServiceView> = services.iter().map(|s| ServiceView::of(s)).collect();
        let mut st = self.lock();
        let mut fresh = plan::rebuild(&self.pool, &views, &st.allocs);
        for (svc, view) in services.iter().zip(&views) {
            let in_flight = st.ledger.in_flight(&view.key, svc.metadata.resource_version.as_deref());
            if !in_flight || view.scope != Scope::Ours || fresh.ip_of(&view.key).is_some() {
                continue;
            }
            if let Some(ip) = st.allocs.ip_of(&view.key).filter(|ip| fresh.holder(ip).is_none()) {
                if let Some(h) = st.allocs.holder(&ip).cloned() {
                    fresh.assign(ip, h);
                }
            }
        }
        let mut released = false;
        for (ip, h) in st.allocs.holders() {
            if fresh.holder(ip) != Some(h) {
                released = true;
                tracing::warn!(service = %h.key, %ip, "repair: released a LoadBalancer IP the Service does not hold");
            }
        }
        st.allocs = fresh;
        let live: BTreeSet<&ObjectKey> = views.iter().map(|v| &v.key).collect();
        st.ledger.retain(|k| live.contains(k));
        if released {
            self.wake(&st);
        }
        for v in &views {
            if v.scope == Scope::Ours || st.allocs.ip_of(&v.key).is_some() {
                self.queue.add(Key::Object(v.key.clone()));
            }
        }
    }
}
