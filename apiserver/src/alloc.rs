//! ClusterIP and NodePort allocation, synchronous with Service writes.
//!
//! Each allocated address or port is a key in the store
//! (`/allocations/clusterips/<ip>`, `/allocations/nodeports/<port>`) whose value names
//! the owning Service. The registry writes these keys in the *same* transaction as
//! the Service, guarded by `Absent` compares, so an address can never be handed out
//! twice and never leaks when a write fails. An in-memory index of allocated and
//! in-flight values lets the allocator pick a free value without scanning the store.
//!
//! Dynamic ClusterIPs come from the upper band of the range first, leaving the lower
//! band (up to 256 addresses) for statically requested ones such as `10.96.0.10`, as
//! kube-apiserver does.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use bytes::Bytes;
use ipnet::IpNet;
use knet_apimachinery::field::{FieldError, Path};
use rand::Rng;
use serde_json::{json, Value};

use crate::storage::{Compare, Op, StorageError, Store};

/// Where allocation keys live.
pub const CLUSTER_IP_PREFIX: &str = "/allocations/clusterips/";
pub const NODE_PORT_PREFIX: &str = "/allocations/nodeports/";

pub fn ip_key(ip: &IpAddr) -> String {
    format!("{CLUSTER_IP_PREFIX}{ip}")
}

pub fn port_key(port: u16) -> String {
    format!("{NODE_PORT_PREFIX}{port}")
}

/// The ranges to allocate from.
#[derive(Clone, Debug)]
pub struct AllocConfig {
    pub service_cidr: IpNet,
    pub node_ports: RangeInclusive<u16>,
}

impl AllocConfig {
    /// Is `ip` a usable address of the Service CIDR (not its network or broadcast address)?
    pub fn contains_ip(&self, ip: &IpAddr) -> bool {
        let net = self.service_cidr;
        net.contains(ip)
            && *ip != net.network()
            && (net.prefix_len() >= net.max_prefix_len() - 1 || *ip != net.broadcast())
    }

    /// Is `port` in the NodePort range?
    pub fn contains_port(&self, port: u16) -> bool {
        self.node_ports.contains(&port)
    }
}

/// The value of an allocation key: the Service that holds it.
pub fn owner_value(namespace: &str, name: &str) -> Bytes {
    Bytes::from(json!({"namespace": namespace, "name": name}).to_string())
}

impl Default for AllocConfig {
    fn default() -> Self {
        AllocConfig {
            service_cidr: IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), 16).unwrap_or_default()),
            node_ports: 30000..=32767,
        }
    }
}

/// What a Service holds: its ClusterIPs and node ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    pub ips: BTreeSet<IpAddr>,
    pub ports: BTreeSet<u16>,
}

/// The store writes that make an allocation change durable, to add to the Service's
/// transaction, and what to record in memory once it commits.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
    /// Values newly taken by this plan (reserved in memory until commit or abort).
    pub taken: Holdings,
    /// Values this plan gives back.
    pub released: Holdings,
    /// For each compare, the field it guards (for error messages on conflict).
    pub guards: Vec<Guard>,
}

/// Which value a compare in a [`Plan`] protects.
#[derive(Clone, Debug)]
pub enum Guard {
    Ip { ip: IpAddr, requested: bool },
    Port { port: u16, path: Path, requested: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("the request was invalid")]
    Invalid(Vec<FieldError>),
    #[error("failed to allocate a serviceIP: range is full")]
    IpRangeFull,
    #[error("failed to allocate a nodePort: range is full")]
    PortRangeFull,
}

#[derive(Default)]
struct State {
    ips: BTreeSet<IpAddr>,
    ports: BTreeSet<u16>,
}

/// The allocator. One per API server; see the module docs.
pub struct Allocator {
    cfg: AllocConfig,
    state: Mutex<State>,
}

