//! The endpoints, EndpointSlice and mirroring controllers against a real knet-apiserver (issue 3, tests 1
//! and 2): Endpoints seen through the real kubectl follow pods; named target ports with different numbers,
//! publishNotReadyAddresses, hostnames; a selectorless Service's Endpoints left alone and mirrored; a
//! readiness flip is one write of each kind; slices hold at most 100 endpoints; nothing is written when
//! nothing changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use xtests::{wait, ApiServer, Controllers, FakeNode, WaitFor};

const CONTROLLERS: &[&str] = &["--controllers", "endpoint,endpointslice,endpointslicemirroring"];
const WAIT: Duration = Duration::from_secs(20);
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

async fn start(extra: &[&str]) -> Result<(ApiServer, Controllers, Client)> {
    let api = ApiServer::start().await?;
    let mut args = CONTROLLERS.to_vec();
    args.extend_from_slice(extra);
    let ctrl = Controllers::start_with(&api, &args, WaitFor::Ready).await?;
    let client = api.client().await?;
    Ok((api, ctrl, client))
}

/// Registers a Node with a pod CIDR (no node IPAM runs here) and a fake agent for it.
async fn node(client: &Client, name: &str, cidr: &str) -> Result<FakeNode> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr}}))?;
    nodes.create(&PostParams::default(), &node).await.with_context(|| format!("creating node {name}"))?;
    FakeNode::start(client.clone(), name).await
}

/// Creates Node `name` with no agent (tests that report pod status themselves).
async fn bare_node(client: &Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": name}}))?).await?;
    Ok(())
}

async fn create<K>(client: &Client, ns: &str, v: Value) -> Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj: K = serde_json::from_value(v)?;
    api.create(&PostParams::default(), &obj).await.context("creating an object")
}

/// A pod bound to `node` with `labels` and container ports `(name, number)`.
fn pod_json(name: &str, node: &str, labels: Value, ports: &[(&str, i32)]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|(n, p)| json!({"name": n, "containerPort": p})).collect();
    json!({"metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "ports": ports}]}})
}

/// Reports pod `name` Running with `ip`, ready or not, through the status subresource.
async fn report(client: &Client, ns: &str, name: &str, ip: &str, ready: bool) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": jiff::Timestamp::now().to_string()}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn pod_ip(client: &Client, ns: &str, name: &str) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait::until(WAIT, &format!("an IP for pod {name}"), || async {
        Ok(pods.get(name).await?.status.and_then(|s| s.pod_ip))
    })
    .await
}

/// `(ready ip:port, not ready ip:port)` of an Endpoints object.
fn ep_addresses(ep: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    for ss in ep.subsets.iter().flatten() {
        for p in ss.ports.iter().flatten() {
            for a in ss.addresses.iter().flatten() {
                ready.insert(format!("{}:{}", a.ip, p.port));
            }
            for a in ss.not_ready_addresses.iter().flatten() {
                not_ready.insert(format!("{}:{}", a.ip, p.port));
            }
        }
    }
    (ready, not_ready)
}

async fn endpoints_until(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    pred: impl Fn(&Endpoints) -> bool,
) -> Result<Endpoints> {
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    wait::until(WAIT, what, || {
        let api = api.clone();
        let pred = &pred;
        async move {
            match api.get_opt(name).await? {
                Some(ep) if pred(&ep) => Ok(Some(ep)),
                Some(ep) => anyhow::bail!("{:?}", ep.subsets),
                None => anyhow::bail!("no Endpoints {ns}/{name}"),
            }
        }
    })
    .await
}

/// The slices of Service `svc` managed by `manager`.
async fn slices(client: &Client, ns: &str, svc: &str, manager: &str) -> Result<Vec<EndpointSlice>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc},{MANAGED_BY}={manager}"));
    Ok(api.list(&lp).await?.items)
}

