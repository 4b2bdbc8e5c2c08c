//! Repair and cleanup against a real `knet-apiserver` and `knet-controllers` (issue 3, tests 3 and 5):
//! garbage collection by ownerReferences (background, orphan, foreground; Services are not owned), namespace
//! deletion (everything in it goes, pods on live fake nodes and on nodes that no longer exist, a stuck
//! deletion explained by its conditions), a node that stops heartbeating going NotReady and coming back (its
//! pods' addresses not ready in the Service's Endpoints and EndpointSlices meanwhile),
//! leader election between two instances, and kill -9 at any point (during garbage collection, a namespace
//! deletion, scheduling and a Deployment's rollout) converging to the state of an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, EndpointAddress, Endpoints, Namespace, Node, Pod, PodTemplateSpec, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Client, Resource};
use serde_json::json;
use xtests::{wait, ApiServer, Controllers, FakeNode, FakeNodeOptions, WaitFor};

const CONVERGE: Duration = Duration::from_secs(30);

/// Fast timings for every controller these tests run.
const FAST: &[&str] = &["--resync-period", "2s", "--node-monitor-period", "300ms", "--node-monitor-grace-period", "3s"];

async fn start(api: &ApiServer, controllers: &str, extra: &[&str], wait_for: WaitFor) -> Result<Controllers> {
    let mut args = vec!["--controllers", controllers];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    Controllers::start_with(api, &args, wait_for).await
}

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> Result<OwnerReference> {
    let m = owner.meta();
    Ok(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: m.name.clone().context("owner without a name")?,
        uid: m.uid.clone().context("owner without a uid")?,
        controller: Some(block),
        block_owner_deletion: Some(block),
    })
}

async fn configmap(client: &Client, ns: &str, name: &str, owners: Vec<OwnerReference>) -> Result<ConfigMap> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    Api::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .with_context(|| format!("creating configmap {ns}/{name}"))
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns = Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

fn replica_set(ns: &str, name: &str) -> Result<ReplicaSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}}
    }))?)
}

fn pod(ns: &str, name: &str, node: Option<&str>, owners: Vec<OwnerReference>) -> Result<Pod> {
    let mut p: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "agnhost"}]}
    }))?;
    if let Some(n) = node {
        p.spec.get_or_insert_with(Default::default).node_name = Some(n.into());
    }
    if !owners.is_empty() {
        p.metadata.owner_references = Some(owners);
    }
    Ok(p)
}

fn service(ns: &str, name: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}
    }))?)
}

/// Runs kubectl without blocking the test's tasks ([`xtests::Kubectl::stdout_async`]).
async fn kubectl_async(api: &ApiServer, args: &[&str]) -> Result<String> {
    api.kubectl().stdout_async(args).await
}

/// Waits until `api` has no object `name`.
async fn wait_gone<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait::until(CONVERGE, &format!("{name} to be deleted"), || async {
        Ok(match api.get_opt(name).await? {
            None => Some(()),
            Some(_) => None,
        })
    })
    .await
}

fn owner_names(cm: &ConfigMap) -> Vec<String> {
    cm.metadata.owner_references.iter().flatten().map(|r| r.name.clone()).collect()
}

