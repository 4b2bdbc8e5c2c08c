//! The repair decision, pure: live Services and allocation keys in, what to release,
//! restore and report out (kube-apiserver's ipallocator and portallocator `Repair.runOnce`).
//!
//! - Each live Service claims its ClusterIPs and node ports, in namespace/name order. A
//!   value already claimed by another Service, or outside the configured range, is a
//!   [`Problem`] (logged and counted; a Service must be recreated to fix it). An in-range
//!   claimed value without a key is a [`Restore`].
//! - A key no Service claims may be a leak, or a Service being created right now: like
//!   upstream, it is released only when seen unclaimed on [`SIGHTINGS_BEFORE_RELEASE`]
//!   consecutive runs ([`Leaks`] carries the count from one run to the next).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::alloc::{ip_key, port_key, AllocConfig, Holdings};
use crate::storage::Revision;

/// How many consecutive runs must see a key unclaimed before it is released
/// (upstream's `numRepairsBeforeLeakCleanup`).
pub const SIGHTINGS_BEFORE_RELEASE: u32 = 3;

/// One allocatable value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Allocated {
    ClusterIp(IpAddr),
    NodePort(u16),
}

impl Allocated {
    /// Its allocation key in the store.
    pub fn key(&self) -> String {
        match self {
            Allocated::ClusterIp(ip) => ip_key(ip),
            Allocated::NodePort(p) => port_key(*p),
        }
    }

    /// `clusterips` or `nodeports`, for metrics.
    pub fn resource(&self) -> &'static str {
        match self {
            Allocated::ClusterIp(_) => "clusterips",
            Allocated::NodePort(_) => "nodeports",
        }
    }

    /// As a [`Holdings`] of one value.
    pub fn holdings(&self) -> Holdings {
        let mut h = Holdings::default();
        match self {
            Allocated::ClusterIp(ip) => {
                h.ips.insert(*ip);
            }
            Allocated::NodePort(p) => {
                h.ports.insert(*p);
            }
        }
        h
    }
}

impl fmt::Display for Allocated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allocated::ClusterIp(ip) => write!(f, "cluster IP {ip}"),
            Allocated::NodePort(p) => write!(f, "node port {p}"),
        }
    }
}

/// A live Service as the repair sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveService {
    pub namespace: String,
    pub name: String,
    /// Its storage key and the revision it was read at (restores are guarded by it).
    pub key: String,
    pub mod_revision: Revision,
    pub uid: String,
    pub holdings: Holdings,
}

/// What the store holds: live Services and allocation keys (value → key revision).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub services: Vec<LiveService>,
    pub keys: BTreeMap<Allocated, Revision>,
}

/// Keys seen unclaimed, with how many consecutive runs saw them so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaks(pub BTreeMap<Allocated, u32>);

/// Re-create the key of a value a Service holds, if that Service is still as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    pub value: Allocated,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub service_key: String,
    pub service_revision: Revision,
}

/// Delete a leaked key, if it is still as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub value: Allocated,
    pub key_revision: Revision,
}

/// What is wrong with a value a Service holds, and cannot be repaired here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Another Service (earlier in namespace/name order) holds the same value.
    Duplicate,
    /// The value is outside the configured Service CIDR or NodePort range.
    OutOfRange,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Duplicate => "duplicate",
            ProblemKind::OutOfRange => "out_of_range",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub value: Allocated,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// The outcome of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub restores: Vec<Restore>,
    pub releases: Vec<Release>,
    pub problems: Vec<Problem>,
    /// Keys seen unclaimed for the first time this run.
    pub suspected: Vec<Allocated>,
    /// The counts to hand to the next run.
    pub leaks: Leaks,
}

fn values(h: &Holdings) -> impl Iterator<Item = Allocated> + '_ {
    h.ips.iter().map(|ip| Allocated::ClusterIp(*ip)).chain(h.ports.iter().map(|p| Allocated::NodePort(*p)))
}

fn in_range(cfg: &AllocConfig, v: &Allocated) -> bool {
    match v {
        Allocated::ClusterIp(ip) => cfg.contains_ip(ip),
        Allocated::NodePort(p) => cfg.contains_port(*p),
    }
}

/// Decides one repair run; see the module docs.
pub fn decide(snap: &Snapshot, cfg: &AllocConfig, leaks: &Leaks) -> Decision {
    let mut out = Decision::default();
    let mut services: Vec<&LiveService> = snap.services.iter().collect();
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut claimed: BTreeSet<Allocated> = BTreeSet::new();
    for svc in services {
        for value in values(&svc.holdings) {
            let problem = |kind| Problem {
                kind,
                value,
                namespace: svc.namespace.clone(),
                name: svc.name.clone(),
                uid: svc.uid.clone(),
            };
            if !claimed.insert(value) {
                out.problems.push(problem(ProblemKind::Duplicate));
                continue;
            }
            // Out of range: reported, and no key made for it (one that exists stays: it is claimed, not leaked).
            if !in_range(cfg, &value) {
                out.problems.push(problem(ProblemKind::OutOfRange));
                continue;
            }
            if !snap.keys.contains_key(&value) {
                out.restores.push(Restore {
                    value,
                    namespace: svc.namespace.clone(),
                    name: svc.name.clone(),
                    uid: svc.uid.clone(),
                    service_key: svc.key.clone(),
                    service_revision: svc.mod_revision,
                });
            }
        }
    }
    for (value, rev) in &snap.keys {
        if claimed.contains(value) {
            continue;
        }
        let seen = leaks.0.get(value).copied().unwrap_or(0) + 1;
        if seen == 1 {
            out.suspected.push(*value);
        }
        if seen >= SIGHTINGS_BEFORE_RELEASE {
            out.releases.push(Release { value: *value, key_revision: *rev });
        } else {
            out.leaks.0.insert(*value, seen);
        }
    }
    out
}

#[cfg(test)]
mod tests;
