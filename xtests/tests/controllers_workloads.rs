//! Issue 3, workloads: Deployments → ReplicaSets → Pods and ReplicationControllers, through the real kubectl
//! against knet-apiserver and `knet-controllers --controllers deployment,replicaset,replicationcontroller`,
//! with fake nodes reporting pods Ready (pod templates name their node, as there is no scheduler here).
//!
//! Covered: rollout, `kubectl get deploy` columns, scale up/down/to zero, a deleted pod replaced, rolling
//! update fenceposts sampled from a pod watch, Recreate, pause/resume, rollout undo and restart, the progress
//! deadline, revision history cleanup, the seed 000 ReplicationController, orphan adoption and release, and
//! no API writes when nothing changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, NodeSpec, Pod};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use xtests::{wait, ApiServer, Controllers, FakeNode, FakeNodeOptions, Kubectl, WaitFor};

const WORKLOADS: &[&str] = &["--controllers", "deployment,replicaset,replicationcontroller", "--resync-period", "2s"];
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs kubectl without blocking the test's tasks ([`Kubectl::stdout_async`]).
async fn kc(k: &Kubectl, args: &[&str]) -> Result<String> {
    k.stdout_async(args).await
}

async fn apply(k: &Kubectl, yaml: &str) -> Result<String> {
    let k = k.clone();
    let yaml = yaml.to_string();
    tokio::task::spawn_blocking(move || Ok(k.apply_yaml(&yaml)?.ok()?.stdout)).await.context("kubectl thread")?
}

/// A Node with a pod CIDR (so the fake node hands out addresses at once) and its fake agent.
async fn node(client: &Client, name: &str, cidr: &str) -> Result<FakeNode> {
    let nodes: Api<Node> = Api::all(client.clone());
    let n = Node {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(NodeSpec { pod_cidr: Some(cidr.into()), pod_cidrs: Some(vec![cidr.into()]), ..Default::default() }),
        status: None,
    };
    nodes.create(&PostParams::default(), &n).await.with_context(|| format!("creating node {name}"))?;
    FakeNode::start(client.clone(), name).await
}

struct Cluster {
    api: ApiServer,
    ctrl: Controllers,
    client: Client,
    _nodes: Vec<FakeNode>,
}

async fn cluster() -> Result<Cluster> {
    let api = ApiServer::start().await?;
    let ctrl = Controllers::start_with(&api, WORKLOADS, WaitFor::Ready).await?;
    let client = api.client().await?;
    let a = node(&client, "node-a", "10.244.1.0/24").await?;
    let b = node(&client, "node-b", "10.244.2.0/24").await?;
    Ok(Cluster { api, ctrl, client, _nodes: vec![a, b] })
}

fn deployment_yaml(name: &str, replicas: i32, image: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  strategy:
{strategy}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      nodeName: node-a
      containers:
      - name: c
        image: {image}
        ports:
        - containerPort: 80
"
    )
}

const ROLLING_1_1: &str = "    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 1";
const RECREATE: &str = "    type: Recreate";

async fn rollout_status(k: &Kubectl, name: &str) -> Result<()> {
    let out = kc(k, &["rollout", "status", &format!("deployment/{name}"), "--timeout=60s"]).await?;
    if !out.contains("successfully rolled out") {
        bail!("rollout status: {out}");
    }
    Ok(())
}

/// The pods with `app=<app>` that are not being deleted.
async fn live_pods(client: &Client, app: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await?;
    Ok(list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect())
}