// ---------------------------------------------------------------------------------------------------------
// Garbage collection
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn gc_background_deletes_dependents_but_not_services_or_objects_with_another_owner() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let ns = "default";
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    // A dependent whose owner never existed: found dangling at start-up.
    let ghost = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "never-was".into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        ..Default::default()
    };
    configmap(&client, ns, "bg-orphaned-at-start", vec![ghost]).await?;
    let _ctrl = start(&api, "garbagecollector", &[], WaitFor::Ready).await?;

    let owner = configmap(&client, ns, "bg-owner", vec![]).await?;
    let keeper = configmap(&client, ns, "bg-keeper", vec![]).await?;
    for i in 0..3 {
        configmap(&client, ns, &format!("bg-dep-{i}"), vec![owner_ref(&owner, false)?]).await?;
    }
    configmap(&client, ns, "bg-two-owners", vec![owner_ref(&owner, false)?, owner_ref(&keeper, false)?]).await?;
    // A ReplicaSet object (no replicaset controller runs) owning a pod, with a Service for the same app.
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &replica_set(ns, "bg-rs")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod(ns, "bg-rs-pod", None, vec![owner_ref(&rs, true)?])?).await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    svcs.create(&PostParams::default(), &service(ns, "bg-rs")?).await?;

    wait_gone(&cms, "bg-orphaned-at-start").await?;

    let k = api.kubectl();
    k.run(&["delete", "configmap", "bg-owner", "-n", ns])?.ok()?;
    k.run(&["delete", "replicaset", "bg-rs", "-n", ns])?.ok()?;
    for i in 0..3 {
        wait_gone(&cms, &format!("bg-dep-{i}")).await?;
    }
    wait_gone(&pods, "bg-rs-pod").await?;
    let two = wait::until(CONVERGE, "bg-two-owners to lose its deleted owner", || async {
        let cm = cms.get("bg-two-owners").await?;
        Ok((owner_names(&cm) == ["bg-keeper"]).then_some(cm))
    })
    .await?;
    ensure!(two.metadata.deletion_timestamp.is_none(), "an object with a live owner must stay");
    ensure!(svcs.get_opt("bg-rs").await?.is_some(), "Services are not owned: the Service must stay");
    ensure!(cms.get_opt("bg-keeper").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn gc_orphan_keeps_dependents_and_removes_their_owner_references() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let ns = "default";
    // Pod GC is not part of the garbage collector: without `podgc` a pod on a missing node stays.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod(ns, "or-on-ghost-node", Some("or-ghost-node"), vec![])?).await?;
    let started = Instant::now();
    let _ctrl = start(&api, "garbagecollector", &[], WaitFor::Ready).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let owner = configmap(&client, ns, "or-owner", vec![]).await?;
    for i in 0..3 {
        configmap(&client, ns, &format!("or-dep-{i}"), vec![owner_ref(&owner, true)?]).await?;
    }
    api.kubectl().run(&["delete", "configmap", "or-owner", "-n", ns, "--cascade=orphan"])?.ok()?;
    wait_gone(&cms, "or-owner").await?;
    for i in 0..3 {
        let dep = cms.get(&format!("or-dep-{i}")).await?;
        ensure!(dep.metadata.deletion_timestamp.is_none(), "or-dep-{i} is being deleted");
        ensure!(owner_names(&dep).is_empty(), "or-dep-{i} still has owners {:?}", owner_names(&dep));
    }
    // The orphans stay orphans: nothing deletes them later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(cms.get_opt("or-dep-0").await?.is_some(), "an orphaned dependent was deleted later");
    // Well past pod GC's quarantine (the 3 s grace period, checked every 300 ms).
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(started.elapsed())).await;
    ensure!(pods.get_opt("or-on-ghost-node").await?.is_some(), "the garbage collector alone ran pod GC");
    Ok(())
}

