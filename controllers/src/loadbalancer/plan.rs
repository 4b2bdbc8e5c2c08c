//! Deciding LoadBalancer addresses (pure): which Service holds which pool address, rebuilt from the Services'
//! statuses, and what one Service's status must say.
//!
//! Services' `status.loadBalancer.ingress` are the record: on start and at every repair the allocations are
//! rebuilt from them. When two Services claim one address the current holder keeps it (then the older
//! Service, then namespace/name, so a rebuild resolves it the same way every time) and the other gets another.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use super::pool::{Family, Pool};
use crate::runtime::ObjectKey;

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The Service.
    pub key: ObjectKey,
    /// Its uid (a re-created Service with the same name is another holder).
    pub uid: String,
}

/// The addresses held, one per Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocations {
    by_ip: BTreeMap<IpAddr, Holder>,
    by_service: HashMap<ObjectKey, IpAddr>,
}

impl Allocations {
    /// Who holds `ip`.
    pub fn holder(&self, ip: &IpAddr) -> Option<&Holder> {
        self.by_ip.get(ip)
    }

    /// The address `key` holds.
    pub fn ip_of(&self, key: &ObjectKey) -> Option<IpAddr> {
        self.by_service.get(key).copied()
    }

    /// Every held address.
    pub fn taken(&self) -> BTreeSet<IpAddr> {
        self.by_ip.keys().copied().collect()
    }

    /// How many addresses are held.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Gives `ip` to `holder`, releasing what it held before. `ip` must be free or already its own.
    pub fn assign(&mut self, ip: IpAddr, holder: Holder) {
        self.release(&holder.key);
        self.by_service.insert(holder.key.clone(), ip);
        self.by_ip.insert(ip, holder);
    }

    /// Releases what `key` holds, returning it.
    pub fn release(&mut self, key: &ObjectKey) -> Option<IpAddr> {
        let ip = self.by_service.remove(key)?;
        self.by_ip.remove(&ip);
        Some(ip)
    }

    /// Every Service holding an address.
    pub fn holders(&self) -> impl Iterator<Item = (&IpAddr, &Holder)> {
        self.by_ip.iter()
    }
}

/// Whether the controller handles a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Type LoadBalancer without a `loadBalancerClass`: ours.
    Ours,
    /// Not of type LoadBalancer (any more).
    NotLoadBalancer,
    /// Another implementation's (`spec.loadBalancerClass` set): left alone.
    OtherClass,
}

/// What the decisions need of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub key: ObjectKey,
    pub uid: String,
    /// creationTimestamp as RFC 3339 text; older wins a conflict.
    pub created: String,
    pub scope: Scope,
    /// `spec.loadBalancerIP`, if set.
    pub requested: Option<String>,
    /// The family addresses come from (`spec.ipFamilies[0]`, IPv4 by default).
    pub family: Family,
    /// The `ip`s of `status.loadBalancer.ingress`, in order.
    pub status_ips: Vec<String>,
    /// Whether the status is exactly one `{ip, ipMode: VIP}` entry (so a keep needs no write).
    pub status_exact: bool,
}

impl ServiceView {
    /// The view of `svc`.
    pub fn of(svc: &Service) -> ServiceView {
        let spec = svc.spec.clone().unwrap_or_default();
        let scope = match (spec.type_.as_deref(), spec.load_balancer_class.as_deref()) {
            (Some("LoadBalancer"), None) => Scope::Ours,
            (Some("LoadBalancer"), Some(_)) => Scope::OtherClass,
            _ => Scope::NotLoadBalancer,
        };
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default();
        let status_ips: Vec<String> = ingress.iter().filter_map(|i| i.ip.clone()).collect();
        let status_exact = ingress.len() == 1
            && ingress[0].ip.is_some()
            && ingress[0].ip_mode.as_deref() == Some("VIP")
            && ingress[0].hostname.is_none()
            && ingress[0].ports.as_ref().is_none_or(Vec::is_empty);
        let family =
            spec.ip_families.as_ref().and_then(|f| f.first()).and_then(|f| Family::from_name(f)).unwrap_or(Family::V4);
        ServiceView {
            key: ObjectKey::of(svc),
            uid: svc.metadata.uid.clone().unwrap_or_default(),
            created: svc.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
            scope,
            requested: spec.load_balancer_ip.filter(|s| !s.is_empty()),
            family,
            status_ips,
            status_exact,
        }
    }

