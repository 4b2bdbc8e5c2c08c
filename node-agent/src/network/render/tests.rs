use super::*;

fn node(name: &str, cidr: Option<&str>, ip: Option<&str>, vtep: Option<(u32, &str)>) -> NodeRoute {
    NodeRoute {
        name: name.into(),
        pod_cidrs: cidr.into_iter().map(|c| c.parse().unwrap()).collect(),
        internal_ip: ip.map(|i| i.parse().unwrap()),
        vtep: vtep.map(|(vni, mac)| Vtep { vni, mac: parse_mac(mac).unwrap() }),
    }
}

fn cluster() -> Vec<NodeRoute> {
    vec![
        node("worker-1", Some("10.244.1.0/24"), Some("192.168.56.11"), Some((1, "02:00:00:00:00:01"))),
        node("worker-2", Some("10.244.2.0/24"), Some("192.168.56.12"), Some((1, "02:00:00:00:00:02"))),
        node("control-plane", None, Some("192.168.56.10"), None),
        node("worker-3", Some("10.244.3.0/24"), Some("10.0.0.5"), Some((1, "02:00:00:00:00:03"))),
        node("worker-4", Some("10.244.2.0/25"), Some("192.168.56.14"), Some((1, "02:00:00:00:00:04"))),
        node("worker-5", Some("10.244.5.0/24"), None, None),
        node("worker-6", Some("10.244.6.0/24"), Some("192.168.56.16"), None),
        node("worker-7", Some("10.244.7.0/24"), Some("192.168.56.17"), Some((2, "02:00:00:00:00:07"))),
        node("worker-8", Some("fd00:10:244:8::/64"), Some("192.168.56.18"), None),
        node("worker-9", Some("10.244.1.0/24"), Some("192.168.56.19"), None),
    ]
}

fn underlay() -> Underlay {
    Underlay { ifindex: 2, name: "eth0".into(), address: "192.168.56.11/24".parse().unwrap(), mtu: 1500 }
}

fn names() -> BTreeMap<u32, String> {
    [(2, "eth0".to_string()), (5, "knet.1".to_string())].into_iter().collect()
}

/// Compares with `testdata/<name>.golden`; `KNET_UPDATE_GOLDEN=1` rewrites the file.
fn golden(name: &str, got: &str) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/network/testdata").join(format!("{name}.golden"));
    if std::env::var_os("KNET_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(got, want, "{} differs (KNET_UPDATE_GOLDEN=1 rewrites it)", path.display());
}

#[test]
fn host_gw_routes_every_routable_node() {
    let desired = host_gw("worker-1", &underlay(), &cluster());
    golden("host-gw", &desired.to_text(&names()));
    assert!(desired.neighbours.is_empty() && desired.fdb.is_empty());
}

#[test]
fn vxlan_routes_neighbours_and_fdb() {
    let device = vxlan_device(1, 8472, &underlay(), "10.244.1.0/24".parse().unwrap());
    assert_eq!(device.name, "knet.1");
    assert_eq!(device.mtu, 1450);
    assert_eq!(device.address, "10.244.1.0/32".parse::<Ipv4Net>().unwrap());
    assert_eq!(device.local, "192.168.56.11".parse::<Ipv4Addr>().unwrap());
    let desired = vxlan("worker-1", &device, 5, &cluster());
    golden("vxlan", &desired.to_text(&names()));
}

#[test]
fn a_node_alone_needs_nothing() {
    let only = vec![node("worker-1", Some("10.244.1.0/24"), Some("192.168.56.11"), None)];
    assert_eq!(host_gw("worker-1", &underlay(), &only), Desired::default());
}

#[test]
fn a_removed_node_loses_its_route() {
    let mut nodes = cluster();
    let before = host_gw("worker-1", &underlay(), &nodes);
    nodes.retain(|n| n.name != "worker-2");
    let after = host_gw("worker-1", &underlay(), &nodes);
    let dst: Ipv4Net = "10.244.2.0/24".parse().unwrap();
    assert!(before.routes.contains_key(&dst));
    assert!(!after.routes.contains_key(&dst));
}

#[test]
fn reads_nodes_and_backend_data() {
    let n: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "worker-2", "annotations": {
            "knet.dev/backend-type": "vxlan",
            "knet.dev/backend-data": "{\"VNI\":1,\"VtepMAC\":\"0a:1b:2c:3d:4e:5f\"}"}},
        "spec": {"podCIDR": "10.244.2.0/24"},
        "status": {"addresses": [
            {"type": "Hostname", "address": "worker-2"},
            {"type": "InternalIP", "address": "fd00::12"},
            {"type": "InternalIP", "address": "192.168.56.12"}]}
    }))
    .unwrap();
    let r = node_route(&n);
    assert_eq!(r.pod_cidrs, vec!["10.244.2.0/24".parse::<IpNet>().unwrap()]);
    assert_eq!(r.internal_ip, Some("192.168.56.12".parse().unwrap()));
    let vtep = r.vtep.unwrap();
    assert_eq!((vtep.vni, format_mac(&vtep.mac)), (1, "0a:1b:2c:3d:4e:5f".to_string()));
    assert_eq!(parse_backend_data(&backend_data(&vtep)), Some(vtep));
    assert_eq!(parse_mac("0a:1b:2c:3d:4e"), None);
    assert_eq!(parse_mac("0a:1b:2c:3d:4e:5f:00"), None);
    // Without the backend-type annotation the data is not trusted.
    let mut bare = n.clone();
    bare.metadata.annotations.as_mut().unwrap().remove(BACKEND_TYPE_ANNOTATION);
    assert_eq!(node_route(&bare).vtep, None);
}

#[test]
fn pod_mtu_leaves_room_for_vxlan() {
    assert_eq!(pod_mtu(Backend::HostGw, 1500), 1500);
    assert_eq!(pod_mtu(Backend::Vxlan, 1500), 1450);
    assert_eq!(pod_mtu(Backend::Vxlan, 9000), 8950);
}