#[tokio::test]
async fn gc_foreground_keeps_the_owner_until_its_blocking_dependents_are_gone() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let _ctrl = start(&api, "garbagecollector", &[], WaitFor::Ready).await?;
    let ns = "default";
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let owner = configmap(&client, ns, "fg-owner", vec![]).await?;
    configmap(&client, ns, "fg-dep", vec![owner_ref(&owner, true)?]).await?;
    let held = configmap(&client, ns, "fg-held", vec![owner_ref(&owner, true)?]).await?;
    // fg-held cannot go until the test removes its finalizer.
    let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    cms.patch("fg-held", &PatchParams::default(), &Patch::Merge(&hold)).await?;
    configmap(&client, ns, "fg-grandchild", vec![owner_ref(&held, true)?]).await?;

    api.kubectl().run(&["delete", "configmap", "fg-owner", "-n", ns, "--cascade=foreground", "--wait=false"])?.ok()?;
    wait_gone(&cms, "fg-dep").await?;
    wait_gone(&cms, "fg-grandchild").await?;
    let waiting = wait::until(CONVERGE, "fg-held to be terminating", || async {
        let cm = cms.get("fg-held").await?;
        Ok(cm.metadata.deletion_timestamp.is_some().then_some(cm))
    })
    .await?;
    ensure!(waiting.metadata.finalizers.iter().flatten().any(|f| f == "example.com/hold"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let owner_now = cms.get("fg-owner").await.context("the owner must wait for its blocking dependents")?;
    ensure!(owner_now.metadata.deletion_timestamp.is_some());
    ensure!(
        owner_now.metadata.finalizers.iter().flatten().any(|f| f == "foregroundDeletion"),
        "owner finalizers: {:?}",
        owner_now.metadata.finalizers
    );
    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("fg-held", &PatchParams::default(), &Patch::Merge(&release)).await?;
    wait_gone(&cms, "fg-held").await?;
    wait_gone(&cms, "fg-owner").await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Namespace deletion
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn namespace_deletion_removes_everything_in_it() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    // Pod GC is its own controller: nothing else finishes a pod on a node that no longer exists.
    let _ctrl = start(&api, "namespace,podgc", &[], WaitFor::Ready).await?;
    let _node = FakeNode::start(client.clone(), "nsdel-node").await?;
    let ns = "nsdel";
    create_namespace(&client, ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod(ns, "on-node", Some("nsdel-node"), vec![])?).await?;
    pods.create(&PostParams::default(), &pod(ns, "unscheduled", None, vec![])?).await?;
    // Bound to a node that does not exist: only pod GC can finish it, after its quarantine.
    pods.create(&PostParams::default(), &pod(ns, "on-ghost-node", Some("ghost-node"), vec![])?).await?;
    Api::<Service>::namespaced(client.clone(), ns).create(&PostParams::default(), &service(ns, "svc")?).await?;
    Api::<ReplicaSet>::namespaced(client.clone(), ns).create(&PostParams::default(), &replica_set(ns, "rs")?).await?;
    for i in 0..5 {
        configmap(&client, ns, &format!("cm-{i}"), vec![]).await?;
    }
    wait::until(CONVERGE, "the fake node to run its pod", || async {
        let p = pods.get("on-node").await?;
        Ok((p.status.and_then(|s| s.phase).as_deref() == Some("Running")).then_some(()))
    })
    .await?;

    let k = api.kubectl();
    k.run(&["delete", "namespace", ns, "--wait=false"])?.ok()?;
    wait::until(CONVERGE, "kubectl get ns to stop listing the namespace", || async {
        let out = k.run(&["get", "ns", "-o", "name"])?.ok()?;
        Ok((!out.stdout.lines().any(|l| l == format!("namespace/{ns}"))).then_some(()))
    })
    .await?;
    ensure!(Api::<Namespace>::all(client.clone()).get_opt(ns).await?.is_none());
    for (what, n) in [
        ("pods", pods.list(&Default::default()).await?.items.len()),
        ("configmaps", Api::<ConfigMap>::namespaced(client.clone(), ns).list(&Default::default()).await?.items.len()),
        ("services", Api::<Service>::namespaced(client.clone(), ns).list(&Default::default()).await?.items.len()),
    ] {
        ensure!(n == 0, "{n} {what} left in the deleted namespace");
    }
    Ok(())
}

#[tokio::test]
async fn a_stuck_namespace_deletion_is_explained_by_its_conditions() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let _ctrl = start(&api, "namespace", &[], WaitFor::Ready).await?;
    let ns = "nsstuck";
    create_namespace(&client, ns).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    configmap(&client, ns, "held", vec![]).await?;
    configmap(&client, ns, "free", vec![]).await?;
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await?;
    let k = api.kubectl();
    k.run(&["delete", "namespace", ns, "--wait=false"])?.ok()?;
    let nss: Api<Namespace> = Api::all(client.clone());
    let conds = wait::until(CONVERGE, "the namespace to report its remaining content", || async {
        let n = nss.get(ns).await?;
        let conds: BTreeMap<String, (String, String, String)> = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.type_, (c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default())))
            .collect();
        Ok((conds.get("NamespaceFinalizersRemaining").is_some_and(|c| c.0 == "True")).then_some(conds))
    })
    .await?;
    ensure!(
        conds["NamespaceContentRemaining"]
            == (
                "True".to_string(),
                "SomeResourcesRemain".to_string(),
                "Some resources are remaining: configmaps. has 1 resource instances".to_string()
            ),
        "{conds:?}"
    );
    ensure!(
        conds["NamespaceFinalizersRemaining"].2
            == "Some finalizers are remaining: example.com/hold in 1 resource instances",
        "{conds:?}"
    );
    ensure!(conds["NamespaceDeletionDiscoveryFailure"].0 == "False", "{conds:?}");
    ensure!(cms.get_opt("free").await?.is_none(), "content without finalizers is deleted at once");
    let describe = k.run(&["describe", "ns", ns])?.ok()?.stdout;
    ensure!(describe.contains("Terminating"), "{describe}");
    ensure!(describe.contains("SomeFinalizerRemain"), "kubectl describe ns must explain the wait:\n{describe}");
    // Releasing the finalizer lets the deletion finish.
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"finalizers": null}}))).await?;
    wait_gone(&nss, ns).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Node lifecycle
// ---------------------------------------------------------------------------------------------------------