    fn holder(&self) -> Holder {
        Holder { key: self.key.clone(), uid: self.uid.clone() }
    }

    /// The first status address that parses.
    fn current(&self) -> Option<IpAddr> {
        self.status_ips.iter().find_map(|s| s.parse().ok())
    }
}

/// Why a Service gets no address, or not the one its status showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No pool is configured.
    EmptyPool,
    /// Every address of the family is held.
    Exhausted { pool: String },
    /// `spec.loadBalancerIP` does not parse.
    RequestedInvalid { requested: String },
    /// `spec.loadBalancerIP` is not in the pool.
    RequestedNotInPool { requested: IpAddr, pool: String },
    /// `spec.loadBalancerIP` is held by another Service.
    RequestedInUse { requested: IpAddr, by: ObjectKey },
    /// The status shows an address another Service holds.
    Conflict { ip: IpAddr, by: ObjectKey },
    /// The status shows an address outside the pool.
    NotInPool { ip: String, pool: String },
}

impl Problem {
    /// The event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::Conflict { .. } => "LoadBalancerIPConflict",
            Problem::NotInPool { .. } => "LoadBalancerIPNotInPool",
            _ => "AllocationFailed",
        }
    }

    /// The event message about Service `svc`.
    pub fn message(&self, svc: &ObjectKey) -> String {
        let failed = |why: String| format!("Failed to allocate IP for \"{svc}\": {why}");
        match self {
            Problem::EmptyPool => {
                failed("no load balancer IP pool is configured (knet-controllers --load-balancer-ip-pool)".into())
            }
            Problem::Exhausted { pool } => failed(format!("no available IPs in pool {pool}")),
            Problem::RequestedInvalid { requested } => {
                failed(format!("spec.loadBalancerIP {requested:?} is not an IP address"))
            }
            Problem::RequestedNotInPool { requested, pool } => {
                failed(format!("spec.loadBalancerIP {requested} is not in pool {pool}"))
            }
            Problem::RequestedInUse { requested, by } => {
                failed(format!("spec.loadBalancerIP {requested} is already assigned to {by}"))
            }
            Problem::Conflict { ip, by } => format!(
                "IP {ip} in status.loadBalancer.ingress is assigned to Service {by}; this Service gets another IP"
            ),
            Problem::NotInPool { ip, pool } => {
                format!("IP {ip} in status.loadBalancer.ingress is not in pool {pool}; this Service gets another IP")
            }
        }
    }

    /// Whether the Service should be retried when an address is released.
    pub fn waits_for_release(&self) -> bool {
        matches!(self, Problem::Exhausted { .. } | Problem::RequestedInUse { .. })
    }
}

/// What to do with one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Leave it alone (another class's, or not ours and holding nothing).
    Ignore,
    /// It is no longer ours: the address it held (if any) was released.
    Released(Option<IpAddr>),
    /// Its status is right.
    Keep(IpAddr),
    /// Write `ip` into its status; `problem` says why the status showed something else, if it did.
    Assign { ip: IpAddr, problem: Option<Problem> },
    /// No address: clear the status if it shows one (`clear`).
    Fail { problem: Problem, clear: bool },
}

