//! LoadBalancer IPAM (like MetalLB, or upstream's service controller with a cloud): Services of type
//! LoadBalancer without a `loadBalancerClass` get `status.loadBalancer.ingress: [{ip, ipMode: VIP}]` from
//! `--load-balancer-ip-pool`. `spec.loadBalancerIP` is honored when it is in the pool and free; an empty or
//! exhausted pool gives a Warning event and no address; the address is released when the Service is deleted
//! or stops being a LoadBalancer. The allocations are rebuilt from the Services' statuses on start and at
//! every repair (`--repair-interval`), which also resolves double claims and addresses outside the pool.

pub mod plan;
pub mod pool;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::context::Context;
use crate::runtime::{enqueue_changes, run_workers, Action, EventRecorder, ObjectKey, Reconciler, Store, WorkQueue};
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

/// A work item: one Service, or a repair pass over all of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Reconcile this Service.
    Service(ObjectKey),
    /// Rebuild the allocations from the Services' statuses and recheck every LoadBalancer Service.
    Repair,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Service(k) => write!(f, "service/{k}"),
            Key::Repair => f.write_str("repair"),
        }
    }
}

struct State {
    allocs: Allocations,
    /// Service → the resourceVersion of the cached Service our last status write was based on: until the
    /// cache shows a newer version, the Service is not written again.
    written: HashMap<ObjectKey, String>,
    /// Service → the last problem message reported about it (each is reported once).
    reported: HashMap<ObjectKey, String>,
    /// Services waiting for an address to be released.
    waiting: BTreeSet<ObjectKey>,
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
        c.key().map(Key::Service).into_iter().collect()
    }));
    informer.wait_synced().await;
    let r = Arc::new(LoadBalancerController {
        services: informer.store(),
        client: ctx.client.clone(),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
        pool,
        state: Mutex::new(State {
            allocs: Allocations::default(),
            written: HashMap::new(),
            reported: HashMap::new(),
            waiting: BTreeSet::new(),
        }),
    });
    // Every address in a status is taken before any Service gets a new one.
    r.repair();
    tracing::info!(pool = %r.pool, held = r.lock().allocs.len(), "LoadBalancer IPAM synced");
    let repair = ctx.config.repair_interval;
    let q = queue.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + repair, repair);
        loop {
            tick.tick().await;
            q.add(Key::Repair);
        }
    });
    // The repair rechecks every LoadBalancer Service, so it is also the resync; keep the resync period too.
    let resync = ctx.config.resync_period;
    let q = queue.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
        loop {
            tick.tick().await;
            q.add(Key::Repair);
        }
    });
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
            Key::Service(k) => self.reconcile_service(k).await,
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
        if st.reported.get(key) == Some(&message) {
            return;
        }
        tracing::info!(service = %key, reason = problem.reason(), "{message}");
        self.recorder.warning(svc, problem.reason(), "Allocating", message.clone());
        st.reported.insert(key.clone(), message);
    }

    /// After an address was released: the Services waiting for one try again.
    fn wake(&self, st: &State) {
        for k in &st.waiting {
            self.queue.add(Key::Service(k.clone()));
        }
    }

    fn forget(st: &mut State, key: &ObjectKey) {
        st.reported.remove(key);
        st.waiting.remove(key);
    }

    async fn reconcile_service(&self, key: &ObjectKey) -> Result<Action, LoadBalancerError> {
        let Some(svc) = self.services.get(key) else {
            let mut st = self.lock();
            Self::forget(&mut st, key);
            st.written.remove(key);
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
            if st.written.get(key) == Some(&rv) {
                return Ok(Action::Done); // written; the cache has not caught up yet
            }
            let d = plan::decide(&self.pool, &mut st.allocs, &view);
            match &d {
                Decision::Ignore | Decision::Keep(_) => Self::forget(&mut st, key),
                Decision::Released(ip) => {
                    Self::forget(&mut st, key);
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
                    st.waiting.remove(key);
                }
                Decision::Fail { problem, .. } => {
                    self.report(&mut st, &svc, key, problem);
                    if problem.waits_for_release() {
                        st.waiting.insert(key.clone());
                    } else {
                        st.waiting.remove(key);
                    }
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
                st.written.insert(key.clone(), rv);
                if let Some(ip) = ip {
                    tracing::info!(service = %key, %ip, "assigned LoadBalancer IP");
                    st.reported.remove(key);
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
            let in_flight =
                st.written.get(&view.key).is_some_and(|w| Some(w) == svc.metadata.resource_version.as_ref());
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
        st.written.retain(|k, _| live.contains(k));
        st.reported.retain(|k, _| live.contains(k));
        st.waiting.retain(|k| live.contains(k));
        if released {
            self.wake(&st);
        }
        for v in &views {
            if v.scope == Scope::Ours || st.allocs.ip_of(&v.key).is_some() {
                self.queue.add(Key::Service(v.key.clone()));
            }
        }
    }
}
