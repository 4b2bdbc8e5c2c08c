//! The allocation repair loop: kube-apiserver's ClusterIP and NodePort repair controllers.
//!
//! Allocations are store keys written in the Service's own transaction ([`crate::alloc`]),
//! so only the API server can repair them. A periodic run (and one at start-up, before
//! the server reports ready) reads the live Services and the allocation keys, lets
//! [`decide`] say what to do, and applies each change in its own guarded transaction:
//! - a key for a value a Service holds but has no key for is re-created, only if that
//!   Service is still the version read and the key still absent;
//! - a key no Service has held for [`decide::SIGHTINGS_BEFORE_RELEASE`] runs is deleted,
//!   only if it is still the version read (a create can never reuse a value whose key
//!   exists, so nothing concurrent is broken).
//!
//! Duplicates and out-of-range values are logged, counted and reported once per Service
//! and value as a Warning event on the Service, with upstream's reasons and messages.

pub mod decide;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use self::decide::{decide, Allocated, Decision, Leaks, LiveService, ProblemKind, Snapshot};
use crate::alloc::{self, holdings_of, owner_value};
use crate::metrics::Metrics;
use crate::registry::{Registry, WriteOptions};
use crate::resources;
use crate::storage::{Compare, Op, StorageError, Txn};

/// Where Services are stored (`registry::prefix` of core/v1 services).
const SERVICES_PREFIX: &str = "/core/services/";

/// What can go wrong in a run (it is retried on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("reading {what} for the allocation repair: {source}")]
    Read { what: &'static str, source: StorageError },
    #[error("allocation repair: {doing}: {source}")]
    Write { doing: String, source: StorageError },
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub restored: usize,
    pub released: usize,
    pub problems: usize,
    /// Keys seen unheld, waiting for more sightings.
    pub suspected: usize,
    /// Changes not made because what they were decided on changed meanwhile (retried next run).
    pub skipped: usize,
}