/// Decides the address of `svc` and updates `allocs` to match.
pub fn decide(pool: &Pool, allocs: &mut Allocations, svc: &ServiceView) -> Decision {
    match svc.scope {
        Scope::OtherClass => return Decision::Ignore,
        Scope::NotLoadBalancer => return Decision::Released(allocs.release(&svc.key)),
        Scope::Ours => {}
    }
    // A re-created Service does not inherit the old one's address.
    if allocs.ip_of(&svc.key).and_then(|ip| allocs.holder(&ip)).is_some_and(|h| h.uid != svc.uid) {
        allocs.release(&svc.key);
    }
    let current = svc.current();
    let free_or_mine = |allocs: &Allocations, ip: &IpAddr| allocs.holder(ip).is_none_or(|h| h.key == svc.key);
    let has_status = !svc.status_ips.is_empty();
    let settle = |allocs: &mut Allocations, ip: IpAddr, problem: Option<Problem>| {
        allocs.assign(ip, svc.holder());
        if problem.is_none() && current == Some(ip) && svc.status_exact {
            Decision::Keep(ip)
        } else {
            Decision::Assign { ip, problem }
        }
    };
    if let Some(req) = &svc.requested {
        let fail = |allocs: &mut Allocations, problem| {
            allocs.release(&svc.key);
            Decision::Fail { problem, clear: has_status }
        };
        let Ok(ip) = req.parse::<IpAddr>() else {
            return fail(allocs, Problem::RequestedInvalid { requested: req.clone() });
        };
        if !pool.contains(&ip) {
            return fail(allocs, Problem::RequestedNotInPool { requested: ip, pool: pool.to_string() });
        }
        if let Some(h) = allocs.holder(&ip).filter(|h| h.key != svc.key) {
            let by = h.key.clone();
            return fail(allocs, Problem::RequestedInUse { requested: ip, by });
        }
        return settle(allocs, ip, None);
    }
    let mut problem = None;
    if let Some(cur) = current {
        if !pool.contains(&cur) {
            problem = Some(Problem::NotInPool { ip: cur.to_string(), pool: pool.to_string() });
        } else if free_or_mine(allocs, &cur) {
            return settle(allocs, cur, None);
        } else if let Some(h) = allocs.holder(&cur) {
            problem = Some(Problem::Conflict { ip: cur, by: h.key.clone() });
        }
    } else if let Some(s) = svc.status_ips.first() {
        problem = Some(Problem::NotInPool { ip: s.clone(), pool: pool.to_string() });
    }
    let held = allocs.ip_of(&svc.key).filter(|ip| pool.contains(ip) && Family::of(ip) == svc.family);
    let pick = held.or_else(|| pool.first_free(svc.family, &allocs.taken()));
    match pick {
        Some(ip) => settle(allocs, ip, problem),
        None => {
            allocs.release(&svc.key);
            let problem = if pool.is_empty() {
                Problem::EmptyPool
            } else {
                // A conflict or a foreign address is reported as exhaustion: that is why nothing replaces it.
                Problem::Exhausted { pool: pool.to_string() }
            };
            Decision::Fail { problem, clear: has_status }
        }
    }
}