async fn replica_sets(client: &Client, app: &str) -> Result<Vec<ReplicaSet>> {
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    Ok(rss.list(&ListParams::default().labels(&format!("app={app}"))).await?.items)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn size(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// "<what>: <pod name>" for each pod, as the ReplicaSet controller's events say it.
fn pod_messages(what: &str, pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| format!("{what}: {}", p.metadata.name.as_deref().unwrap_or(""))).collect()
}

/// Waits until `kubectl describe <what>` lists an event with each of `messages` (events are written in the
/// background, so the last ones may show a moment later).
async fn describe_shows(k: &Kubectl, what: &[&str], messages: &[String]) -> Result<()> {
    let args: Vec<&str> = std::iter::once("describe").chain(what.iter().copied()).collect();
    wait::until(TIMEOUT, &format!("describe {what:?} to show {messages:?}"), || async {
        let out = kc(k, &args).await?;
        match messages.iter().find(|m| !out.contains(m.as_str())) {
            None => Ok(Some(())),
            Some(m) => bail!("no {m:?} in\n{out}"),
        }
    })
    .await
}

/// Waits until exactly `n` live pods of `app` exist and all are ready.
async fn ready_pods(client: &Client, app: &str, n: usize) -> Result<Vec<Pod>> {
    wait::until(TIMEOUT, &format!("{n} ready pods of {app}"), || async {
        let pods = live_pods(client, app).await?;
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        if pods.len() == n && ready == n {
            Ok(Some(pods))
        } else {
            bail!("{} pods, {ready} ready", pods.len())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_scales_and_replaces_pods() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(&k, &deployment_yaml("web", 2, "nginx:1.25", ROLLING_1_1)).await?;
    rollout_status(&k, "web").await?;
    let pods = ready_pods(&c.client, "web", 2).await?;

    // One ReplicaSet <deployment>-<pod-template-hash>, owning the pods, with upstream's annotations.
    let rss = replica_sets(&c.client, "web").await?;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).context("no hash label")?;
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    let sel = rs.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    assert_eq!(sel.get("pod-template-hash"), Some(hash));
    assert_eq!(annotation(&rs.metadata, "deployment.kubernetes.io/revision"), Some("1"));
    assert_eq!(annotation(&rs.metadata, "deployment.kubernetes.io/desired-replicas"), Some("2"));
    assert_eq!(annotation(&rs.metadata, "deployment.kubernetes.io/max-replicas"), Some("3"));
    let owner = rs.metadata.owner_references.as_ref().and_then(|o| o.first()).context("no owner")?;
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Deployment", "web", Some(true)));
    for p in &pods {
        let r = p.metadata.owner_references.as_ref().and_then(|o| o.first()).context("pod without owner")?;
        assert_eq!((r.kind.as_str(), r.controller, r.block_owner_deletion), ("ReplicaSet", Some(true), Some(true)));
        assert_eq!(Some(&r.name), rs.metadata.name.as_ref());
        assert!(p.metadata.name.as_deref().unwrap_or("").starts_with(&format!("web-{hash}-")));
        assert_eq!(p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")), Some(hash));
    }

    // kubectl get deploy / rs columns and the revision on the Deployment.
    let out = kc(&k, &["get", "deploy", "web", "--no-headers"]).await?;
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "2/2", "2", "2"], "{out}");
    let out = kc(&k, &["get", "rs", "--no-headers"]).await?;
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&cols[1..4], ["2", "2", "2"], "{out}");
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let d = deployments.get("web").await?;
    assert_eq!(annotation(&d.metadata, "deployment.kubernetes.io/revision"), Some("1"));
    let conds: BTreeMap<String, (String, String)> = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, (c.status, c.reason.unwrap_or_default())))
        .collect();
    assert_eq!(conds.get("Available"), Some(&("True".into(), "MinimumReplicasAvailable".into())));
    assert_eq!(conds.get("Progressing"), Some(&("True".into(), "NewReplicaSetAvailable".into())));
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    describe_shows(&k, &["deploy", "web"], &[format!("Scaled up replica set {rs_name} from 0 to 2")]).await?;
    // Events with different messages are not grouped: every pod's creation has its own line.
    describe_shows(&k, &["rs", &rs_name], &pod_messages("Created pod", &pods)).await?;

    // Scale up, delete a pod, scale to zero.
    kc(&k, &["scale", "deployment/web", "--replicas=4"]).await?;
    rollout_status(&k, "web").await?;
    let pods = ready_pods(&c.client, "web", 4).await?;
    let victim = pods[0].metadata.name.clone().unwrap_or_default();
    kc(&k, &["delete", "pod", &victim, "--wait=true"]).await?;
    let pods = ready_pods(&c.client, "web", 4).await?;
    assert!(pods.iter().all(|p| p.metadata.name.as_deref() != Some(victim.as_str())));
    let out = kc(&k, &["get", "deploy", "web", "--no-headers"]).await?;
    assert!(out.split_whitespace().collect::<Vec<_>>()[1..4] == ["4/4", "4", "4"], "{out}");
    let scaled = [
        format!("Scaled up replica set {rs_name} from 0 to 2"),
        format!("Scaled up replica set {rs_name} from 2 to 4"),
    ];
    describe_shows(&k, &["deploy", "web"], &scaled).await?;
    describe_shows(&k, &["rs", &rs_name], &pod_messages("Created pod", &pods)).await?;
    kc(&k, &["scale", "deployment/web", "--replicas=0"]).await?;
    ready_pods(&c.client, "web", 0).await?;
    describe_shows(&k, &["deploy", "web"], &[format!("Scaled down replica set {rs_name} from 4 to 0")]).await?;
    describe_shows(&k, &["rs", &rs_name], &pod_messages("Deleted pod", &pods)).await?;
    rollout_status(&k, "web").await?;
    assert_eq!(replica_sets(&c.client, "web").await?.len(), 1, "scaling makes no new ReplicaSet");
    Ok(())
}

