//! Cross-node routing (`knet_node_agent::network`) with network namespaces as nodes on a test bridge, for both
//! backends: the agent's routing part runs in-process per node (its netlink socket opened from a thread inside
//! the node's namespace, its API client in the root namespace against a real `knet-apiserver`). Fake pods
//! (a namespace + veth in each node's podCIDR) reach each other across nodes with their own source IPs (real
//! agnhost `/clientip`, real curl), nodes reach remote pods, drift is repaired, foreign routes are left alone
//! and a removed Node's routes go away. Needs root.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Node;
use knet_lab::netns::Netns;
use knet_node_agent::network::{Backend, Network, NetworkFlags};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use xtests::apiserver::knet_binary;
use xtests::lab::{check_in, in_netns_on_runtime, require_root, run_in, TestNet};
use xtests::{wait, ApiServer};

const TIMEOUT: Duration = Duration::from_secs(30);

struct TestNode {
    name: &'static str,
    ip: &'static str,
    cidr: &'static str,
    pod_ip: &'static str,
}

const NODES: [TestNode; 2] = [
    TestNode { name: "node-a", ip: "192.168.56.11", cidr: "10.244.1.0/24", pod_ip: "10.244.1.5" },
    TestNode { name: "node-b", ip: "192.168.56.12", cidr: "10.244.2.0/24", pod_ip: "10.244.2.5" },
];