async fn slices_until(
    client: &Client,
    ns: &str,
    svc: &str,
    manager: &str,
    what: &str,
    pred: impl Fn(&[EndpointSlice]) -> bool,
) -> Result<Vec<EndpointSlice>> {
    wait::until(WAIT, what, || {
        let pred = &pred;
        async move {
            let s = slices(client, ns, svc, manager).await?;
            if pred(&s) {
                Ok(Some(s))
            } else {
                anyhow::bail!("{}", serde_json::to_string(&s)?)
            }
        }
    })
    .await
}

/// What the slices say about one address.
#[derive(Clone, Debug)]
struct SliceEndpoint {
    ready: bool,
    serving: bool,
    terminating: bool,
    hostname: Option<String>,
    ports: Vec<i32>,
}

/// Every address in `slices`.
fn slice_endpoints(slices: &[EndpointSlice]) -> BTreeMap<String, SliceEndpoint> {
    let mut out = BTreeMap::new();
    for s in slices {
        let ports: Vec<i32> = s.ports.iter().flatten().filter_map(|p| p.port).collect();
        for e in &s.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            for a in &e.addresses {
                let ep = SliceEndpoint {
                    ready: c.ready.unwrap_or(false),
                    serving: c.serving.unwrap_or(false),
                    terminating: c.terminating.unwrap_or(false),
                    hostname: e.hostname.clone(),
                    ports: ports.clone(),
                };
                out.insert(a.clone(), ep);
            }
        }
    }
    out
}