/// What the pod watch saw during a rollout.
#[derive(Debug, Default)]
struct Samples {
    /// Live (not deleting) pods by name: (ready, pod-template-hash).
    pods: HashMap<String, (bool, String)>,
    armed: bool,
    min_ready: usize,
    max_live: usize,
    /// Whether pods of two templates were ever live at once.
    mixed: bool,
}

impl Samples {
    fn observe(&mut self) {
        if !self.armed {
            return;
        }
        let ready = self.pods.values().filter(|(r, _)| *r).count();
        self.min_ready = self.min_ready.min(ready);
        self.max_live = self.max_live.max(self.pods.len());
        let hashes: BTreeSet<&String> = self.pods.values().map(|(_, h)| h).collect();
        self.mixed |= hashes.len() > 1;
    }

    fn apply(&mut self, p: &Pod, gone: bool) {
        let name = p.metadata.name.clone().unwrap_or_default();
        let dead = matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
        if gone || dead || p.metadata.deletion_timestamp.is_some() {
            self.pods.remove(&name);
        } else {
            let hash = p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).cloned().unwrap_or_default();
            self.pods.insert(name, (is_ready(p), hash));
        }
        self.observe();
    }
}

/// Watches the pods of `app`, recording every state in order.
fn sample_pods(client: &Client, app: &str) -> (Arc<Mutex<Samples>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Samples { min_ready: usize::MAX, ..Default::default() }));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let s = samples.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher::watcher(pods, cfg).boxed();
        while let Some(ev) = stream.next().await {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => s.apply(&p, false),
                Ok(watcher::Event::Delete(p)) => s.apply(&p, true),
                _ => {}
            }
        }
    });
    (samples, task)
}

fn arm(samples: &Arc<Mutex<Samples>>) {
    let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
    s.armed = true;
    s.observe();
}