async fn register(api: &Api<Node>, n: &TestNode) -> Result<()> {
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": n.name},
        "spec": {"podCIDR": n.cidr, "podCIDRs": [n.cidr]},
    }))?;
    api.create(&PostParams::default(), &node).await.with_context(|| format!("creating Node {}", n.name))?;
    let status = serde_json::json!({"status": {"addresses": [
        {"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}]}});
    api.patch_status(n.name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    Ok(())
}

/// Waits until `curl` from `from` to `url` answers with a body starting with `want`.
async fn until_curl(from: &Netns, url: &str, want: &str) -> Result<String> {
    let (from, url_s, want_s) = (from.clone(), url.to_string(), want.to_string());
    wait::until(TIMEOUT, &format!("curl {url} from {} to answer {want}…", from.name()), move || {
        let (from, url, want) = (from.clone(), url_s.clone(), want_s.clone());
        async move {
            let (ok, out, err) =
                tokio::task::spawn_blocking(move || run_in(&from, "curl", &["-sS", "--max-time", "2", &url])).await??;
            if ok && out.starts_with(&want) {
                Ok(Some(out))
            } else {
                anyhow::bail!("{out}{err}")
            }
        }
    })
    .await
}

/// Waits until `ip ARGS` in `ns` does (or does not) print a line containing `needle`.
async fn until_ip(ns: &Netns, args: &[&str], needle: &str, present: bool) -> Result<()> {
    let what =
        format!("`ip {}` in {} {} {needle:?}", args.join(" "), ns.name(), if present { "to show" } else { "to lose" });
    let (ns, args, needle) = (ns.clone(), args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), needle.to_string());
    wait::until(TIMEOUT, &what, move || {
        let (ns, args, needle) = (ns.clone(), args.clone(), needle.clone());
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = ns.ip(&refs)?;
            if out.contains(&needle) == present {
                Ok(Some(()))
            } else {
                anyhow::bail!("{out}")
            }
        }
    })
    .await
}

async fn cross_node_routing(backend: Backend, tag: &str) -> Result<()> {
    let agnhost = knet_binary("agnhost")?;
    let server = ApiServer::start().await?;
    let client = server.client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut net = TestNet::new(tag)?;
    let mut hosts = Vec::new();
    let mut pods = Vec::new();
    for (i, n) in NODES.iter().enumerate() {
        let host = net.host(&format!("n{i}"), format!("{}/24", n.ip).parse()?)?;
        let pod = net.pod(&host, &format!("p{i}"), "vpod", n.cidr.parse()?, n.pod_ip.parse()?)?;
        net.spawn(&pod, &agnhost, &["netexec", "--http-port=8080", "--udp-port=-1"])?;
        register(&nodes, n).await?;
        hosts.push(host);
        pods.push(pod);
    }
    let flags = NetworkFlags { backend, network_resync_period: Duration::from_millis(300), ..NetworkFlags::default() };
    let mut tasks = Vec::new();
    for (i, n) in NODES.iter().enumerate() {
        let flags = flags.clone();
        let network = in_netns_on_runtime(&hosts[i], move || Network::open(flags))??;
        tasks.push(tokio::spawn(network.run(client.clone(), n.name.to_string())));
    }
    let result = check_routing(backend, &nodes, &hosts, &pods).await;
    for t in &tasks {
        t.abort();
    }
    if result.is_err() {
        for h in &hosts {
            eprintln!(
                "--- {}:\n{}{}",
                h.name(),
                h.ip(&["route"]).unwrap_or_default(),
                h.ip(&["neigh"]).unwrap_or_default()
            );
        }
    }
    result
}

async fn check_routing(backend: Backend, nodes: &Api<Node>, hosts: &[Netns], pods: &[Netns]) -> Result<()> {
    let (a, b) = (&NODES[0], &NODES[1]);
    // Pod to pod across nodes, both ways, each seeing the other's own pod IP (no NAT).
    let seen = until_curl(&pods[0], &format!("http://{}:8080/clientip", b.pod_ip), &format!("{}:", a.pod_ip)).await?;
    assert!(seen.starts_with(&format!("{}:", a.pod_ip)), "{seen}");
    until_curl(&pods[1], &format!("http://{}:8080/clientip", a.pod_ip), &format!("{}:", b.pod_ip)).await?;
    // Node to a remote pod.
    until_curl(&hosts[0], &format!("http://{}:8080/hostname", b.pod_ip), "").await?;

    let route_needle = match backend {
        Backend::HostGw => format!("{} via {} dev eth0 proto 77", b.cidr, b.ip),
        Backend::Vxlan => format!("{} via 10.244.2.0 dev knet.1 proto 77 onlink", b.cidr),
    };
    until_ip(&hosts[0], &["route"], &route_needle, true).await?;

    // Both Nodes say their network is available; with VXLAN they published their VTEP.
    for n in &NODES {
        let node = nodes.get(n.name).await?;
        let conditions = node.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            conditions.iter().any(|c| c.type_ == "NetworkUnavailable" && c.status == "False"),
            "{}: {conditions:?}",
            n.name
        );
        let annotations = node.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.get("knet.dev/backend-type").map(String::as_str), Some(backend.to_string().as_str()));
        if backend == Backend::Vxlan {
            assert!(annotations.get("knet.dev/backend-data").is_some_and(|d| d.contains("VtepMAC")), "{annotations:?}");
        }
    }

    // Someone else's route is left alone; a deleted route of ours comes back.
    check_in(&hosts[0], "ip", &["route", "add", "10.250.0.0/24", "via", b.ip])?;
    hosts[0].ip(&["route", "del", b.cidr])?;
    until_ip(&hosts[0], &["route"], &route_needle, true).await?;
    if backend == Backend::Vxlan {
        hosts[0].ip(&["neigh", "del", "10.244.2.0", "dev", "knet.1"])?;
        let fdb = check_in(&hosts[0], "bridge", &["fdb", "show", "dev", "knet.1"])?;
        let mac = fdb.split_whitespace().next().context("no fdb entry on knet.1")?.to_string();
        check_in(&hosts[0], "bridge", &["fdb", "del", &mac, "dev", "knet.1"])?;
        until_ip(&hosts[0], &["neigh", "show", "dev", "knet.1"], &mac, true).await?;
        // The VXLAN device keeps only its own address: a stray one goes, a removed one comes back.
        hosts[0].ip(&["addr", "add", "10.99.0.1/32", "dev", "knet.1"])?;
        hosts[0].ip(&["addr", "del", "10.244.1.0/32", "dev", "knet.1"])?;
        until_ip(&hosts[0], &["-4", "addr", "show", "dev", "knet.1"], "inet 10.99.0.1/32", false).await?;
        until_ip(&hosts[0], &["-4", "addr", "show", "dev", "knet.1"], "inet 10.244.1.0/32", true).await?;
        let h = hosts[0].clone();
        let mac2 = mac.clone();
        wait::until(TIMEOUT, "the fdb entry to come back", move || {
            let (h, mac) = (h.clone(), mac2.clone());
            async move { Ok(check_in(&h, "bridge", &["fdb", "show", "dev", "knet.1"])?.contains(&mac).then_some(())) }
        })
        .await?;
    }
    until_curl(&pods[0], &format!("http://{}:8080/clientip", b.pod_ip), &format!("{}:", a.pod_ip)).await?;
    assert!(hosts[0].ip(&["route"])?.contains("10.250.0.0/24"), "the foreign route was removed");

    // A removed Node's routes (and overlay entries) go away; the others stay.
    nodes.delete(b.name, &DeleteParams::default()).await?;
    until_ip(&hosts[0], &["route"], b.cidr, false).await?;
    if backend == Backend::Vxlan {
        until_ip(&hosts[0], &["neigh", "show", "dev", "knet.1"], "10.244.2.0", false).await?;
        let h = hosts[0].clone();
        wait::until(TIMEOUT, "the fdb entry of the removed node to go", move || {
            let h = h.clone();
            async move { Ok(check_in(&h, "bridge", &["fdb", "show", "dev", "knet.1"])?.trim().is_empty().then_some(())) }
        })
        .await?;
    }
    assert!(hosts[0].ip(&["route"])?.contains("10.250.0.0/24"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_gw_routes_pods_across_nodes() -> Result<()> {
    if !require_root("host_gw_routes_pods_across_nodes") {
        return Ok(());
    }
    cross_node_routing(Backend::HostGw, "hg").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vxlan_routes_pods_across_nodes() -> Result<()> {
    if !require_root("vxlan_routes_pods_across_nodes") {
        return Ok(());
    }
    cross_node_routing(Backend::Vxlan, "vx").await
}