fn svc_type(svc: &Value) -> &str {
    svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

/// The values a stored Service holds (from its spec).
pub fn holdings_of(svc: &Value) -> Holdings {
    let mut h = Holdings::default();
    if svc_type(svc) == "ExternalName" {
        return h;
    }
    let ips = svc.pointer("/spec/clusterIPs").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut ip_strs: Vec<String> = ips.iter().filter_map(|v| v.as_str().map(String::from)).collect();
    if ip_strs.is_empty() {
        if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
            ip_strs.push(ip.to_string());
        }
    }
    for s in ip_strs {
        if let Ok(ip) = s.parse::<IpAddr>() {
            h.ips.insert(ip);
        }
    }
    if let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) {
        for p in ports {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()) {
                if n != 0 {
                    h.ports.insert(n);
                }
            }
        }
    }
    if let Some(n) =
        svc.pointer("/spec/healthCheckNodePort").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())
    {
        if n != 0 {
            h.ports.insert(n);
        }
    }
    h
}

impl Allocator {
    pub fn new(cfg: AllocConfig) -> Self {
        Allocator { cfg, state: Mutex::new(State::default()) }
    }

    pub fn config(&self) -> &AllocConfig {
        &self.cfg
    }

    /// Loads the allocated values from the store.
    pub async fn load(&self, store: &dyn Store) -> Result<(), StorageError> {
        let ips = store.range(CLUSTER_IP_PREFIX, None, 0).await?;
        let ports = store.range(NODE_PORT_PREFIX, None, 0).await?;
        let mut st = self.lock();
        for kv in ips.kvs {
            if let Ok(ip) = kv.key[CLUSTER_IP_PREFIX.len()..].parse() {
                st.ips.insert(ip);
            }
        }
        for kv in ports.kvs {
            if let Ok(p) = kv.key[NODE_PORT_PREFIX.len()..].parse() {
                st.ports.insert(p);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plans the allocation for a Service being created (`old == None`) or updated:
    /// fills `spec.clusterIP`, `spec.clusterIPs` and node ports into `svc`, and returns
    /// the store writes. Values are reserved in memory until [`Allocator::finish`].
    pub fn plan(&self, svc: &mut Value, old: Option<&Value>) -> Result<Plan, AllocError> {
        let owner_bytes = owner_value(
            svc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(""),
            svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
        );
        let old_h = old.map(holdings_of).unwrap_or_default();
        let mut plan = Plan::default();
        let mut errors = Vec::new();
        let mut st = self.lock();

        // ClusterIP.
        let typ = svc_type(svc).to_string();
        let mut want_ips: BTreeSet<IpAddr> = BTreeSet::new();
        if typ != "ExternalName" {
            let requested = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
            if requested == "None" {
                // headless: nothing to allocate
                if let Some(spec) = svc.get_mut("spec") {
                    spec["clusterIPs"] = json!(["None"]);
                }
            } else if requested.is_empty() {
                match self.pick_ip(&st) {
                    Some(ip) => {
                        plan.guards.push(Guard::Ip { ip, requested: false });
                        want_ips.insert(ip);
                        set_cluster_ip(svc, &ip);
                    }
                    None => return Err(AllocError::IpRangeFull),
                }
            } else {
                let path = Path::new("spec").child("clusterIPs");
                let list = json!([requested.clone()]);
                match requested.parse::<IpAddr>() {
                    Ok(ip) if old_h.ips.contains(&ip) => {
                        want_ips.insert(ip);
                        set_cluster_ip(svc, &ip);
                    }
                    Ok(ip) if !self.in_range(&ip) => errors.push(FieldError::invalid(
                        &path,
                        list,
                        format!(
                            "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                            self.cfg.service_cidr.trunc()
                        ),
                    )),
                    Ok(ip) if st.ips.contains(&ip) => errors.push(FieldError::invalid(
                        &path,
                        list,
                        format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    )),
                    Ok(ip) => {
                        plan.guards.push(Guard::Ip { ip, requested: true });
                        want_ips.insert(ip);
                        set_cluster_ip(svc, &ip);
                    }
                    // Format errors are validation's to report.
                    Err(_) => {}
                }
            }
        }

        // Node ports.
        let mut want_ports: BTreeSet<u16> = BTreeSet::new();
        let needs_node_ports = matches!(typ.as_str(), "NodePort" | "LoadBalancer")
            && !(typ == "LoadBalancer"
                && svc.pointer("/spec/allocateLoadBalancerNodePorts").and_then(Value::as_bool) == Some(false));
        let nports = svc.pointer("/spec/ports").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
        for i in 0..nports {
            let path = Path::new("spec").child("ports").index(i).child("nodePort");
            let pointer = format!("/spec/ports/{i}/nodePort");
            let requested = svc.pointer(&pointer).and_then(Value::as_i64).unwrap_or(0);
            if !needs_node_ports {
                if requested != 0 && typ != "LoadBalancer" {
                    // Validation reports nodePort on a ClusterIP Service; drop nothing here.
                }
                continue;
            }
            if requested == 0 {
                // Reuse the old port of the same port entry if the Service had one.
                let reuse = old.and_then(|o| {
                    o.pointer(&pointer).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0)
                });
                let port = match reuse.or_else(|| self.pick_port(&st, &want_ports)) {
                    Some(p) => p,
                    None => return Err(AllocError::PortRangeFull),
                };
                if !old_h.ports.contains(&port) && !want_ports.contains(&port) {
                    plan.guards.push(Guard::Port { port, path: path.clone(), requested: false });
                }
                want_ports.insert(port);
                if let Some(p) = svc.pointer_mut(&format!("/spec/ports/{i}")) {
                    p["nodePort"] = json!(port);
                }
                continue;
            }
            let port = match u16::try_from(requested).ok().filter(|p| self.cfg.node_ports.contains(p)) {
                Some(p) => p,
                None => {
                    errors.push(FieldError::invalid(
                        &path,
                        requested,
                        format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            self.cfg.node_ports.start(),
                            self.cfg.node_ports.end()
                        ),
                    ));
                    continue;
                }
            };
            if old_h.ports.contains(&port) || want_ports.contains(&port) {
                want_ports.insert(port);
                continue;
            }
            if st.ports.contains(&port) {
                errors.push(FieldError::invalid(&path, requested, "provided port is already allocated"));
                continue;
            }
            plan.guards.push(Guard::Port { port, path, requested: true });
            want_ports.insert(port);
        }

        // Health check node port for LoadBalancer + externalTrafficPolicy: Local.
        let etp_local = svc.pointer("/spec/externalTrafficPolicy").and_then(Value::as_str) == Some("Local");
        let hc_path = Path::new("spec").child("healthCheckNodePort");
        if typ == "LoadBalancer" && etp_local {
            let requested = svc.pointer("/spec/healthCheckNodePort").and_then(Value::as_i64).unwrap_or(0);
            if requested == 0 {
                let reuse = old
                    .and_then(|o| o.pointer("/spec/healthCheckNodePort").and_then(Value::as_u64))
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0);
                match reuse.or_else(|| self.pick_port(&st, &want_ports)) {
                    Some(port) => {
                        if !old_h.ports.contains(&port) {
                            plan.guards.push(Guard::Port { port, path: hc_path.clone(), requested: false });
                        }
                        want_ports.insert(port);
                        if let Some(spec) = svc.get_mut("spec") {
                            spec["healthCheckNodePort"] = json!(port);
                        }
                    }
                    None => return Err(AllocError::PortRangeFull),
                }
            } else {
                match u16::try_from(requested).ok().filter(|p| self.cfg.node_ports.contains(p)) {
                    None => errors.push(FieldError::invalid(
                        &hc_path,
                        requested,
                        format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            self.cfg.node_ports.start(),
                            self.cfg.node_ports.end()
                        ),
                    )),
                    Some(port) if old_h.ports.contains(&port) || want_ports.contains(&port) => {
                        want_ports.insert(port);
                    }
                    Some(port) if st.ports.contains(&port) => {
                        errors.push(FieldError::invalid(&hc_path, requested, "provided port is already allocated"))
                    }
                    Some(port) => {
                        plan.guards.push(Guard::Port { port, path: hc_path.clone(), requested: true });
                        want_ports.insert(port);
                    }
                }
            }
        } else if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("healthCheckNodePort");
        }

        if !errors.is_empty() {
            return Err(AllocError::Invalid(errors));
        }

        // Turn the wanted sets into store writes.
        for ip in want_ips.difference(&old_h.ips) {
            plan.compares.push(Compare::Absent(ip_key(ip)));
            plan.ops.push(Op::Put { key: ip_key(ip), value: owner_bytes.clone() });
            plan.taken.ips.insert(*ip);
            st.ips.insert(*ip);
        }
        for port in want_ports.difference(&old_h.ports) {
            plan.compares.push(Compare::Absent(port_key(*port)));
            plan.ops.push(Op::Put { key: port_key(*port), value: owner_bytes.clone() });
            plan.taken.ports.insert(*port);
            st.ports.insert(*port);
        }
        for ip in old_h.ips.difference(&want_ips) {
            plan.ops.push(Op::Delete { key: ip_key(ip) });
            plan.released.ips.insert(*ip);
        }
        for port in old_h.ports.difference(&want_ports) {
            plan.ops.push(Op::Delete { key: port_key(*port) });
            plan.released.ports.insert(*port);
        }
        // Keep guards aligned with compares (same order as pushed above).
        let mut guards = Vec::new();
        for ip in &plan.taken.ips {
            let requested = plan.guards.iter().any(|g| matches!(g, Guard::Ip { ip: gi, requested: true } if gi == ip));
            guards.push(Guard::Ip { ip: *ip, requested });
        }
        for port in &plan.taken.ports {
            let found = plan.guards.iter().find(|g| matches!(g, Guard::Port { port: gp, .. } if gp == port)).cloned();
            guards.push(found.unwrap_or(Guard::Port { port: *port, path: Path::new("spec"), requested: false }));
        }
        plan.guards = guards;
        Ok(plan)
    }

    /// The plan that frees everything a deleted Service held.
    pub fn plan_release(&self, svc: &Value) -> Plan {
        let h = holdings_of(svc);
        let mut plan = Plan::default();
        for ip in &h.ips {
            plan.ops.push(Op::Delete { key: ip_key(ip) });
        }
        for port in &h.ports {
            plan.ops.push(Op::Delete { key: port_key(*port) });
        }
        plan.released = h;
        plan
    }

    /// Records the outcome of a planned transaction: on success released values are
    /// freed; on failure the reservations are dropped.
    pub fn finish(&self, plan: &Plan, committed: bool) {
        let mut st = self.lock();
        if committed {
            for ip in &plan.released.ips {
                st.ips.remove(ip);
            }
            for p in &plan.released.ports {
                st.ports.remove(p);
            }
        } else {
            for ip in &plan.taken.ips {
                st.ips.remove(ip);
            }
            for p in &plan.taken.ports {
                st.ports.remove(p);
            }
        }
    }

    /// Marks values as allocated (the repair loop, after restoring their keys).
    pub fn mark(&self, h: &Holdings) {
        let mut st = self.lock();
        st.ips.extend(h.ips.iter().copied());
        st.ports.extend(h.ports.iter().copied());
    }

    /// Marks values as free (the repair loop, after releasing their leaked keys).
    pub fn forget(&self, h: &Holdings) {
        let mut st = self.lock();
        for ip in &h.ips {
            st.ips.remove(ip);
        }
        for p in &h.ports {
            st.ports.remove(p);
        }
    }

    /// Is `ip` a usable address of the Service CIDR (not its network or broadcast address)?
    pub fn in_range(&self, ip: &IpAddr) -> bool {
        self.cfg.contains_ip(ip)
    }

    fn pick_ip(&self, st: &State) -> Option<IpAddr> {
        let net = self.cfg.service_cidr;
        let IpNet::V4(v4) = net else { return None };
        let base = u32::from(v4.network());
        let size = 1u64 << (32 - u32::from(v4.prefix_len()));
        if size < 4 {
            return None;
        }
        // usable offsets: 1 ..= size-2
        let usable = size - 2;
        let static_band = (usable / 16).clamp(16, 256).min(usable);
        let pick_in = |lo: u64, hi: u64| -> Option<IpAddr> {
            if hi <= lo {
                return None;
            }
            let span = hi - lo;
            let start = rand::rng().random_range(0..span);
            for k in 0..span {
                let off = lo + (start + k) % span;
                let ip = IpAddr::V4(Ipv4Addr::from(base.wrapping_add(off as u32)));
                if !st.ips.contains(&ip) {
                    return Some(ip);
                }
            }
            None
        };
        pick_in(1 + static_band, usable + 1).or_else(|| pick_in(1, 1 + static_band))
    }

    fn pick_port(&self, st: &State, also_taken: &BTreeSet<u16>) -> Option<u16> {
        let lo = u32::from(*self.cfg.node_ports.start());
        let hi = u32::from(*self.cfg.node_ports.end());
        let span = hi - lo + 1;
        let start = rand::rng().random_range(0..span);
        (0..span).map(|k| (lo + (start + k) % span) as u16).find(|p| !st.ports.contains(p) && !also_taken.contains(p))
    }
}