fn take(samples: &Arc<Mutex<Samples>>) -> (usize, usize, bool) {
    let s = samples.lock().unwrap_or_else(|e| e.into_inner());
    (s.min_ready, s.max_live, s.mixed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_keeps_fenceposts_and_undo_restores_the_template() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(&k, &deployment_yaml("roll", 4, "nginx:1.25", ROLLING_1_1)).await?;
    rollout_status(&k, "roll").await?;
    ready_pods(&c.client, "roll", 4).await?;
    let first = replica_sets(&c.client, "roll").await?;
    let first_name = first[0].metadata.name.clone().unwrap_or_default();

    let (samples, watch) = sample_pods(&c.client, "roll");
    wait::until(TIMEOUT, "the watch to see the 4 ready pods", || async {
        let s = samples.lock().unwrap_or_else(|e| e.into_inner());
        Ok((s.pods.values().filter(|(r, _)| *r).count() == 4).then_some(()))
    })
    .await?;
    arm(&samples);
    kc(&k, &["set", "image", "deployment/roll", "c=nginx:1.26"]).await?;
    rollout_status(&k, "roll").await?;
    let pods = ready_pods(&c.client, "roll", 4).await?;
    let (min_ready, max_live, mixed) = take(&samples);
    watch.abort();
    assert!(mixed, "the watch saw old and new pods together during the rollout");
    assert!(min_ready >= 3, "ready pods dropped to {min_ready} (replicas 4, maxUnavailable 1)");
    assert!(max_live <= 5, "{max_live} pods at once (replicas 4, maxSurge 1)");

    // Only the new ReplicaSet has pods; the old one is kept (history) at 0.
    let rss = replica_sets(&c.client, "roll").await?;
    assert_eq!(rss.len(), 2);
    let (new, old): (Vec<&ReplicaSet>, Vec<&ReplicaSet>) =
        rss.iter().partition(|r| r.metadata.name.as_deref() != Some(first_name.as_str()));
    assert_eq!((size(new[0]), size(old[0])), (4, 0));
    assert_eq!(annotation(&new[0].metadata, "deployment.kubernetes.io/revision"), Some("2"));
    let new_name = new[0].metadata.name.clone().unwrap_or_default();
    for p in &pods {
        let owner = p.metadata.owner_references.as_ref().and_then(|o| o.first()).map(|o| o.name.clone());
        assert_eq!(owner.as_deref(), Some(new_name.as_str()));
    }
    let history = kc(&k, &["rollout", "history", "deployment/roll"]).await?;
    assert!(history.lines().any(|l| l.trim_start().starts_with('1')) && history.contains('2'), "{history}");

    // `kubectl rollout undo` patches the old template back: the first ReplicaSet comes back as revision 3.
    let out = kc(&k, &["rollout", "undo", "deployment/roll"]).await?;
    assert!(out.contains("rolled back"), "{out}");
    rollout_status(&k, "roll").await?;
    ready_pods(&c.client, "roll", 4).await?;
    let rs: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let back = wait::until(TIMEOUT, "the first ReplicaSet to be scaled back up", || async {
        let r = rs.get(&first_name).await?;
        Ok((size(&r) == 4 && r.status.as_ref().and_then(|s| s.available_replicas) == Some(4)).then_some(r))
    })
    .await?;
    assert_eq!(annotation(&back.metadata, "deployment.kubernetes.io/revision"), Some("3"));
    assert_eq!(annotation(&back.metadata, "deployment.kubernetes.io/revision-history"), Some("1"));
    let image = kc(&k, &["get", "deploy", "roll", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await?;
    assert_eq!(image, "nginx:1.25");
    assert_eq!(size(&rs.get(&new_name).await?), 0);

    // `kubectl rollout restart` changes the template: a third ReplicaSet takes over.
    kc(&k, &["rollout", "restart", "deployment/roll"]).await?;
    rollout_status(&k, "roll").await?;
    ready_pods(&c.client, "roll", 4).await?;
    let rss = replica_sets(&c.client, "roll").await?;
    assert_eq!(rss.len(), 3);
    assert_eq!(rss.iter().filter(|r| size(r) > 0).count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_never_mixes_templates_and_history_is_limited() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(&k, &deployment_yaml("rec", 3, "nginx:1.25", RECREATE)).await?;
    kc(&k, &["patch", "deployment/rec", "-p", r#"{"spec":{"revisionHistoryLimit":1}}"#]).await?;
    rollout_status(&k, "rec").await?;
    ready_pods(&c.client, "rec", 3).await?;
    let (samples, watch) = sample_pods(&c.client, "rec");
    wait::until(TIMEOUT, "the watch to see the 3 pods", || async {
        let s = samples.lock().unwrap_or_else(|e| e.into_inner());
        Ok((s.pods.len() == 3).then_some(()))
    })
    .await?;
    arm(&samples);
    for image in ["nginx:1.26", "nginx:1.27"] {
        kc(&k, &["set", "image", "deployment/rec", &format!("c={image}")]).await?;
        rollout_status(&k, "rec").await?;
        ready_pods(&c.client, "rec", 3).await?;
    }
    let (min_ready, max_live, mixed) = take(&samples);
    watch.abort();
    assert_eq!(min_ready, 0, "the watch saw the old pods go before the new ones came");
    assert!(!mixed, "old and new pods ran at the same time");
    assert!(max_live <= 3, "{max_live} pods at once");
    // Three revisions, history limit 1: the oldest ReplicaSet is deleted.
    wait::until(TIMEOUT, "old ReplicaSets beyond the history limit to go", || async {
        let rss = replica_sets(&c.client, "rec").await?;
        let revs: BTreeSet<String> = rss
            .iter()
            .filter_map(|r| annotation(&r.metadata, "deployment.kubernetes.io/revision").map(str::to_string))
            .collect();
        if revs == BTreeSet::from(["2".to_string(), "3".to_string()]) {
            Ok(Some(()))
        } else {
            bail!("revisions {revs:?}")
        }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployments_wait_and_stuck_rollouts_time_out() -> Result<()> {
    let api = ApiServer::start().await?;
    let _ctrl = Controllers::start_with(&api, WORKLOADS, WaitFor::Ready).await?;
    let client = api.client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let n = Node {
        metadata: ObjectMeta { name: Some("node-a".into()), ..Default::default() },
        spec: Some(NodeSpec { pod_cidr: Some("10.244.1.0/24".into()), ..Default::default() }),
        status: None,
    };
    nodes.create(&PostParams::default(), &n).await?;
    let fake = FakeNode::start_with(client.clone(), "node-a", FakeNodeOptions::default()).await?;
    let k = api.kubectl();
    apply(&k, &deployment_yaml("slow", 2, "nginx:1.25", ROLLING_1_1)).await?;
    rollout_status(&k, "slow").await?;

    // Paused: a template change makes no ReplicaSet; resumed: it rolls out.
    kc(&k, &["rollout", "pause", "deployment/slow"]).await?;
    kc(&k, &["set", "image", "deployment/slow", "c=nginx:1.26"]).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait::until(TIMEOUT, "the paused condition", || async {
        let d = deployments.get("slow").await?;
        let paused = d.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().any(|c| {
            c.type_ == "Progressing" && c.status == "Unknown" && c.reason.as_deref() == Some("DeploymentPaused")
        });
        Ok(paused.then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replica_sets(&client, "slow").await?.len(), 1, "a paused deployment does not roll out");
    kc(&k, &["rollout", "resume", "deployment/slow"]).await?;
    rollout_status(&k, "slow").await?;
    assert_eq!(replica_sets(&client, "slow").await?.len(), 2);

    // New pods never get ready: the rollout stops at maxUnavailable and times out after the deadline.
    drop(fake);
    kc(&k, &["patch", "deployment/slow", "-p", r#"{"spec":{"progressDeadlineSeconds":3}}"#]).await?;
    kc(&k, &["set", "image", "deployment/slow", "c=nginx:1.27"]).await?;
    let out = k.clone().with_timeout(Duration::from_secs(30));
    let res = tokio::task::spawn_blocking(move || out.run(&["rollout", "status", "deployment/slow", "--timeout=30s"]))
        .await??;
    assert!(!res.success(), "rollout status must fail: {}", res.stdout);
    assert!(res.stderr.contains("exceeded its progress deadline"), "{}", res.stderr);
    let d = deployments.get("slow").await?;
    let cond = d.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().find(|c| c.type_ == "Progressing");
    let cond = cond.context("no Progressing condition")?;
    assert_eq!((cond.status.as_str(), cond.reason.as_deref()), ("False", Some("ProgressDeadlineExceeded")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_replication_controller_creates_and_replaces_its_pods() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    let rc = "apiVersion: v1
kind: ReplicationController
metadata:
  name: my-nginx
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: nginx
    spec:
      nodeName: node-b
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
";
    let k2 = k.clone();
    let rc_yaml = rc.to_string();
    let out = tokio::task::spawn_blocking(move || k2.run_with_stdin(&["create", "-f", "-"], &rc_yaml)).await??.ok()?;
    assert!(out.stdout.contains("replicationcontroller/my-nginx created"), "{}", out.stdout);
    let pods = ready_pods(&c.client, "nginx", 2).await?;
    for p in &pods {
        assert!(p.metadata.name.as_deref().unwrap_or("").starts_with("my-nginx-"));
        let r = p.metadata.owner_references.as_ref().and_then(|o| o.first()).context("no owner")?;
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str(), r.name.as_str()),
            ("v1", "ReplicationController", "my-nginx")
        );
    }
    wait::until(TIMEOUT, "kubectl get rc to show 2 2 2", || async {
        let out = kc(&k, &["get", "rc", "my-nginx", "--no-headers"]).await?;
        let cols: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        Ok((cols.get(1..4) == Some(&["2".to_string(), "2".to_string(), "2".to_string()][..])).then_some(()))
    })
    .await?;
    let victim = pods[0].metadata.name.clone().unwrap_or_default();
    kc(&k, &["delete", "pod", &victim]).await?;
    let pods = ready_pods(&c.client, "nginx", 2).await?;
    assert!(pods.iter().all(|p| p.metadata.name.as_deref() != Some(victim.as_str())));
    let describe = kc(&k, &["describe", "rc", "my-nginx"]).await?;
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_and_relabelled_pods_released() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(
        &k,
        "apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels:
    app: adopt
spec:
  nodeName: node-a
  containers:
  - name: c
    image: nginx
",
    )
    .await?;
    ready_pods(&c.client, "adopt", 1).await?;
    apply(
        &k,
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: adopter
spec:
  replicas: 2
  selector:
    matchLabels:
      app: adopt
  template:
    metadata:
      labels:
        app: adopt
    spec:
      nodeName: node-a
      containers:
      - name: c
        image: nginx
",
    )
    .await?;
    let pods = ready_pods(&c.client, "adopt", 2).await?;
    assert!(pods.iter().any(|p| p.metadata.name.as_deref() == Some("stray")), "the orphan was adopted, not replaced");
    let pod_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let stray = pod_api.get("stray").await?;
    let r = stray.metadata.owner_references.as_ref().and_then(|o| o.first()).context("stray not adopted")?;
    assert_eq!((r.kind.as_str(), r.name.as_str(), r.controller), ("ReplicaSet", "adopter", Some(true)));

    // Relabelled out of the selector: released (no owner) and replaced.
    kc(&k, &["label", "pod", "stray", "app=gone", "--overwrite"]).await?;
    let pods = ready_pods(&c.client, "adopt", 2).await?;
    assert!(pods.iter().all(|p| p.metadata.name.as_deref() != Some("stray")));
    wait::until(TIMEOUT, "stray to be released", || async {
        let p = pod_api.get("stray").await?;
        Ok(p.metadata.owner_references.unwrap_or_default().is_empty().then_some(()))
    })
    .await?;
    let describe = kc(&k, &["describe", "rs", "adopter"]).await?;
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_when_nothing_changes() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(&k, &deployment_yaml("calm", 3, "nginx:1.25", ROLLING_1_1)).await?;
    rollout_status(&k, "calm").await?;
    ready_pods(&c.client, "calm", 3).await?;
    apply(
        &k,
        "apiVersion: v1
kind: ReplicationController
metadata:
  name: calm-rc
spec:
  replicas: 2
  selector:
    app: calm-rc
  template:
    metadata:
      labels:
        app: calm-rc
    spec:
      nodeName: node-b
      containers:
      - name: c
        image: nginx
",
    )
    .await?;
    ready_pods(&c.client, "calm-rc", 2).await?;
    // Let the last status writes settle, then count writes across several resyncs (every 2 s).
    // The leader lease renewals are the only writes allowed.
    let writes = || async {
        let all = c.ctrl.metric_sum("knet_controllers_api_writes_total", &[]).await?;
        let leases = c.ctrl.metric_sum("knet_controllers_api_writes_total", &[("resource", "leases")]).await?;
        anyhow::Ok(all - leases)
    };
    // Settled: no write over two windows in a row (one window was too short on a loaded machine: a late status
    // write then landed in the measured interval).
    let mut before = writes().await?;
    let mut quiet = 0;
    for attempt in 0.. {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = writes().await?;
        quiet = if now == before { quiet + 1 } else { 0 };
        if quiet == 2 {
            break;
        }
        if attempt > 20 {
            let text = c.ctrl.metrics().await?;
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("knet_controllers_api_writes")).collect();
            bail!("API writes never settled: {before} then {now}:\n{}", lines.join("\n"));
        }
        before = now;
    }
    let reconciles =
        || c.ctrl.metric_sum("knet_controllers_reconcile_total", &[("controller", "deployment-controller")]);
    let reconciled = reconciles().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(reconciles().await? > reconciled, "resyncs happened");
    assert_eq!(writes().await?, before, "API writes without any change");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_ready_seconds_delays_availability() -> Result<()> {
    let c = cluster().await?;
    let k = c.api.kubectl();
    apply(
        &k,
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: patient
spec:
  replicas: 2
  minReadySeconds: 3
  selector:
    matchLabels:
      app: patient
  template:
    metadata:
      labels:
        app: patient
    spec:
      nodeName: node-b
      containers:
      - name: c
        image: nginx
",
    )
    .await?;
    let rs: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let counts = || async {
        let st = rs.get("patient").await?.status.unwrap_or_default();
        anyhow::Ok((st.ready_replicas.unwrap_or(0), st.available_replicas.unwrap_or(0)))
    };
    let started = std::time::Instant::now();
    wait::until(TIMEOUT, "2 ready replicas", || async { Ok((counts().await?.0 == 2).then_some(())) }).await?;
    let (_, available) = counts().await?;
    assert_eq!(available, 0, "ready pods are not available before minReadySeconds");
    wait::until(TIMEOUT, "2 available replicas", || async { Ok((counts().await?.1 == 2).then_some(())) }).await?;
    // Condition times have whole seconds, so a pod may count as available up to 1 s early (as upstream).
    assert!(started.elapsed() >= Duration::from_secs(2), "available after {:?}", started.elapsed());
    let out = kc(&k, &["get", "rs", "patient", "--no-headers"]).await?;
    assert_eq!(out.split_whitespace().collect::<Vec<_>>()[1..4], ["2", "2", "2"], "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_rollout_converges_without_duplicates() -> Result<()> {
    let mut c = cluster().await?;
    let k = c.api.kubectl();
    apply(&k, &deployment_yaml("again", 4, "nginx:1.25", ROLLING_1_1)).await?;
    rollout_status(&k, "again").await?;
    let before: BTreeSet<String> =
        replica_sets(&c.client, "again").await?.iter().filter_map(|r| r.metadata.name.clone()).collect();
    // A restart with nothing to do keeps the same ReplicaSet (the template hash is stable) and its pods.
    c.ctrl.kill9();
    c.ctrl.restart(WaitFor::Ready).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: BTreeSet<String> =
        replica_sets(&c.client, "again").await?.iter().filter_map(|r| r.metadata.name.clone()).collect();
    assert_eq!(before, after);
    ready_pods(&c.client, "again", 4).await?;

    // Crash right after a template change, restart: the rollout completes with one new ReplicaSet.
    kc(&k, &["set", "image", "deployment/again", "c=nginx:1.26"]).await?;
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.ctrl.kill9();
    c.ctrl.restart(WaitFor::Ready).await?;
    rollout_status(&k, "again").await?;
    ready_pods(&c.client, "again", 4).await?;
    let rss = replica_sets(&c.client, "again").await?;
    assert_eq!(rss.len(), 2, "{:?}", rss.iter().map(|r| r.metadata.name.clone()).collect::<Vec<_>>());
    assert_eq!(rss.iter().filter(|r| size(r) > 0).map(size).collect::<Vec<_>>(), vec![4]);
    Ok(())
}