fn ready_condition(n: &Node) -> Option<(String, String, String)> {
    let c = n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

fn taint_keys(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

fn pod_ready(p: &Pod) -> Option<bool> {
    let c = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    Some(c.status == "True")
}

/// What kubectl shows of a Service's endpoints: the ready and not-ready addresses of `kubectl get ep -o yaml`,
/// and each address's `conditions.ready` in `kubectl get endpointslices -o yaml`.
#[derive(Debug, PartialEq)]
struct EndpointsView {
    ready: BTreeSet<String>,
    not_ready: BTreeSet<String>,
    slices: BTreeMap<String, Option<bool>>,
}

impl EndpointsView {
    fn new(ready: &[&str], not_ready: &[&str]) -> EndpointsView {
        let set = |ips: &[&str]| ips.iter().map(|ip| ip.to_string()).collect::<BTreeSet<_>>();
        let slices = ready.iter().map(|ip| (ip.to_string(), Some(true)));
        let slices = slices.chain(not_ready.iter().map(|ip| (ip.to_string(), Some(false)))).collect();
        EndpointsView { ready: set(ready), not_ready: set(not_ready), slices }
    }

    async fn read(api: &ApiServer, service: &str) -> Result<EndpointsView> {
        let yaml = kubectl_async(api, &["get", "ep", service, "-o", "yaml"]).await?;
        let ep: Endpoints = serde_yaml::from_str(&yaml).context("parsing kubectl get ep -o yaml")?;
        let ips = |a: &Option<Vec<EndpointAddress>>| a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>();
        let subsets = ep.subsets.unwrap_or_default();
        let ready = subsets.iter().flat_map(|s| ips(&s.addresses)).collect();
        let not_ready = subsets.iter().flat_map(|s| ips(&s.not_ready_addresses)).collect();
        let selector = format!("kubernetes.io/service-name={service}");
        let yaml = kubectl_async(api, &["get", "endpointslices", "-l", &selector, "-o", "yaml"]).await?;
        let list: serde_yaml::Value = serde_yaml::from_str(&yaml).context("parsing kubectl get endpointslices")?;
        let mut slices = BTreeMap::new();
        for item in list["items"].as_sequence().into_iter().flatten() {
            let slice: EndpointSlice = serde_yaml::from_value(item.clone()).context("parsing an EndpointSlice")?;
            for e in slice.endpoints {
                let ready = e.conditions.as_ref().and_then(|c| c.ready);
                slices.extend(e.addresses.into_iter().map(|ip| (ip, ready)));
            }
        }
        Ok(EndpointsView { ready, not_ready, slices })
    }
}

/// Waits until kubectl shows `want` for `service`'s endpoints.
async fn wait_endpoints(api: &ApiServer, service: &str, want: EndpointsView) -> Result<()> {
    wait::until(CONVERGE, &format!("the endpoints of {service} to be {want:?}"), || async {
        let seen = EndpointsView::read(api, service).await?;
        ensure!(seen == want, "{seen:?}");
        Ok(Some(()))
    })
    .await
}

fn pod_ip(p: &Pod) -> Result<String> {
    let name = p.metadata.name.as_deref().unwrap_or_default();
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).with_context(|| format!("pod {name} has no IP"))
}

#[tokio::test]
async fn a_silent_node_goes_not_ready_with_its_pods_and_comes_back() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let _ctrl = start(&api, "nodelifecycle,endpoint,endpointslice", &[], WaitFor::Ready).await?;
    // No node IPAM here: each fake node hands out addresses from its own fallback pod CIDR.
    let a = FakeNode::start(client.clone(), "nl-a").await?;
    let b_options = FakeNodeOptions { fallback_pod_cidr: (Ipv4Addr::new(10, 251, 0, 0), 24), ..Default::default() };
    let _b = FakeNode::start_with(client.clone(), "nl-b", b_options).await?;
    let ns = "default";
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    // A Service over a pod on each node (both labelled app=nl-pod).
    pods.create(&PostParams::default(), &pod(ns, "nl-pod", Some("nl-a"), vec![])?).await?;
    let mut on_b = pod(ns, "nl-pod-b", Some("nl-b"), vec![])?;
    on_b.metadata.labels = Some([("app".to_string(), "nl-pod".to_string())].into());
    pods.create(&PostParams::default(), &on_b).await?;
    Api::<Service>::namespaced(client.clone(), ns).create(&PostParams::default(), &service(ns, "nl-pod")?).await?;
    let (ip_a, ip_b) = wait::until(CONVERGE, "nl-pod and nl-pod-b to be ready", || async {
        let (a, b) = (pods.get("nl-pod").await?, pods.get("nl-pod-b").await?);
        let ready = pod_ready(&a) == Some(true) && pod_ready(&b) == Some(true);
        Ok(if ready { Some((pod_ip(&a)?, pod_ip(&b)?)) } else { None })
    })
    .await?;
    ensure!(ip_a != ip_b, "both pods got {ip_a}");
    wait_endpoints(&api, "nl-pod", EndpointsView::new(&[&ip_a, &ip_b], &[])).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    // Healthy nodes are left alone.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for n in ["nl-a", "nl-b"] {
        let node = nodes.get(n).await?;
        ensure!(ready_condition(&node).map(|c| c.0).as_deref() == Some("True"), "{n} should stay Ready");
        ensure!(taint_keys(&node).is_empty(), "{n} has taints {:?}", taint_keys(&node));
    }

    let paused = Instant::now();
    a.pause_heartbeat();
    let node = wait::until(CONVERGE, "nl-a to become NotReady (Unknown)", || async {
        let n = nodes.get("nl-a").await?;
        Ok((ready_condition(&n).map(|c| c.0).as_deref() == Some("Unknown")).then_some(n))
    })
    .await?;
    // The grace period (3 s) runs from the last lease renewal, which was at most 1 s before the pause.
    ensure!(paused.elapsed() >= Duration::from_secs(2), "marked before the grace period: {:?}", paused.elapsed());
    ensure!(
        ready_condition(&node)
            == Some(("Unknown".into(), "NodeStatusUnknown".into(), "Kubelet stopped posting node status.".into()))
    );
    let taints = wait::until(CONVERGE, "nl-a to be tainted unreachable", || async {
        let t = taint_keys(&nodes.get("nl-a").await?);
        Ok((t.len() == 2).then_some(t))
    })
    .await?;
    ensure!(
        taints == ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"],
        "{taints:?}"
    );
    wait::until(CONVERGE, "nl-pod to be marked not ready", || async {
        Ok(pod_ready(&pods.get("nl-pod").await?).filter(|r| !*r))
    })
    .await?;
    let b = nodes.get("nl-b").await?;
    ensure!(ready_condition(&b).map(|c| c.0).as_deref() == Some("True") && taint_keys(&b).is_empty());
    // The silent node's pod leaves the Service's ready addresses; the other node's stays.
    wait_endpoints(&api, "nl-pod", EndpointsView::new(&[&ip_b], &[&ip_a])).await?;
    // What `kubectl describe` shows: the node's status change and the pod marked not ready.
    let events: Api<Event> = Api::all(client.clone());
    for (kind, name, type_, note) in [
        ("Node", "nl-a", "Normal", "Node nl-a status is now: NodeNotReady"),
        ("Pod", "nl-pod", "Warning", "Node is not ready"),
    ] {
        wait::until(CONVERGE, &format!("a NodeNotReady event about {kind} {name}"), || async {
            let found = events.list(&Default::default()).await?.items.into_iter().any(|e| {
                let about = e.regarding.as_ref();
                e.reason.as_deref() == Some("NodeNotReady")
                    && about.and_then(|r| r.kind.as_deref()) == Some(kind)
                    && about.and_then(|r| r.name.as_deref()) == Some(name)
                    && e.type_.as_deref() == Some(type_)
                    && e.note.as_deref() == Some(note)
            });
            Ok(found.then_some(()))
        })
        .await?;
    }

    a.resume_heartbeat();
    wait::until(CONVERGE, "nl-a to be Ready and untainted again", || async {
        let n = nodes.get("nl-a").await?;
        let ready = ready_condition(&n).map(|c| c.0).as_deref() == Some("True");
        Ok((ready && taint_keys(&n).is_empty()).then_some(()))
    })
    .await?;
    // The fake kubelet reports its pods again on their next change; a real kubelet's status loop would.
    a.set_pod_ready(ns, "nl-pod", true).await?;
    wait::until(CONVERGE, "nl-pod to be ready again", || async {
        Ok(pod_ready(&pods.get("nl-pod").await?).filter(|r| *r))
    })
    .await?;
    wait_endpoints(&api, "nl-pod", EndpointsView::new(&[&ip_a, &ip_b], &[])).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(pod_ready(&pods.get("nl-pod").await?) == Some(true), "the controller must not fight a ready node's pods");
    Ok(())
}

