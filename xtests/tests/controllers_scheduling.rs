//! Issue 3, test 4 and the scheduler: a real knet-apiserver, `knet-controllers` running only the scheduler,
//! node IPAM or LoadBalancer IPAM, fake nodes, and the real kubectl for what users read.
//!
//! - the scheduler spreads a burst of replicas 3/3 over two nodes, honors nodeName and nodeSelector, avoids
//!   NotReady and cordoned nodes, and leaves a pod that fits nowhere Pending with a FailedScheduling event
//!   (shown by `kubectl describe pod`) until a matching node appears;
//! - node IPAM gives distinct pod CIDRs, keeps them across a controllers crash without writing to Nodes,
//!   frees a deleted Node's CIDR for the next one, and reports a full cluster CIDR;
//! - LoadBalancer IPAM serves a pool, reports exhaustion, releases on delete and type change, honors
//!   loadBalancerIP, keeps assignments across a crash, leaves other classes alone and repairs a double claim.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use xtests::{wait, ApiServer, Controllers, FakeNode, FakeNodeOptions, Kubectl, WaitFor};

const WAIT: Duration = Duration::from_secs(30);
const WRITES: &str = "knet_controllers_api_writes_total";

async fn start(args: &[&str]) -> Result<(ApiServer, Controllers, Client)> {
    let api = ApiServer::start().await?;
    let ctrl = Controllers::start_with(&api, args, WaitFor::Ready).await?;
    let client = api.client().await?;
    Ok((api, ctrl, client))
}

fn ok(k: &Kubectl, args: &[&str]) -> Result<String> {
    Ok(k.run(args)?.ok()?.stdout)
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).context("building an object")
}

// ---- scheduler -------------------------------------------------------------------------------------

/// A ReplicaSet with no replicas (no ReplicaSet controller runs here): the owner of pods the test creates.
async fn owner(client: &Client, name: &str) -> Result<(String, String)> {
    let rs: ReplicaSet = from_json(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}},
    }))?;
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default").create(&PostParams::default(), &rs).await?;
    Ok((name.to_string(), rs.metadata.uid.context("ReplicaSet without uid")?))
}