/// Rebuilds the allocations from the Services' statuses. A Service keeps the pool address its status shows
/// unless another holds it: the holder in `previous` first, then older Services, then by namespace/name.
pub fn rebuild(pool: &Pool, services: &[ServiceView], previous: &Allocations) -> Allocations {
    let mut order: Vec<(&ServiceView, IpAddr)> = services
        .iter()
        .filter(|s| s.scope == Scope::Ours)
        .filter_map(|s| s.current().filter(|ip| pool.contains(ip)).map(|ip| (s, ip)))
        .collect();
    let was_holder =
        |s: &ServiceView, ip: &IpAddr| previous.holder(ip).is_some_and(|h| h.key == s.key && h.uid == s.uid);
    order.sort_by(|(a, ia), (b, ib)| {
        (!was_holder(a, ia), &a.created, &a.key).cmp(&(!was_holder(b, ib), &b.created, &b.key))
    });
    let mut allocs = Allocations::default();
    for (s, ip) in order {
        if allocs.holder(&ip).is_none() && allocs.ip_of(&s.key).is_none() {
            allocs.assign(ip, s.holder());
        }
    }
    allocs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool2() -> Pool {
        Pool::parse(&["192.168.56.240-192.168.56.241"]).unwrap()
    }

    fn svc(name: &str, created: &str, status: &[&str]) -> ServiceView {
        ServiceView {
            key: ObjectKey::new("default", name),
            uid: format!("uid-{name}"),
            created: created.into(),
            scope: Scope::Ours,
            requested: None,
            family: Family::V4,
            status_ips: status.iter().map(|s| s.to_string()).collect(),
            status_exact: status.len() == 1,
        }
    }

    #[test]
    fn pool_of_two_serves_two_then_reports_exhaustion() {
        let pool = pool2();
        let mut a = Allocations::default();
        let d1 = decide(&pool, &mut a, &svc("a", "1", &[]));
        assert_eq!(d1, Decision::Assign { ip: ip("192.168.56.240"), problem: None });
        let d2 = decide(&pool, &mut a, &svc("b", "2", &[]));
        assert_eq!(d2, Decision::Assign { ip: ip("192.168.56.241"), problem: None });
        let d3 = decide(&pool, &mut a, &svc("c", "3", &[]));
        let Decision::Fail { problem, clear } = d3 else { panic!("{d3:?}") };
        assert!(!clear);
        assert_eq!(problem.reason(), "AllocationFailed");
        assert_eq!(
            problem.message(&ObjectKey::new("default", "c")),
            "Failed to allocate IP for \"default/c\": no available IPs in pool 192.168.56.240-192.168.56.241"
        );
        assert!(problem.waits_for_release());
        // Deleting a (here: type change) frees its address for c.
        let mut gone = svc("a", "1", &["192.168.56.240"]);
        gone.scope = Scope::NotLoadBalancer;
        assert_eq!(decide(&pool, &mut a, &gone), Decision::Released(Some(ip("192.168.56.240"))));
        assert_eq!(
            decide(&pool, &mut a, &svc("c", "3", &[])),
            Decision::Assign { ip: ip("192.168.56.240"), problem: None }
        );
    }

    #[test]
    fn a_right_status_is_kept_and_a_stale_cache_reuses_the_held_address() {
        let pool = pool2();
        let mut a = Allocations::default();
        assert_eq!(decide(&pool, &mut a, &svc("a", "1", &["192.168.56.241"])), Decision::Keep(ip("192.168.56.241")));
        let mut b = svc("a", "1", &[]);
        b.status_exact = false;
        assert_eq!(decide(&pool, &mut a, &b), Decision::Assign { ip: ip("192.168.56.241"), problem: None });
        let mut inexact = svc("a", "1", &["192.168.56.241"]);
        inexact.status_exact = false;
        assert_eq!(decide(&pool, &mut a, &inexact), Decision::Assign { ip: ip("192.168.56.241"), problem: None });
    }

    #[test]
    fn requested_ip_is_honored_when_in_pool_and_free() {
        let pool = pool2();
        let mut a = Allocations::default();
        let mut s = svc("a", "1", &[]);
        s.requested = Some("192.168.56.241".into());
        assert_eq!(decide(&pool, &mut a, &s), Decision::Assign { ip: ip("192.168.56.241"), problem: None });
        let mut t = svc("b", "2", &[]);
        t.requested = Some("192.168.56.241".into());
        let Decision::Fail { problem, .. } = decide(&pool, &mut a, &t) else { panic!() };
        assert!(problem.message(&t.key).contains("already assigned to default/a"), "{problem:?}");
        t.requested = Some("10.1.1.1".into());
        let Decision::Fail { problem, .. } = decide(&pool, &mut a, &t) else { panic!() };
        assert!(problem
            .message(&t.key)
            .ends_with("spec.loadBalancerIP 10.1.1.1 is not in pool 192.168.56.240-192.168.56.241"));
        t.requested = Some("x".into());
        assert!(matches!(decide(&pool, &mut a, &t), Decision::Fail { problem: Problem::RequestedInvalid { .. }, .. }));
        // The holder changes its request: the old address is freed, the new one taken.
        s.requested = Some("192.168.56.240".into());
        s.status_ips = vec!["192.168.56.241".into()];
        assert_eq!(decide(&pool, &mut a, &s), Decision::Assign { ip: ip("192.168.56.240"), problem: None });
        assert_eq!(a.holder(&ip("192.168.56.241")), None);
    }

    #[test]
    fn double_claims_and_foreign_addresses_are_repaired() {
        let pool = pool2();
        let mut a = Allocations::default();
        assert_eq!(decide(&pool, &mut a, &svc("a", "1", &["192.168.56.240"])), Decision::Keep(ip("192.168.56.240")));
        let d = decide(&pool, &mut a, &svc("b", "2", &["192.168.56.240"]));
        assert_eq!(
            d,
            Decision::Assign {
                ip: ip("192.168.56.241"),
                problem: Some(Problem::Conflict { ip: ip("192.168.56.240"), by: ObjectKey::new("default", "a") })
            }
        );
        let d = decide(&pool, &mut a, &svc("c", "3", &["10.0.0.1"]));
        let Decision::Fail { problem, clear } = d else { panic!("{d:?}") };
        assert!(clear, "a foreign address is cleared even when none can replace it");
        assert!(matches!(problem, Problem::Exhausted { .. }));
        let mut empty = Allocations::default();
        let d = decide(&Pool::default(), &mut empty, &svc("c", "3", &[]));
        let Decision::Fail { problem, .. } = d else { panic!() };
        assert!(problem.message(&ObjectKey::new("default", "c")).contains("--load-balancer-ip-pool"));
    }

    #[test]
    fn other_classes_are_ignored_and_recreated_services_start_over() {
        let pool = pool2();
        let mut a = Allocations::default();
        let mut other = svc("o", "1", &["192.168.56.240"]);
        other.scope = Scope::OtherClass;
        assert_eq!(decide(&pool, &mut a, &other), Decision::Ignore);
        assert!(a.is_empty());
        decide(&pool, &mut a, &svc("a", "1", &[]));
        let mut again = svc("a", "2", &[]);
        again.uid = "uid-new".into();
        decide(&pool, &mut a, &again);
        assert_eq!(a.holder(&ip("192.168.56.240")).map(|h| h.uid.as_str()), Some("uid-new"));
    }

    #[test]
    fn rebuild_prefers_previous_holder_then_age() {
        let pool = pool2();
        let views = vec![svc("young", "2", &["192.168.56.240"]), svc("old", "1", &["192.168.56.240"])];
        let a = rebuild(&pool, &views, &Allocations::default());
        assert_eq!(a.holder(&ip("192.168.56.240")).map(|h| h.key.name.as_str()), Some("old"));
        let mut prev = Allocations::default();
        prev.assign(ip("192.168.56.240"), Holder { key: ObjectKey::new("default", "young"), uid: "uid-young".into() });
        let a = rebuild(&pool, &views, &prev);
        assert_eq!(a.holder(&ip("192.168.56.240")).map(|h| h.key.name.as_str()), Some("young"));
        assert_eq!(a.len(), 1);
    }

    proptest! {
        /// Whatever Services come and go (and whatever their statuses claim), no address is held twice,
        /// every held address is in the pool, and every Ours Service that got an address holds it.
        #[test]
        fn no_address_is_ever_held_twice(ops in proptest::collection::vec((0u8..6, 0u8..4, any::<bool>()), 1..80)) {
            let pool = Pool::parse(&["10.0.0.1-10.0.0.3"]).unwrap();
            let mut a = Allocations::default();
            for (who, claim, lb) in ops {
                let claim = format!("10.0.0.{claim}");
                let mut v = svc(&format!("s{who}"), &format!("{who}"), &[claim.as_str()]);
                if !lb {
                    v.scope = Scope::NotLoadBalancer;
                }
                let d = decide(&pool, &mut a, &v);
                if let Decision::Assign { ip, .. } | Decision::Keep(ip) = d {
                    prop_assert_eq!(a.ip_of(&v.key), Some(ip));
                }
                let mut seen = BTreeSet::new();
                for (ip, h) in a.holders() {
                    prop_assert!(pool.contains(ip));
                    prop_assert!(seen.insert(h.key.clone()));
                    prop_assert_eq!(a.ip_of(&h.key), Some(*ip));
                }
            }
        }
    }
}