/// The repair loop's state: the leak sightings carried from run to run.
pub struct Repair {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    leaks: Leaks,
    /// (Service uid, value, problem) already reported with an event.
    reported: BTreeSet<(String, Allocated, &'static str)>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Upstream's event reason and note for something the repair found about a Service's value.
fn event_text(value: &Allocated, what: &str, ports: &str) -> (&'static str, String) {
    match (value, what) {
        (Allocated::ClusterIp(ip), "restore") => {
            ("ClusterIPNotAllocated", format!("Cluster IP [{}]: {ip} is not allocated; repairing", family(ip)))
        }
        (Allocated::ClusterIp(ip), "duplicate") => (
            "ClusterIPAlreadyAllocated",
            format!("Cluster IP [{}]:{ip} was assigned to multiple services; please recreate service", family(ip)),
        ),
        (Allocated::ClusterIp(ip), _) => (
            "ClusterIPOutOfRange",
            format!(
                "Cluster IP [{}]: {ip} is not within any configured Service CIDR; please recreate service",
                family(ip)
            ),
        ),
        (Allocated::NodePort(p), "restore") => ("PortNotAllocated", format!("Port {p} is not allocated; repairing")),
        (Allocated::NodePort(p), "duplicate") => {
            ("PortAlreadyAllocated", format!("Port {p} was assigned to multiple services; please recreate service"))
        }
        (Allocated::NodePort(p), _) => {
            ("PortOutOfRange", format!("Port {p} is not within the port range {ports}; please recreate service"))
        }
    }
}

impl Repair {
    pub fn new(registry: Arc<Registry>, metrics: Arc<Metrics>) -> Self {
        Repair { registry, metrics, leaks: Leaks::default(), reported: BTreeSet::new() }
    }

    /// Runs every `interval`, the first time one interval from now, until the task is dropped.
    pub async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "allocation repair failed; retrying at the next interval");
            }
        }
    }

    /// One repair run.
    pub async fn run_once(&mut self) -> Result<Report, RepairError> {
        let result = self.run_inner().await;
        self.metrics.repair_run(result.is_ok());
        result
    }

    async fn run_inner(&mut self) -> Result<Report, RepairError> {
        let snap = self.snapshot().await?;
        let cfg = self.registry.alloc.config().clone();
        let d = decide(&snap, &cfg, &self.leaks);
        self.leaks = d.leaks.clone();
        let ports = format!("{}-{}", cfg.node_ports.start(), cfg.node_ports.end());
        self.report(&d, &ports).await;
        let mut report = Report { problems: d.problems.len(), suspected: self.leaks.0.len(), ..Report::default() };
        for r in &d.restores {
            let key = r.value.key();
            let txn = Txn {
                compares: vec![
                    Compare::ModRevision(r.service_key.clone(), r.service_revision),
                    Compare::Absent(key.clone()),
                ],
                ops: vec![Op::Put { key, value: owner_value(&r.namespace, &r.name) }],
            };
            let doing = || format!("restoring the key of the {} of Service {}/{}", r.value, r.namespace, r.name);
            let done =
                self.registry.store.txn(txn).await.map_err(|source| RepairError::Write { doing: doing(), source })?;
            if done.succeeded {
                self.registry.alloc.mark(&r.value.holdings());
                self.metrics.repair_restored(r.value.resource());
                tracing::warn!("the {} for service {}/{} is not allocated; repairing", r.value, r.namespace, r.name);
                self.event(&r.namespace, &r.name, &r.uid, &r.value, "restore", &ports).await;
                report.restored += 1;
            } else {
                report.skipped += 1;
            }
        }
        for r in &d.releases {
            let key = r.value.key();
            let txn = Txn {
                compares: vec![Compare::ModRevision(key.clone(), r.key_revision)],
                ops: vec![Op::Delete { key }],
            };
            let doing = || format!("releasing the leaked {}", r.value);
            let done =
                self.registry.store.txn(txn).await.map_err(|source| RepairError::Write { doing: doing(), source })?;
            if done.succeeded {
                self.registry.alloc.forget(&r.value.holdings());
                self.metrics.repair_released(r.value.resource());
                tracing::warn!("the {} appears to have leaked: cleaning up", r.value);
                report.released += 1;
            } else {
                report.skipped += 1;
            }
        }
        for resource in ["clusterips", "nodeports"] {
            let n = self.leaks.0.keys().filter(|v| v.resource() == resource).count();
            self.metrics.set_repair_suspected(resource, n);
        }
        Ok(report)
    }

    /// Logs, counts and reports the problems and new suspects of a decision.
    async fn report(&mut self, d: &Decision, ports: &str) {
        for v in &d.suspected {
            tracing::warn!("the {v} may have leaked: flagging for later clean up");
        }
        for p in &d.problems {
            self.metrics.repair_problem(p.value.resource(), p.kind.as_str());
            match p.kind {
                ProblemKind::Duplicate => tracing::warn!(
                    "the {} for service {}/{} was assigned to multiple services; please recreate",
                    p.value,
                    p.namespace,
                    p.name
                ),
                ProblemKind::OutOfRange => tracing::warn!(
                    "the {} for service {}/{} is not within the configured range; please recreate",
                    p.value,
                    p.namespace,
                    p.name
                ),
            }
            self.event(&p.namespace, &p.name, &p.uid, &p.value, p.kind.as_str(), ports).await;
        }
    }

    /// A Warning event on the Service, once per Service, value and finding.
    async fn event(&mut self, namespace: &str, name: &str, uid: &str, value: &Allocated, what: &str, ports: &str) {
        let (reason, note) = event_text(value, what, ports);
        if !self.reported.insert((uid.to_string(), *value, reason)) {
            return;
        }
        let (controller, action) = match value {
            Allocated::ClusterIp(_) => ("ipallocator-repair-controller", "ClusterIPAllocation"),
            Allocated::NodePort(_) => ("portallocator-repair-controller", "PortAllocation"),
        };
        let now = jiff::Timestamp::now();
        let event = json!({
            "metadata": {"name": format!("{name}.{:x}", now.as_nanosecond()), "namespace": namespace},
            "regarding": {"kind": "Service", "apiVersion": "v1", "namespace": namespace, "name": name, "uid": uid},
            "eventTime": now.to_string(),
            "reason": reason, "note": note, "type": "Warning", "action": action,
            "reportingController": controller, "reportingInstance": "knet-apiserver",
        });
        let Some(res) = resources::find("events.k8s.io", "v1", "events") else { return };
        if let Err(e) = self.registry.create(res, Some(namespace), event, &WriteOptions::default()).await {
            tracing::debug!(error = %e, "could not record the repair event");
        }
    }

    /// Live Services first, then the allocation keys: a Service created in between shows
    /// as a key without a Service, which is only a suspect until a later run sees it held.
    async fn snapshot(&self) -> Result<Snapshot, RepairError> {
        let store = &self.registry.store;
        let services = store
            .range(SERVICES_PREFIX, None, 0)
            .await
            .map_err(|source| RepairError::Read { what: "services", source })?;
        let mut snap = Snapshot::default();
        for kv in &services.kvs {
            let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
                tracing::warn!(key = %kv.key, "allocation repair: a stored Service does not decode; skipped");
                continue;
            };
            let meta =
                |f: &str| svc.pointer(&format!("/metadata/{f}")).and_then(Value::as_str).unwrap_or("").to_string();
            snap.services.push(LiveService {
                namespace: meta("namespace"),
                name: meta("name"),
                key: kv.key.clone(),
                mod_revision: kv.mod_revision,
                uid: meta("uid"),
                holdings: holdings_of(&svc),
            });
        }
        let ips = store
            .range(alloc::CLUSTER_IP_PREFIX, None, 0)
            .await
            .map_err(|source| RepairError::Read { what: "ClusterIP allocations", source })?;
        for kv in ips.kvs {
            if let Ok(ip) = kv.key[alloc::CLUSTER_IP_PREFIX.len()..].parse() {
                snap.keys.insert(Allocated::ClusterIp(ip), kv.mod_revision);
            }
        }
        let ports = store
            .range(alloc::NODE_PORT_PREFIX, None, 0)
            .await
            .map_err(|source| RepairError::Read { what: "NodePort allocations", source })?;
        for kv in ports.kvs {
            if let Ok(p) = kv.key[alloc::NODE_PORT_PREFIX.len()..].parse() {
                snap.keys.insert(Allocated::NodePort(p), kv.mod_revision);
            }
        }
        Ok(snap)
    }
}

/// Parses a Go-style duration (`3m`, `1s`, `500ms`, `1h30m`); `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("invalid duration {s:?}: want a number and a unit (ms, s, m, h), e.g. 3m or 1s");
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        let tail = &rest[digits..];
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let seconds = match &tail[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| bad())?;
        rest = &tail[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_where_the_registry_keeps_them() {
        let res = resources::find("", "v1", "services").expect("services are served");
        assert_eq!(crate::registry::prefix(res, None), SERVICES_PREFIX);
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "3", "m", "3d", "-1s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn events_use_upstreams_reasons() {
        let ip = Allocated::ClusterIp("10.96.0.5".parse().unwrap());
        assert_eq!(
            event_text(&ip, "restore", ""),
            ("ClusterIPNotAllocated", "Cluster IP [IPv4]: 10.96.0.5 is not allocated; repairing".to_string())
        );
        assert_eq!(event_text(&ip, "duplicate", "").0, "ClusterIPAlreadyAllocated");
        assert_eq!(
            event_text(&Allocated::NodePort(80), "out_of_range", "30000-32767"),
            ("PortOutOfRange", "Port 80 is not within the port range 30000-32767; please recreate service".to_string())
        );
    }
}