#[tokio::test]
async fn when_every_node_is_silent_no_noexecute_taints_are_added() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let _ctrl = start(&api, "nodelifecycle", &[], WaitFor::Ready).await?;
    let a = FakeNode::start(client.clone(), "solo").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    a.pause_heartbeat();
    wait::until(CONVERGE, "solo to be tainted unreachable:NoSchedule", || async {
        let t = taint_keys(&nodes.get("solo").await?);
        Ok((!t.is_empty()).then_some(t))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = taint_keys(&nodes.get("solo").await?);
    ensure!(t == ["node.kubernetes.io/unreachable:NoSchedule"], "full disruption: no NoExecute taint, got {t:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Leader election and restarts
// ---------------------------------------------------------------------------------------------------------

async fn leader(c: &Controllers) -> Result<f64> {
    c.metric_sum("knet_controllers_leader", &[]).await
}

async fn writes(c: &Controllers) -> Result<f64> {
    c.metric_sum("knet_controllers_api_writes_total", &[]).await
}

/// An owner with `n` dependents, then the owner deleted in the background; returns the dependents' names.
async fn owned_work(client: &Client, prefix: &str, n: usize) -> Result<Vec<String>> {
    let owner = configmap(client, "default", &format!("{prefix}-owner"), vec![]).await?;
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-dep-{i}");
        configmap(client, "default", &name, vec![owner_ref(&owner, false)?]).await?;
        names.push(name);
    }
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    Api::<ConfigMap>::namespaced(client.clone(), "default").delete(&format!("{prefix}-owner"), &dp).await?;
    Ok(names)
}

async fn all_gone(client: &Client, names: &[String]) -> Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in names {
        wait_gone(&cms, n).await?;
    }
    Ok(())
}

#[tokio::test]
async fn two_instances_never_both_act_and_the_standby_takes_over() -> Result<()> {
    let api = ApiServer::start().await?;
    let client = api.client().await?;
    let set = "garbagecollector,namespace,nodelifecycle";
    let mut a = start(&api, set, &["--identity", "ha-a"], WaitFor::Ready).await?;
    let mut b = start(&api, set, &["--identity", "ha-b"], WaitFor::Healthy).await?;
    let _node = FakeNode::start(client.clone(), "ha-node").await?;
    let names = owned_work(&client, "ha1", 5).await?;
    all_gone(&client, &names).await?;
    ensure!(leader(&a).await? == 1.0, "a must lead");
    ensure!(leader(&b).await? == 0.0, "b must stand by");
    ensure!(writes(&a).await? > 0.0, "the leader did the work");
    ensure!(writes(&b).await? == 0.0, "the standby wrote to the API: {}", b.metrics().await?);

    // The leader crashes: the standby takes over after the lease (4 s) expires, and works.
    let crashed = Instant::now();
    a.kill9();
    wait::until(Duration::from_secs(15), "b to lead", || async { Ok((leader(&b).await? == 1.0).then_some(())) })
        .await?;
    let took = crashed.elapsed();
    ensure!(took < Duration::from_secs(10), "takeover took {took:?}");
    let names = owned_work(&client, "ha2", 5).await?;
    all_gone(&client, &names).await?;

    // a comes back as a standby; b stops cleanly and releases the lease: a leads at once.
    a.restart(WaitFor::Healthy).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(leader(&a).await? == 0.0, "a must not lead while b holds the lease");
    let stopped = Instant::now();
    b.stop().await?;
    wait::until(Duration::from_secs(15), "a to lead", || async { Ok((leader(&a).await? == 1.0).then_some(())) })
        .await?;
    let took = stopped.elapsed();
    ensure!(took < Duration::from_secs(3), "a released lease should be taken at once, took {took:?}");
    let names = owned_work(&client, "ha3", 5).await?;
    all_gone(&client, &names).await?;
    Ok(())
}

/// The Deployment the convergence scenario creates and then rolls to a new image.
const CONV_DEPLOY: &str = "conv-web";
const CONV_REPLICAS: i32 = 10;

/// What the tests compare between runs: every ConfigMap in `default` and `conv-*` namespaces with its
/// owners and finalizers, the namespaces, pods, each node's Ready status and taints, and the rolled
/// Deployment with its ReplicaSets (names carry the template hash, so they match between runs) and how many
/// pods each owns.
async fn snapshot(client: &Client) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for d in Api::<Deployment>::namespaced(client.clone(), "default").list(&Default::default()).await?.items {
        if d.metadata.name.as_deref() == Some(CONV_DEPLOY) {
            out.insert(format!("deploy/{CONV_DEPLOY}"), deployment_summary(&d));
        }
    }
    let app = format!("app={CONV_DEPLOY}");
    for rs in Api::<ReplicaSet>::namespaced(client.clone(), "default").list(&ListParams::default().labels(&app)).await?
    {
        let status = rs.status.clone().unwrap_or_default();
        out.insert(
            format!("rs/{}", rs.metadata.name.clone().unwrap_or_default()),
            format!(
                "revision={} image={} replicas={} ready={} available={}",
                annotation(&rs.metadata, REVISION),
                rs.spec.as_ref().and_then(|s| s.template.as_ref()).map(template_image).unwrap_or_default(),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                status.ready_replicas.unwrap_or(0),
                status.available_replicas.unwrap_or(0),
            ),
        );
    }
    for ns in Api::<Namespace>::all(client.clone()).list(&Default::default()).await?.items {
        let name = ns.metadata.name.clone().unwrap_or_default();
        if name.starts_with("conv") {
            out.insert(format!("ns/{name}"), ns.status.and_then(|s| s.phase).unwrap_or_default());
        }
    }
    for cm in Api::<ConfigMap>::all(client.clone()).list(&Default::default()).await?.items {
        let ns = cm.metadata.namespace.clone().unwrap_or_default();
        let name = cm.metadata.name.clone().unwrap_or_default();
        if !name.starts_with("conv") {
            continue;
        }
        let owners = owner_names(&cm).join(",");
        let fin = cm.metadata.finalizers.clone().unwrap_or_default().join(",");
        out.insert(
            format!("cm/{ns}/{name}"),
            format!("owners={owners} finalizers={fin} deleting={}", cm.metadata.deletion_timestamp.is_some()),
        );
    }
    let mut owned: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for p in Api::<Pod>::all(client.clone()).list(&Default::default()).await?.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if labels.get("app").map(String::as_str) == Some(CONV_DEPLOY) {
            // Pod names are random: count the live and terminating pods of each controlling ReplicaSet.
            let owner = p.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
            let counts = owned.entry(owner.map_or("<none>".to_string(), |r| r.name.clone())).or_default();
            if p.metadata.deletion_timestamp.is_none() {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        } else if name.starts_with("conv-sched") {
            // Which node the scheduler picks may differ between runs; that it binds must not.
            let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
            out.insert(format!("pod/{name}"), format!("bound={bound}"));
        } else if name.starts_with("conv") {
            out.insert(format!("pod/{name}"), format!("ready={:?}", pod_ready(&p)));
        }
    }
    for (rs, (live, terminating)) in owned {
        out.insert(format!("rs-pods/{rs}"), format!("live={live} terminating={terminating}"));
    }
    for n in Api::<Node>::all(client.clone()).list(&Default::default()).await?.items {
        let ready = ready_condition(&n).map(|c| c.0).unwrap_or_default();
        let cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some();
        out.insert(
            format!("node/{}", n.metadata.name.clone().unwrap_or_default()),
            format!("{ready} {:?} podCIDR={cidr}", taint_keys(&n)),
        );
    }
    Ok(out)
}