fn pod(name: &str, owner: Option<&(String, String)>, spec_extra: Value) -> Result<Pod> {
    let mut p = json!({
        "metadata": {"name": name, "labels": {"test": "sched"}},
        "spec": {"containers": [{"name": "c", "image": "agnhost"}]},
    });
    if let Some((rs, uid)) = owner {
        p["metadata"]["labels"]["app"] = json!(rs);
        p["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid, "controller": true}]);
    }
    if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    from_json(p)
}

async fn create_pods(pods: &Api<Pod>, list: Vec<Pod>) -> Result<()> {
    let pp = PostParams::default();
    let results = futures::future::join_all(list.iter().map(|p| pods.create(&pp, p))).await;
    for r in results {
        r.context("creating a pod")?;
    }
    Ok(())
}

/// Waits until every pod in `names` has a node, and returns pod → node.
async fn nodes_of(pods: &Api<Pod>, names: &[String]) -> Result<BTreeMap<String, String>> {
    wait::until(WAIT, "the pods to be bound", || async {
        let mut out = BTreeMap::new();
        for n in names {
            let p = pods.get(n).await?;
            match p.spec.and_then(|s| s.node_name) {
                Some(node) => out.insert(n.clone(), node),
                None => bail!("{n} has no node yet"),
            };
        }
        Ok(Some(out))
    })
    .await
}

fn per_node(bound: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for node in bound.values() {
        *out.entry(node.clone()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_spreads_a_burst_and_honors_node_name_and_node_selector() -> Result<()> {
    // Node IPAM too, so that the fake nodes have pod CIDRs to give their pods addresses from.
    let (api, _ctrl, client) = start(&["--controllers", "scheduler,nodeipam"]).await?;
    let ssd = FakeNodeOptions { labels: [("disk".to_string(), "ssd".to_string())].into(), ..Default::default() };
    let _a = FakeNode::start_with(client.clone(), "node-a", ssd).await?;
    let _b = FakeNode::start(client.clone(), "node-b").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // A burst of six replicas of one owner: 3/3, although most are scheduled before any binding is seen.
    let rs = owner(&client, "web").await?;
    let names: Vec<String> = (0..6).map(|i| format!("web-{i}")).collect();
    create_pods(&pods, names.iter().map(|n| pod(n, Some(&rs), json!({}))).collect::<Result<_>>()?).await?;
    let bound = nodes_of(&pods, &names).await?;
    assert_eq!(per_node(&bound), BTreeMap::from([("node-a".into(), 3), ("node-b".into(), 3)]), "{bound:?}");

    // nodeName is the user's choice: the scheduler leaves the pod alone and the node runs it.
    pods.create(&PostParams::default(), &pod("pinned", None, json!({"nodeName": "node-b"}))?).await?;
    // nodeSelector: only node-a has disk=ssd.
    let fast: Vec<String> = (0..3).map(|i| format!("fast-{i}")).collect();
    let sel = json!({"nodeSelector": {"disk": "ssd"}});
    create_pods(&pods, fast.iter().map(|n| pod(n, None, sel.clone())).collect::<Result<_>>()?).await?;
    let bound = nodes_of(&pods, &fast).await?;
    assert!(bound.values().all(|n| n == "node-a"), "{bound:?}");
    let pinned = nodes_of(&pods, &["pinned".to_string()]).await?;
    assert_eq!(pinned["pinned"], "node-b");
    let k = api.kubectl();
    ok(&k, &["wait", "--for=condition=Ready", "pod", "-l", "test=sched", "--timeout=30s"])?;
    let described = ok(&k, &["describe", "pod", "fast-0"])?;
    assert!(described.contains("Successfully assigned default/fast-0 to node-a"), "{described}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_waits_with_an_event_until_a_node_fits() -> Result<()> {
    let (api, _ctrl, client) = start(&["--controllers", "scheduler", "--resync-period", "3s"]).await?;
    let _a = FakeNode::start(client.clone(), "node-a").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("picky", None, json!({"nodeSelector": {"zone": "blue"}}))?).await?;

    let expected = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
                    preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    wait::until(WAIT, "PodScheduled=False with the reason", || async {
        let p = pods.get("picky").await?;
        let conds = p.status.and_then(|s| s.conditions).unwrap_or_default();
        let c = conds.iter().find(|c| c.type_ == "PodScheduled").context("no PodScheduled condition")?;
        if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(expected)
        {
            Ok(Some(()))
        } else {
            bail!("{c:?}")
        }
    })
    .await?;
    let k = api.kubectl();
    let described = wait::until(WAIT, "kubectl describe pod to show FailedScheduling", || async {
        let out = ok(&k, &["describe", "pod", "picky"])?;
        Ok(out.contains("FailedScheduling").then_some(out))
    })
    .await?;
    assert!(described.contains("Status:           Pending"), "{described}");
    assert!(described.contains("default-scheduler"), "{described}");
    assert!(
        described.contains("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."),
        "{described}"
    );
    assert_eq!(pods.get("picky").await?.spec.and_then(|s| s.node_name), None);

    // A node that matches appears: the pod is scheduled there.
    let blue = FakeNodeOptions { labels: [("zone".to_string(), "blue".to_string())].into(), ..Default::default() };
    let _blue = FakeNode::start_with(client.clone(), "node-blue", blue).await?;
    let bound = nodes_of(&pods, &["picky".to_string()]).await?;
    assert_eq!(bound["picky"], "node-blue");
    let described = wait::until(WAIT, "kubectl describe pod to show Scheduled", || async {
        let out = ok(&k, &["describe", "pod", "picky"])?;
        Ok(out.contains("Successfully assigned default/picky to node-blue").then_some(out))
    })
    .await?;
    assert!(described.contains("Scheduled"), "{described}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_and_cordoned_nodes_are_avoided() -> Result<()> {
    let (api, _ctrl, client) = start(&["--controllers", "scheduler"]).await?;
    let _ok = FakeNode::start(client.clone(), "node-ok").await?;
    let _cordoned = FakeNode::start(client.clone(), "node-cordoned").await?;
    let k = api.kubectl();
    ok(&k, &["cordon", "node-cordoned"])?;
    // A registered node whose kubelet says it is not ready.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &from_json(json!({"metadata": {"name": "node-down"}}))?).await?;
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"}],
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
    }});
    nodes.patch_status("node-down", &PatchParams::default(), &Patch::Merge(&status)).await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rs = owner(&client, "api").await?;
    let first: Vec<String> = (0..4).map(|i| format!("api-{i}")).collect();
    create_pods(&pods, first.iter().map(|n| pod(n, Some(&rs), json!({}))).collect::<Result<_>>()?).await?;
    let bound = nodes_of(&pods, &first).await?;
    assert!(bound.values().all(|n| n == "node-ok"), "{bound:?}");

    // Uncordoned, the node takes the next replicas (it has fewest of them).
    ok(&k, &["uncordon", "node-cordoned"])?;
    let more: Vec<String> = (4..6).map(|i| format!("api-{i}")).collect();
    create_pods(&pods, more.iter().map(|n| pod(n, Some(&rs), json!({}))).collect::<Result<_>>()?).await?;
    let bound = nodes_of(&pods, &more).await?;
    assert!(bound.values().all(|n| n == "node-cordoned"), "{bound:?}");
    Ok(())
}

// ---- node IPAM -------------------------------------------------------------------------------------

async fn create_node(nodes: &Api<Node>, name: &str) -> Result<()> {
    nodes.create(&PostParams::default(), &from_json(json!({"metadata": {"name": name}}))?).await?;
    Ok(())
}

/// Waits until every node in `names` has a podCIDR (and podCIDRs says the same); returns node → CIDR.
async fn pod_cidrs(nodes: &Api<Node>, names: &[&str]) -> Result<BTreeMap<String, String>> {
    wait::until(WAIT, "the nodes' pod CIDRs", || async {
        let mut out = BTreeMap::new();
        for n in names {
            let spec = nodes.get(n).await?.spec.unwrap_or_default();
            let Some(cidr) = spec.pod_cidr else { bail!("{n} has no podCIDR yet") };
            if spec.pod_cidrs.as_deref() != Some(std::slice::from_ref(&cidr)) {
                bail!("{n}: podCIDRs {:?} do not match podCIDR {cidr}", spec.pod_cidrs);
            }
            out.insert(n.to_string(), cidr);
        }
        Ok(Some(out))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_cidrs_are_distinct_stable_across_restart_and_reused() -> Result<()> {
    let (_api, mut ctrl, client) = start(&["--controllers", "nodeipam", "--repair-interval", "1s"]).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for n in ["n1", "n2", "n3"] {
        create_node(&nodes, n).await?;
    }
    let cidrs = pod_cidrs(&nodes, &["n1", "n2", "n3"]).await?;
    let set: BTreeSet<&str> = cidrs.values().map(String::as_str).collect();
    assert_eq!(set, BTreeSet::from(["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]), "{cidrs:?}");
    assert_eq!(ctrl.metric_sum(WRITES, &[("resource", "nodes")]).await?, 3.0, "one write per node");

    // A crash and a restart: the allocation is rebuilt from the Nodes; nothing is rewritten.
    ctrl.kill9();
    ctrl.restart(WaitFor::Ready).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await; // two repair passes
    assert_eq!(pod_cidrs(&nodes, &["n1", "n2", "n3"]).await?, cidrs);
    assert_eq!(ctrl.metric_sum(WRITES, &[("resource", "nodes")]).await?, 0.0);

    // A deleted Node's CIDR is free again, and the lowest free CIDR goes to the next Node.
    nodes.delete("n2", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    create_node(&nodes, "n4").await?;
    create_node(&nodes, "n5").await?;
    let now = pod_cidrs(&nodes, &["n4"]).await?;
    assert_eq!(now["n4"], cidrs["n2"]);
    assert_eq!(pod_cidrs(&nodes, &["n5"]).await?["n5"], "10.244.3.0/24");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_cidr_is_reported_and_freed_cidrs_are_handed_out() -> Result<()> {
    let args = ["--controllers", "nodeipam", "--cluster-cidr", "10.99.0.0/23"];
    let (api, _ctrl, client) = start(&args).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    create_node(&nodes, "f1").await?;
    create_node(&nodes, "f2").await?;
    let cidrs = pod_cidrs(&nodes, &["f1", "f2"]).await?;
    assert_eq!(cidrs["f1"], "10.99.0.0/24");
    assert_eq!(cidrs["f2"], "10.99.1.0/24");
    create_node(&nodes, "f3").await?;
    let k = api.kubectl();
    let described = wait::until(WAIT, "CIDRNotAvailable on f3", || async {
        let out = ok(&k, &["describe", "node", "f3"])?;
        Ok(out.contains("CIDRNotAvailable").then_some(out))
    })
    .await?;
    assert!(described.contains("Node f3 status is now: CIDRNotAvailable"), "{described}");
    assert_eq!(nodes.get("f3").await?.spec.and_then(|s| s.pod_cidr), None);
    nodes.delete("f1", &DeleteParams::default()).await?;
    assert_eq!(pod_cidrs(&nodes, &["f3"]).await?["f3"], "10.99.0.0/24");

    // Nodes registered with a podCIDR of their own: one outside the cluster CIDR, one taken by f2. Neither
    // can be changed (podCIDR is immutable): each gets a Warning event, and f2 keeps its CIDR.
    for (name, cidr) in [("outside", "10.1.0.0/24"), ("dup", "10.99.1.0/24")] {
        let node = json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        nodes.create(&PostParams::default(), &from_json(node)?).await?;
    }
    let described = describe_until(&k, &["node", "outside"], "PodCIDRNotInClusterCIDR").await?;
    assert!(described.contains("outside the cluster CIDR 10.99.0.0/23"), "{described}");
    let described = describe_until(&k, &["node", "dup"], "PodCIDRConflict").await?;
    assert!(described.contains("overlaps the podCIDR of node(s) f2"), "{described}");
    assert_eq!(pod_cidrs(&nodes, &["f2"]).await?["f2"], "10.99.1.0/24");
    Ok(())
}

// ---- LoadBalancer IPAM -----------------------------------------------------------------------------

async fn create_lb(svcs: &Api<Service>, name: &str, spec_extra: Value) -> Result<()> {
    let mut spec = json!({"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        s.extend(extra.clone());
    }
    let svc: Service = from_json(json!({"metadata": {"name": name}, "spec": spec}))?;
    svcs.create(&PostParams::default(), &svc).await?;
    Ok(())
}

/// The ingress `ip`s of a Service's status, checking each has ipMode VIP.
async fn lb_ips(svcs: &Api<Service>, name: &str) -> Result<Vec<String>> {
    let svc = svcs.get(name).await?;
    let ingress = svc.status.and_then(|s| s.load_balancer).and_then(|lb| lb.ingress).unwrap_or_default();
    let mut out = Vec::new();
    for i in ingress {
        if i.ip_mode.as_deref() != Some("VIP") {
            bail!("{name}: ingress {i:?} without ipMode VIP");
        }
        out.push(i.ip.unwrap_or_default());
    }
    Ok(out)
}

async fn wait_lb_ip(svcs: &Api<Service>, name: &str) -> Result<String> {
    wait::until(WAIT, &format!("an IP for {name}"), || async {
        let ips = lb_ips(svcs, name).await?;
        match ips.as_slice() {
            [ip] => Ok(Some(ip.clone())),
            [] => Ok(None),
            more => bail!("{name} has several IPs {more:?}"),
        }
    })
    .await
}

async fn describe_until(k: &Kubectl, what: &[&str], needle: &str) -> Result<String> {
    let mut args = vec!["describe"];
    args.extend_from_slice(what);
    wait::until(WAIT, &format!("kubectl describe {} to show {needle:?}", what.join(" ")), || async {
        let out = ok(k, &args)?;
        Ok(out.contains(needle).then_some(out))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_pool_allocates_reports_exhaustion_and_releases() -> Result<()> {
    let pool = "192.168.56.240-192.168.56.241";
    let (api, _ctrl, client) = start(&["--controllers", "service-lb", "--load-balancer-ip-pool", pool]).await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    create_lb(&svcs, "lb-a", json!({})).await?;
    assert_eq!(wait_lb_ip(&svcs, "lb-a").await?, "192.168.56.240");
    create_lb(&svcs, "lb-b", json!({})).await?;
    assert_eq!(wait_lb_ip(&svcs, "lb-b").await?, "192.168.56.241");

    // The pool is exhausted: a Warning event naming the pool, and no address.
    create_lb(&svcs, "lb-c", json!({})).await?;
    let k = api.kubectl();
    let described = describe_until(&k, &["svc", "lb-c"], "AllocationFailed").await?;
    assert!(described.contains(&format!("no available IPs in pool {pool}")), "{described}");
    assert!(described.contains("Warning"), "{described}");
    assert!(lb_ips(&svcs, "lb-c").await?.is_empty());
    let get = ok(&k, &["get", "svc", "lb-a"])?;
    assert!(get.contains("192.168.56.240"), "kubectl get svc shows the EXTERNAL-IP: {get}");
    let described = describe_until(&k, &["svc", "lb-a"], "EnsuredLoadBalancer").await?;
    assert!(described.contains("EnsuringLoadBalancer"), "{described}");
    assert!(described.contains("LoadBalancer Ingress:     192.168.56.240 (VIP)"), "{described}");

    // Deleting lb-a frees its address for lb-c.
    svcs.delete("lb-a", &DeleteParams::default()).await?;
    assert_eq!(wait_lb_ip(&svcs, "lb-c").await?, "192.168.56.240");

    // lb-b stops being a LoadBalancer: its status is cleared and its address goes to the next Service.
    ok(&k, &["patch", "svc", "lb-b", "-p", r#"{"spec":{"type":"ClusterIP"}}"#])?;
    assert!(lb_ips(&svcs, "lb-b").await?.is_empty());
    create_lb(&svcs, "lb-d", json!({})).await?;
    assert_eq!(wait_lb_ip(&svcs, "lb-d").await?, "192.168.56.241");
    describe_until(&k, &["svc", "lb-b"], "DeletedLoadBalancer").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_ips_honor_requests_survive_restarts_and_are_repaired() -> Result<()> {
    let pool = "192.168.56.240-192.168.56.250";
    let args = ["--controllers", "service-lb", "--load-balancer-ip-pool", pool, "--repair-interval", "1s"];
    let (api, mut ctrl, client) = start(&args).await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    create_lb(&svcs, "wants-245", json!({"loadBalancerIP": "192.168.56.245"})).await?;
    assert_eq!(wait_lb_ip(&svcs, "wants-245").await?, "192.168.56.245");
    create_lb(&svcs, "x", json!({})).await?;
    let x = wait_lb_ip(&svcs, "x").await?;
    create_lb(&svcs, "y", json!({})).await?;
    let y = wait_lb_ip(&svcs, "y").await?;
    assert_eq!((x.as_str(), y.as_str()), ("192.168.56.240", "192.168.56.241"));

    // A request outside the pool gets a Warning and no address; another class is not ours.
    create_lb(&svcs, "wants-outside", json!({"loadBalancerIP": "10.1.2.3"})).await?;
    create_lb(&svcs, "other-class", json!({"loadBalancerClass": "example.com/other"})).await?;
    let k = api.kubectl();
    let described = describe_until(&k, &["svc", "wants-outside"], "AllocationFailed").await?;
    assert!(described.contains(&format!("spec.loadBalancerIP 10.1.2.3 is not in pool {pool}")), "{described}");
    assert!(lb_ips(&svcs, "wants-outside").await?.is_empty());
    assert!(lb_ips(&svcs, "other-class").await?.is_empty());

    // A crash and a restart keep every assignment and write nothing.
    ctrl.kill9();
    ctrl.restart(WaitFor::Ready).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await; // two repair passes
    assert_eq!(lb_ips(&svcs, "wants-245").await?, ["192.168.56.245"]);
    assert_eq!(lb_ips(&svcs, "x").await?, [x.as_str()]);
    assert_eq!(lb_ips(&svcs, "y").await?, [y.as_str()]);
    assert_eq!(ctrl.metric_sum(WRITES, &[("resource", "services/status")]).await?, 0.0);

    // Someone writes x's address into y's status: x keeps it, y gets another, with an event saying why.
    let stolen = json!({"status": {"loadBalancer": {"ingress": [{"ip": x, "ipMode": "VIP"}]}}});
    svcs.patch_status("y", &PatchParams::default(), &Patch::Merge(&stolen)).await?;
    let repaired = wait::until(WAIT, "y to get an address of its own", || async {
        let ips = lb_ips(&svcs, "y").await?;
        Ok(ips.first().filter(|ip| **ip != x).cloned())
    })
    .await?;
    assert_eq!(lb_ips(&svcs, "x").await?, [x.as_str()]);
    assert!(!["192.168.56.245", x.as_str()].contains(&repaired.as_str()), "{repaired}");
    let described = describe_until(&k, &["svc", "y"], "LoadBalancerIPConflict").await?;
    assert!(described.contains("is assigned to Service default/x"), "{described}");
    assert!(lb_ips(&svcs, "other-class").await?.is_empty());
    Ok(())
}