const EPC: &str = "endpointslice-controller.k8s.io";
const MIRROR: &str = "endpointslicemirroring-controller.k8s.io";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_ep_follows_the_pods_of_my_nginx() -> Result<()> {
    let (api, _ctrl, client) = start(&[]).await?;
    let _a = node(&client, "node-a", "10.244.1.0/24").await?;
    let _b = node(&client, "node-b", "10.244.2.0/24").await?;
    let k = api.kubectl();
    k.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-nginx\n  labels:\n    run: my-nginx\nspec:\n  ports:\n  \
         - port: 80\n    protocol: TCP\n  selector:\n    run: my-nginx\n",
    )?
    .ok()?;
    for (name, node) in [("my-nginx-1", "node-a"), ("my-nginx-2", "node-b")] {
        create::<Pod>(&client, "default", pod_json(name, node, json!({"run": "my-nginx"}), &[("http", 80)])).await?;
    }
    let ip1 = pod_ip(&client, "default", "my-nginx-1").await?;
    let ip2 = pod_ip(&client, "default", "my-nginx-2").await?;
    let want = format!("{ip1}:80,{ip2}:80");
    let get_ep = || -> Result<String> { Ok(k.run(&["get", "ep", "my-nginx", "--no-headers"])?.ok()?.stdout) };
    wait::until(WAIT, "kubectl get ep my-nginx to list both pods", || async {
        let out = get_ep()?;
        let cols: Vec<&str> = out.split_whitespace().collect();
        let mut got: Vec<&str> = cols.get(1).map(|c| c.split(',').collect()).unwrap_or_default();
        got.sort();
        let mut w: Vec<&str> = want.split(',').collect();
        w.sort();
        if cols.first() == Some(&"my-nginx") && got == w {
            Ok(Some(()))
        } else {
            anyhow::bail!("{out}")
        }
    })
    .await?;
    // The Endpoints carry the Service's labels, nodeName and targetRef; the slice says the same.
    let ep = endpoints_until(&client, "default", "my-nginx", "labels", |_| true).await?;
    assert_eq!(ep.metadata.labels.as_ref().and_then(|l| l.get("run")).map(String::as_str), Some("my-nginx"));
    let addr = ep.subsets.iter().flatten().flat_map(|s| s.addresses.iter().flatten()).find(|a| a.ip == ip1);
    assert_eq!(addr.and_then(|a| a.node_name.as_deref()), Some("node-a"));
    let target = addr.and_then(|a| a.target_ref.clone()).context("a targetRef")?;
    assert_eq!((target.kind.as_deref(), target.name.as_deref()), (Some("Pod"), Some("my-nginx-1")));
    let s =
        slices_until(&client, "default", "my-nginx", EPC, "a slice with both pods", |s| slice_endpoints(s).len() == 2)
            .await?;
    assert_eq!(s.len(), 1);
    let owner = s[0].metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        owner.first().map(|o| (o.kind.as_str(), o.controller, o.block_owner_deletion)),
        Some(("Service", Some(true), Some(true)))
    );
    assert!(s[0].metadata.name.as_deref().is_some_and(|n| n.starts_with("my-nginx-")));

    // A deleted pod's IP leaves; a replacement's comes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("my-nginx-1", &DeleteParams::default()).await?;
    endpoints_until(&client, "default", "my-nginx", "the deleted pod to leave", |ep| {
        ep_addresses(ep).0 == [format!("{ip2}:80")].into()
    })
    .await?;
    create::<Pod>(&client, "default", pod_json("my-nginx-3", "node-a", json!({"run": "my-nginx"}), &[("http", 80)]))
        .await?;
    let ip3 = pod_ip(&client, "default", "my-nginx-3").await?;
    endpoints_until(&client, "default", "my-nginx", "the replacement to come", |ep| {
        ep_addresses(ep).0 == [format!("{ip2}:80"), format!("{ip3}:80")].into()
    })
    .await?;
    // A pod relabelled away leaves the Service.
    pods.patch("my-nginx-3", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"run": "other"}}})))
        .await?;
    endpoints_until(&client, "default", "my-nginx", "the relabelled pod to leave", |ep| {
        ep_addresses(ep).0 == [format!("{ip2}:80")].into()
    })
    .await?;
    slices_until(&client, "default", "my-nginx", EPC, "the slice to follow", |s| {
        slice_endpoints(s).keys().cloned().collect::<Vec<_>>() == [ip2.clone()]
    })
    .await?;
    // No pods: the Endpoints stay, with no addresses; kubectl shows <none>.
    pods.delete("my-nginx-2", &DeleteParams::default()).await?;
    endpoints_until(&client, "default", "my-nginx", "no addresses", |ep| ep.subsets.is_none()).await?;
    let out = get_ep()?;
    assert!(out.contains("<none>"), "{out}");
    let s = slices_until(&client, "default", "my-nginx", EPC, "an empty placeholder slice", |s| {
        s.len() == 1 && s[0].endpoints.is_empty()
    })
    .await?;
    assert!(s[0].ports.as_deref().unwrap_or_default().is_empty());
    // The Service goes: so do its Endpoints and slices.
    k.run(&["delete", "svc", "my-nginx"])?.ok()?;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    wait::until(WAIT, "the Endpoints to go", || async { Ok(eps.get_opt("my-nginx").await?.is_none().then_some(())) })
        .await?;
    slices_until(&client, "default", "my-nginx", EPC, "the slices to go", <[EndpointSlice]>::is_empty).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_ports_publish_not_ready_and_hostnames() -> Result<()> {
    let (_api, _ctrl, client) = start(&[]).await?;
    bare_node(&client, "node-a").await?;
    let ns = "default";
    // Named targetPort: two pods with different numbers for "http", one without it.
    create::<Service>(&client, ns, json!({"metadata": {"name": "named"}, "spec": {"selector": {"app": "named"},
        "ports": [{"name": "web", "port": 80, "targetPort": "http"}, {"name": "plain", "port": 81, "targetPort": 7000}]}}))
    .await?;
    create::<Pod>(&client, ns, pod_json("n1", "node-a", json!({"app": "named"}), &[("http", 8080)])).await?;
    create::<Pod>(&client, ns, pod_json("n2", "node-a", json!({"app": "named"}), &[("http", 9090)])).await?;
    create::<Pod>(&client, ns, pod_json("n3", "node-a", json!({"app": "named"}), &[("metrics", 9100)])).await?;
    report(&client, ns, "n1", "10.9.0.1", true).await?;
    report(&client, ns, "n2", "10.9.0.2", true).await?;
    report(&client, ns, "n3", "10.9.0.3", true).await?;
    let ep = endpoints_until(&client, ns, "named", "per-pod port numbers", |ep| {
        ep_addresses(ep).0
            == ["10.9.0.1:7000", "10.9.0.1:8080", "10.9.0.2:7000", "10.9.0.2:9090", "10.9.0.3:7000"]
                .iter()
                .map(|s| s.to_string())
                .collect()
    })
    .await?;
    assert_eq!(ep.subsets.as_ref().map(Vec::len), Some(3), "{:?}", ep.subsets);
    let s =
        slices_until(&client, ns, "named", EPC, "one slice per port set", |s| slice_endpoints(s).len() == 3).await?;
    let mut port_sets: Vec<Vec<i32>> =
        s.iter().map(|s| s.ports.iter().flatten().filter_map(|p| p.port).collect()).collect();
    for p in &mut port_sets {
        p.sort();
    }
    port_sets.sort();
    assert_eq!(port_sets, [vec![7000], vec![7000, 8080], vec![7000, 9090]]);

    // publishNotReadyAddresses: a not-ready pod is published as ready (slices: ready, not serving).
    create::<Service>(
        &client,
        ns,
        json!({"metadata": {"name": "pub"}, "spec": {"selector": {"app": "pub"},
        "publishNotReadyAddresses": true, "ports": [{"port": 80, "targetPort": 8080}]}}),
    )
    .await?;
    create::<Pod>(&client, ns, pod_json("p1", "node-a", json!({"app": "pub"}), &[])).await?;
    report(&client, ns, "p1", "10.9.1.1", false).await?;
    endpoints_until(&client, ns, "pub", "the not-ready pod published", |ep| {
        ep_addresses(ep) == (["10.9.1.1:8080".to_string()].into(), BTreeSet::new())
    })
    .await?;
    let s = slices_until(&client, ns, "pub", EPC, "the slice", |s| slice_endpoints(s).len() == 1).await?;
    let e = slice_endpoints(&s)["10.9.1.1"].clone();
    assert_eq!((e.ready, e.serving, e.terminating), (true, false, false));

    // Hostname: only for pods whose subdomain is the Service's name (a headless Service).
    create::<Service>(
        &client,
        ns,
        json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "None",
        "selector": {"app": "hosts"}, "ports": [{"port": 80}]}}),
    )
    .await?;
    let mut h1 = pod_json("h1", "node-a", json!({"app": "hosts"}), &[]);
    h1["spec"]["hostname"] = json!("alpha");
    h1["spec"]["subdomain"] = json!("web");
    let mut h2 = pod_json("h2", "node-a", json!({"app": "hosts"}), &[]);
    h2["spec"]["hostname"] = json!("beta");
    h2["spec"]["subdomain"] = json!("elsewhere");
    create::<Pod>(&client, ns, h1).await?;
    create::<Pod>(&client, ns, h2).await?;
    report(&client, ns, "h1", "10.9.2.1", true).await?;
    report(&client, ns, "h2", "10.9.2.2", false).await?;
    let ep = endpoints_until(&client, ns, "web", "both pods", |ep| {
        ep_addresses(ep) == (["10.9.2.1:80".to_string()].into(), ["10.9.2.2:80".to_string()].into())
    })
    .await?;
    let hostnames: BTreeMap<String, Option<String>> = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten().chain(s.not_ready_addresses.iter().flatten()))
        .map(|a| (a.ip.clone(), a.hostname.clone()))
        .collect();
    assert_eq!(hostnames, [("10.9.2.1".to_string(), Some("alpha".to_string())), ("10.9.2.2".to_string(), None)].into());
    assert_eq!(
        ep.metadata.labels.as_ref().and_then(|l| l.get("service.kubernetes.io/headless")).map(String::as_str),
        Some("")
    );
    let s = slices_until(&client, ns, "web", EPC, "the slice", |s| slice_endpoints(s).len() == 2).await?;
    assert_eq!(slice_endpoints(&s)["10.9.2.1"].hostname.as_deref(), Some("alpha"));
    assert_eq!(slice_endpoints(&s)["10.9.2.2"].hostname, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectorless_service_keeps_its_endpoints_and_gets_them_mirrored() -> Result<()> {
    let (api, ctrl, client) = start(&["--resync-period", "1s"]).await?;
    let k = api.kubectl();
    k.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: external\nspec:\n  ports:\n  - name: http\n    port: 80\n    \
         targetPort: 9376\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: external\n  labels:\n    team: a\n\
         subsets:\n- addresses:\n  - ip: 192.0.2.42\n  notReadyAddresses:\n  - ip: 192.0.2.43\n  ports:\n  - name: http\n    \
         port: 9376\n",
    )?
    .ok()?;
    let s = slices_until(&client, "default", "external", MIRROR, "a mirrored slice", |s| slice_endpoints(s).len() == 2)
        .await?;
    assert_eq!(s.len(), 1);
    let eps = slice_endpoints(&s);
    assert_eq!((eps["192.0.2.42"].ready, eps["192.0.2.43"].ready), (true, false));
    assert_eq!(eps["192.0.2.42"].ports, [9376]);
    assert_eq!(s[0].metadata.labels.as_ref().and_then(|l| l.get("team")).map(String::as_str), Some("a"));
    let owner = s[0].metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("Endpoints"));
    // The endpoints controller leaves the user's Endpoints alone, across resyncs.
    let eps_api: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let before = eps_api.get("external").await?;
    let reconciles = || ctrl.metric_sum("knet_controllers_reconcile_total", &[("controller", "endpoint-controller")]);
    let r0 = reconciles().await?;
    wait::until(WAIT, "two resyncs", || async { Ok((reconciles().await? >= r0 + 2.0).then_some(())) }).await?;
    let after = eps_api.get("external").await?;
    assert_eq!(before.metadata.resource_version, after.metadata.resource_version);
    assert!(slices(&client, "default", "external", EPC).await?.is_empty());
    // The API server's own default/kubernetes is not mirrored (skip-mirror).
    assert!(slices(&client, "default", "kubernetes", MIRROR).await?.is_empty());
    // The user changes the Endpoints: the mirror follows.
    eps_api
        .patch(
            "external",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"subsets": [{"addresses": [{"ip": "192.0.2.50"}], "ports": [{"name": "http", "port": 9376}]}]}),
            ),
        )
        .await?;
    slices_until(&client, "default", "external", MIRROR, "the mirror to follow", |s| {
        slice_endpoints(s).keys().cloned().collect::<Vec<_>>() == ["192.0.2.50"]
    })
    .await?;
    // skip-mirror: the mirror goes.
    eps_api
        .patch(
            "external",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}})),
        )
        .await?;
    slices_until(&client, "default", "external", MIRROR, "the mirror to go", <[EndpointSlice]>::is_empty).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_flip_is_one_write_of_each_and_resyncs_write_nothing() -> Result<()> {
    let (_api, ctrl, client) = start(&["--resync-period", "1s"]).await?;
    let fake = node(&client, "node-a", "10.244.1.0/24").await?;
    let ns = "default";
    create::<Service>(
        &client,
        ns,
        json!({"metadata": {"name": "flip"}, "spec": {"selector": {"app": "flip"},
        "ports": [{"port": 80, "targetPort": 8080}]}}),
    )
    .await?;
    for i in 0..3 {
        create::<Pod>(&client, ns, pod_json(&format!("flip-{i}"), "node-a", json!({"app": "flip"}), &[])).await?;
    }
    let ip0 = pod_ip(&client, ns, "flip-0").await?;
    endpoints_until(&client, ns, "flip", "three ready pods", |ep| ep_addresses(ep).0.len() == 3).await?;
    slices_until(&client, ns, "flip", EPC, "three ready endpoints", |s| {
        let e = slice_endpoints(s);
        e.len() == 3 && e.values().all(|v| v.ready)
    })
    .await?;
    let ctrl = &ctrl;
    let writes = |resource: &'static str| async move {
        ctrl.metric_sum("knet_controllers_api_writes_total", &[("resource", resource)]).await
    };
    let reconciles =
        || ctrl.metric_sum("knet_controllers_reconcile_total", &[("controller", "endpointslice-controller")]);

    // Nothing changes: resyncs reconcile every Service and write nothing.
    let (e0, s0, r0) = (writes("endpoints").await?, writes("endpointslices").await?, reconciles().await?);
    wait::until(WAIT, "two resyncs", || async { Ok((reconciles().await? >= r0 + 4.0).then_some(())) }).await?;
    assert_eq!((writes("endpoints").await?, writes("endpointslices").await?), (e0, s0), "writes during resyncs");

    // A readiness flip moves the address, with one write of each.
    for ready in [false, true] {
        let (e0, s0) = (writes("endpoints").await?, writes("endpointslices").await?);
        fake.set_pod_ready(ns, "flip-0", ready).await?;
        let addr = format!("{ip0}:8080");
        let ep = endpoints_until(&client, ns, "flip", "the address to move", |ep| {
            let (r, n) = ep_addresses(ep);
            r.contains(&addr) == ready && n.contains(&addr) != ready
        })
        .await?;
        assert_eq!(ep_addresses(&ep).0.len() + ep_addresses(&ep).1.len(), 3);
        slices_until(&client, ns, "flip", EPC, "the slice condition", |s| {
            slice_endpoints(s).get(&ip0).is_some_and(|v| v.ready == ready && v.serving == ready && !v.terminating)
        })
        .await?;
        // Let anything else the change might cause happen, then count.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(writes("endpoints").await? - e0, 1.0, "Endpoints writes for one flip (ready={ready})");
        assert_eq!(writes("endpointslices").await? - s0, 1.0, "EndpointSlice writes for one flip (ready={ready})");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_hold_at_most_100_endpoints() -> Result<()> {
    let (_api, _ctrl, client) = start(&[]).await?;
    bare_node(&client, "node-a").await?;
    let ns = "default";
    create::<Service>(
        &client,
        ns,
        json!({"metadata": {"name": "big"}, "spec": {"selector": {"app": "big"},
        "ports": [{"port": 80, "targetPort": 8080}]}}),
    )
    .await?;
    let mut tasks = Vec::new();
    for worker in 0..6u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..150).step_by(6) {
                let name = format!("big-{i:03}");
                create::<Pod>(&client, ns, pod_json(&name, "node-a", json!({"app": "big"}), &[])).await?;
                report(&client, ns, &name, &format!("10.8.{}.{}", i / 100, i % 100 + 1), true).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    endpoints_until(&client, ns, "big", "150 addresses", |ep| ep_addresses(ep).0.len() == 150).await?;
    let s =
        slices_until(&client, ns, "big", EPC, "150 endpoints in slices", |s| slice_endpoints(s).len() == 150).await?;
    let mut sizes: Vec<usize> = s.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    assert_eq!(s.len(), 2, "{sizes:?}");
    // One pod goes: one slice changes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.delete("big-007", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await?;
    let after = slices_until(&client, ns, "big", EPC, "149 endpoints", |s| slice_endpoints(s).len() == 149).await?;
    let rv = |s: &[EndpointSlice]| -> BTreeSet<(Option<String>, Option<String>)> {
        s.iter().map(|s| (s.metadata.name.clone(), s.metadata.resource_version.clone())).collect()
    };
    assert_eq!(rv(&s).intersection(&rv(&after)).count(), 1, "the other slice is untouched");
    Ok(())
}