fn set_cluster_ip(svc: &mut Value, ip: &IpAddr) {
    if let Some(spec) = svc.get_mut("spec") {
        spec["clusterIP"] = json!(ip.to_string());
        spec["clusterIPs"] = json!([ip.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(typ: &str, cluster_ip: &str, node_port: i64) -> Value {
        json!({
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"type": typ, "clusterIP": cluster_ip, "ports": [{"port": 80, "nodePort": node_port}]}
        })
    }

    #[test]
    fn allocates_dynamic_ip_from_upper_band_and_node_port() {
        let a = Allocator::new(AllocConfig::default());
        let mut s = svc("NodePort", "", 0);
        let plan = a.plan(&mut s, None).expect("plan");
        let ip: IpAddr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(a.in_range(&ip));
        let IpAddr::V4(v4) = ip else { panic!() };
        assert!(u32::from(v4) - u32::from(Ipv4Addr::new(10, 96, 0, 0)) > 256);
        let np = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));
        assert_eq!(plan.compares.len(), 2);
        assert_eq!(plan.ops.len(), 2);
    }

    #[test]
    fn taken_and_out_of_range_give_kube_messages() {
        let a = Allocator::new(AllocConfig::default());
        let mut s1 = svc("NodePort", "10.96.0.10", 30080);
        let p1 = a.plan(&mut s1, None).expect("first");
        a.finish(&p1, true);
        let mut s2 = svc("NodePort", "10.96.0.10", 30080);
        let AllocError::Invalid(errs) = a.plan(&mut s2, None).unwrap_err() else { panic!() };
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "spec.clusterIPs: Invalid value: [\"10.96.0.10\"]: failed to allocate IP 10.96.0.10: provided IP is already allocated",
                "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
            ]
        );
        let mut s3 = svc("NodePort", "10.97.0.1", 80);
        let AllocError::Invalid(errs) = a.plan(&mut s3, None).unwrap_err() else { panic!() };
        assert_eq!(errs[0].to_string(), "spec.clusterIPs: Invalid value: [\"10.97.0.1\"]: failed to allocate IP 10.97.0.1: the provided IP (10.97.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/16");
        assert_eq!(
            errs[1].to_string(),
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
    }

    #[test]
    fn type_change_releases_node_ports_and_external_name_releases_ip() {
        let a = Allocator::new(AllocConfig::default());
        let mut s = svc("NodePort", "", 0);
        let p = a.plan(&mut s, None).unwrap();
        a.finish(&p, true);
        let old = s.clone();
        let mut s2 = old.clone();
        s2["spec"]["type"] = json!("ClusterIP");
        s2["spec"]["ports"][0].as_object_mut().unwrap().remove("nodePort");
        let p2 = a.plan(&mut s2, Some(&old)).unwrap();
        assert_eq!(p2.released.ports.len(), 1);
        assert!(p2.taken.ips.is_empty());
        let mut s3 = s2.clone();
        s3["spec"]["type"] = json!("ExternalName");
        let p3 = a.plan(&mut s3, Some(&s2)).unwrap();
        assert_eq!(p3.released.ips.len(), 1);
    }

    #[test]
    fn headless_gets_nothing() {
        let a = Allocator::new(AllocConfig::default());
        let mut s = svc("ClusterIP", "None", 0);
        let p = a.plan(&mut s, None).unwrap();
        assert!(p.ops.is_empty());
        assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));
    }
}