const REVISION: &str = "deployment.kubernetes.io/revision";

fn annotation(meta: &ObjectMeta, key: &str) -> String {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned().unwrap_or_default()
}

fn template_image(t: &PodTemplateSpec) -> String {
    t.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default()
}

/// The Deployment's generation, revision, status counts and conditions, in one line.
fn deployment_summary(d: &Deployment) -> String {
    let status = d.status.clone().unwrap_or_default();
    let condition = |t: &str| {
        let c = status.conditions.iter().flatten().find(|c| c.type_ == t);
        c.map(|c| format!("{}/{}", c.status, c.reason.clone().unwrap_or_default())).unwrap_or_default()
    };
    format!(
        "generation={} observed={} revision={} replicas={} updated={} ready={} available={} Available={} \
         Progressing={}",
        d.metadata.generation.unwrap_or(0),
        status.observed_generation.unwrap_or(0),
        annotation(&d.metadata, REVISION),
        status.replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
        condition("Available"),
        condition("Progressing"),
    )
}

/// The summary of a Deployment of `CONV_REPLICAS` whose rollout of `generation` (and `revision`) is complete.
fn rolled_out(generation: i64, revision: u32) -> String {
    let n = CONV_REPLICAS;
    format!(
        "generation={generation} observed={generation} revision={revision} replicas={n} updated={n} ready={n} \
         available={n} Available=True/MinimumReplicasAvailable Progressing=True/NewReplicaSetAvailable"
    )
}

