//! The canonical form of Endpoints subsets (upstream `RepackSubsets`): addresses that offer the same set of
//! ports share one subset, an address not ready for some port is not ready for that port, and everything
//! is sorted, so that equal endpoints always compare equal and a recomputation causes no write.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

/// An address's identity: its IP and the uid of the object it stands for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct AddressKey {
    ip: String,
    uid: String,
}

impl AddressKey {
    fn of(addr: &EndpointAddress) -> Self {
        let uid = addr.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default();
        AddressKey { ip: addr.ip.clone(), uid }
    }
}

/// A port, comparable; `None` is the sentinel for addresses without ports (headless Services).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn of(p: &EndpointPort) -> Self {
        PortKey {
            name: p.name.clone().unwrap_or_default(),
            port: p.port,
            protocol: p.protocol.clone().unwrap_or_default(),
            app_protocol: p.app_protocol.clone(),
        }
    }

    fn to_port(&self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            port: self.port,
            protocol: Some(self.protocol.clone()).filter(|p| !p.is_empty()),
            app_protocol: self.app_protocol.clone(),
        }
    }
}

/// Normalizes an address: no `resourceVersion` in its targetRef (pods change it all the time) and no
/// empty optional fields.
fn normalize_address(addr: &EndpointAddress) -> EndpointAddress {
    let mut a = addr.clone();
    if let Some(r) = a.target_ref.as_mut() {
        r.resource_version = None;
    }
    if a.hostname.as_deref() == Some("") {
        a.hostname = None;
    }
    if a.node_name.as_deref() == Some("") {
        a.node_name = None;
    }
    a
}

/// Repacks `subsets` into their canonical form.
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut addresses: HashMap<AddressKey, EndpointAddress> = HashMap::new();
    // Port → (address → ready).
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddressKey, bool>> = BTreeMap::new();
    for ss in subsets {
        let ports: Vec<Option<PortKey>> = match ss.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ps) => ps.iter().map(|p| Some(PortKey::of(p))).collect(),
        };
        let ready = ss.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = ss.not_ready_addresses.iter().flatten().map(|a| (a, false));
        for (addr, is_ready) in ready.chain(not_ready) {
            let key = AddressKey::of(addr);
            addresses.entry(key.clone()).or_insert_with(|| normalize_address(addr));
            for port in &ports {
                let set = by_port.entry(port.clone()).or_default();
                // Not ready trumps ready.
                let was = set.entry(key.clone()).or_insert(is_ready);
                *was = *was && is_ready;
            }
        }
    }
    // Ports that share the same set of addresses (with the same readiness) form one subset.
    let mut by_addresses: BTreeMap<BTreeMap<AddressKey, bool>, Vec<PortKey>> = BTreeMap::new();
    for (port, addrs) in by_port {
        let ports = by_addresses.entry(addrs).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }
    let mut out: Vec<EndpointSubset> = by_addresses
        .into_iter()
        .map(|(addrs, ports)| {
            let pick = |want: bool| -> Vec<EndpointAddress> {
                addrs.iter().filter(|(_, r)| **r == want).filter_map(|(k, _)| addresses.get(k).cloned()).collect()
            };
            let ready = pick(true);
            let not_ready = pick(false);
            EndpointSubset {
                addresses: Some(ready).filter(|v| !v.is_empty()),
                not_ready_addresses: Some(not_ready).filter(|v| !v.is_empty()),
                ports: Some(ports.iter().map(PortKey::to_port).collect()).filter(|v: &Vec<EndpointPort>| !v.is_empty()),
            }
        })
        .collect();
    out.sort_by_cached_key(subset_sort_key);
    out
}

/// Subsets sort by their ports, then their first address.
fn subset_sort_key(ss: &EndpointSubset) -> (Vec<PortKey>, Option<AddressKey>) {
    let ports = ss.ports.iter().flatten().map(PortKey::of).collect();
    let first = ss.addresses.iter().chain(ss.not_ready_addresses.iter()).flatten().map(AddressKey::of).min();
    (ports, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subsets(v: serde_json::Value) -> Vec<EndpointSubset> {
        serde_json::from_value(v).expect("subsets")
    }

    #[test]
    fn addresses_with_the_same_ports_share_a_subset_sorted() {
        let input = subsets(json!([
            {"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            {"notReadyAddresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.4"}], "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}]},
        ]));
        let want = subsets(json!([
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "notReadyAddresses": [{"ip": "10.0.0.3"}],
             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.4"}], "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}]},
        ]));
        assert_eq!(repack_subsets(&input), want);
        // Idempotent and order-independent.
        assert_eq!(repack_subsets(&want), want);
        let mut rev = input.clone();
        rev.reverse();
        assert_eq!(repack_subsets(&rev), want);
    }

    #[test]
    fn multi_port_addresses_merge_and_not_ready_trumps_ready() {
        let input = subsets(json!([
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "a", "port": 1, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "b", "port": 2, "protocol": "TCP"}]},
            {"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "b", "port": 2, "protocol": "TCP"}]},
        ]));
        let want = subsets(json!([
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "a", "port": 1, "protocol": "TCP"}]},
            {"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "b", "port": 2, "protocol": "TCP"}]},
        ]));
        assert_eq!(repack_subsets(&input), want);
    }

    #[test]
    fn portless_addresses_and_resource_versions() {
        let input = subsets(json!([
            {"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p", "uid": "u", "resourceVersion": "7"}}]},
        ]));
        let want = subsets(json!([
            {"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p", "uid": "u"}}]},
        ]));
        assert_eq!(repack_subsets(&input), want);
        assert!(repack_subsets(&[]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn repacking_is_idempotent_and_keeps_every_address_port_pair(
            entries in proptest::collection::vec((0u8..6, 0u8..3, proptest::bool::ANY), 0..20)
        ) {
            let input: Vec<EndpointSubset> = entries.iter().map(|(ip, port, ready)| {
                let addr = EndpointAddress { ip: format!("10.0.0.{ip}"), ..Default::default() };
                EndpointSubset {
                    addresses: ready.then(|| vec![addr.clone()]),
                    not_ready_addresses: (!ready).then(|| vec![addr]),
                    ports: Some(vec![EndpointPort { name: Some(format!("p{port}")), port: i32::from(*port) + 1, protocol: Some("TCP".into()), app_protocol: None }]),
                }
            }).collect();
            let once = repack_subsets(&input);
            proptest::prop_assert_eq!(&repack_subsets(&once), &once);
            let pairs = |ss: &[EndpointSubset]| {
                let mut v: Vec<(String, i32)> = ss.iter().flat_map(|s| {
                    let ports: Vec<i32> = s.ports.iter().flatten().map(|p| p.port).collect();
                    s.addresses.iter().chain(s.not_ready_addresses.iter()).flatten()
                        .flat_map(move |a| ports.clone().into_iter().map(move |p| (a.ip.clone(), p)))
                        .collect::<Vec<_>>()
                }).collect();
                v.sort();
                v.dedup();
                v
            };
            proptest::prop_assert_eq!(pairs(&once), pairs(&input));
        }
    }
}