/// `CONV_REPLICAS` replicas pinned to `node` by a nodeSelector (so the scheduler places them alike in every run).
fn conv_deployment(node: &str) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": CONV_DEPLOY, "namespace": "default"},
        "spec": {"replicas": CONV_REPLICAS, "selector": {"matchLabels": {"app": CONV_DEPLOY}},
                 "template": {"metadata": {"labels": {"app": CONV_DEPLOY}},
                              "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                                       "containers": [{"name": "c", "image": "nginx:1.25"}]}}}
    }))?)
}

/// Garbage collection (background, orphan, foreground), a namespace deletion, pods to schedule, node pod
/// CIDRs, a Deployment created and then rolled to a new image, and a node going silent, all at once.
async fn converge_scenario(api: &ApiServer, client: &Client) -> Result<(FakeNode, FakeNode)> {
    let live = FakeNode::start(client.clone(), "conv-live").await?;
    let silent = FakeNode::start(client.clone(), "conv-silent").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments.create(&PostParams::default(), &conv_deployment("conv-live")?).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let bg = configmap(client, "default", "conv-bg", vec![]).await?;
    let orphan = configmap(client, "default", "conv-orphan", vec![]).await?;
    let fg = configmap(client, "default", "conv-fg", vec![]).await?;
    for i in 0..20 {
        configmap(client, "default", &format!("conv-bg-{i}"), vec![owner_ref(&bg, false)?]).await?;
        configmap(client, "default", &format!("conv-or-{i}"), vec![owner_ref(&orphan, true)?]).await?;
        configmap(client, "default", &format!("conv-fg-{i}"), vec![owner_ref(&fg, true)?]).await?;
    }
    create_namespace(client, "conv-ns").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "conv-ns");
    for i in 0..5 {
        configmap(client, "conv-ns", &format!("conv-in-ns-{i}"), vec![]).await?;
    }
    // Few pods: the fake node reports new pods one at a time, each after waiting for a pod CIDR.
    for i in 0..2 {
        pods.create(&PostParams::default(), &pod("conv-ns", &format!("conv-ns-pod-{i}"), Some("conv-live"), vec![])?)
            .await?;
    }
    let dpods: Api<Pod> = Api::namespaced(client.clone(), "default");
    dpods.create(&PostParams::default(), &pod("default", "conv-silent-pod", Some("conv-silent"), vec![])?).await?;
    wait::until(CONVERGE, "conv-silent-pod to be ready", || async {
        Ok(pod_ready(&dpods.get("conv-silent-pod").await?).filter(|r| *r))
    })
    .await?;
    wait::until(CONVERGE, "the conv-ns pods to run", || async {
        let l = pods.list(&Default::default()).await?;
        Ok(l.items.iter().all(|p| pod_ready(p) == Some(true)).then_some(()))
    })
    .await?;
    // The first rollout completes (so both runs have its ReplicaSet), then a new image starts the second.
    let first = rolled_out(1, 1);
    wait::until(Duration::from_secs(60), "the first rollout of conv-web", || async {
        Ok((deployment_summary(&deployments.get(CONV_DEPLOY).await?) == first).then_some(()))
    })
    .await?;

    // Pending pods for the scheduler.
    for i in 0..6 {
        dpods.create(&PostParams::default(), &pod("default", &format!("conv-sched-{i}"), None, vec![])?).await?;
    }
    let dp = |p| DeleteParams { propagation_policy: Some(p), ..Default::default() };
    cms.delete("conv-bg", &dp(PropagationPolicy::Background)).await?;
    cms.delete("conv-orphan", &dp(PropagationPolicy::Orphan)).await?;
    cms.delete("conv-fg", &dp(PropagationPolicy::Foreground)).await?;
    api.kubectl().run(&["delete", "namespace", "conv-ns", "--wait=false"])?.ok()?;
    silent.pause_heartbeat();
    kubectl_async(api, &["set", "image", &format!("deployment/{CONV_DEPLOY}"), "c=nginx:1.26"]).await?;
    Ok((live, silent))
}

/// The state the scenario must end in (what an uninterrupted run reaches).
async fn converged(client: &Client) -> Result<BTreeMap<String, String>> {
    // The second rollout is complete: one ReplicaSet per template, only the new one owns pods, none left over.
    let rolled = rolled_out(2, 2);
    let all_live = format!("live={CONV_REPLICAS} terminating=0");
    wait::until(Duration::from_secs(60), "the scenario to converge", || async {
        let s = snapshot(client).await?;
        let done = !s.keys().any(|k| k.starts_with("cm/default/conv-bg") || k.starts_with("cm/default/conv-fg"))
            && !s.contains_key("cm/default/conv-orphan")
            && !s.keys().any(|k| k.starts_with("ns/") || k.starts_with("cm/conv-ns/") || k.starts_with("pod/conv-ns"))
            && s.get("node/conv-silent").is_some_and(|v| v.starts_with("Unknown") && v.contains("NoExecute"))
            && s.get("pod/conv-silent-pod").is_some_and(|v| v == "ready=Some(false)")
            && (0..6).all(|i| s.get(&format!("pod/conv-sched-{i}")).is_some_and(|v| v == "bound=true"))
            && s.iter().filter(|(k, _)| k.starts_with("node/")).all(|(_, v)| v.ends_with("podCIDR=true"))
            && (0..20).all(|i| s.get(&format!("cm/default/conv-or-{i}")).is_some_and(|v| v.starts_with("owners= ")))
            && s.get(&format!("deploy/{CONV_DEPLOY}")) == Some(&rolled)
            && s.keys().filter(|k| k.starts_with("rs/")).count() == 2
            && s.iter().filter(|(k, _)| k.starts_with("rs-pods/")).map(|(_, v)| v.as_str()).eq([all_live.as_str()]);
        Ok(done.then_some(s))
    })
    .await
}

#[tokio::test]
async fn kill9_at_any_point_converges_to_the_state_of_an_uninterrupted_run() -> Result<()> {
    let set = "garbagecollector,podgc,namespace,nodelifecycle,scheduler,nodeipam,deployment,replicaset";
    // The reference: an uninterrupted run.
    let api1 = ApiServer::start().await?;
    let c1 = api1.client().await?;
    let _ctrl1 = start(&api1, set, &["--identity", "ref"], WaitFor::Ready).await?;
    let _nodes1 = converge_scenario(&api1, &c1).await?;
    let reference = converged(&c1).await?;

    // The same work while the controllers are killed -9 again and again.
    let api2 = ApiServer::start().await?;
    let c2 = api2.client().await?;
    let mut ctrl2 = start(&api2, set, &["--identity", "crashy"], WaitFor::Ready).await?;
    let nodes2 = converge_scenario(&api2, &c2);
    tokio::pin!(nodes2);
    let mut kills = 0;
    let nodes2 = loop {
        tokio::select! {
            r = &mut nodes2 => break r?,
            _ = tokio::time::sleep(Duration::from_millis(700)) => {
                ctrl2.kill9();
                kills += 1;
                ctrl2.restart(WaitFor::Healthy).await?;
            }
        }
    };
    // The scenario ends with `kubectl set image`: these kills land while the rollout is under way.
    let deployments: Api<Deployment> = Api::namespaced(c2.clone(), "default");
    let mut mid_rollout = 0;
    for delay in [200u64, 500, 900, 300, 1200] {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if deployment_summary(&deployments.get(CONV_DEPLOY).await?) != rolled_out(2, 2) {
            mid_rollout += 1;
        }
        ctrl2.kill9();
        kills += 1;
        ctrl2.restart(WaitFor::Healthy).await?;
    }
    let after = converged(&c2).await?;
    drop(nodes2);
    ensure!(kills >= 5);
    ensure!(mid_rollout >= 1, "the second rollout finished before the first kill: the test must kill sooner");
    ensure!(
        after == reference,
        "state after {kills} crashes differs from the uninterrupted run:\n{after:#?}\nvs\n{reference:#?}"
    );
    Ok(())
}
