//! Issue 3, test 1: the seed tutorials' workload flows through the real kubectl against knet-apiserver and
//! every knet controller, with two fake nodes standing in for node agents: Deployment and RC pods are
//! created, scheduled across the nodes, reported Ready, and `kubectl get ep` follows them (seeds 000 and 004).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xtests::{wait, ApiServer, Controllers, FakeNode, FakeNodeOptions, Kubectl};

fn seed(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/seeds").join(file).display().to_string()
}

fn ok(k: &Kubectl, args: &[&str]) -> Result<String> {
    Ok(k.run(args)?.ok()?.stdout)
}

/// The pod IPs of pods matching `selector`, once every pod has one.
fn pod_ips(k: &Kubectl, selector: &str) -> Result<BTreeSet<String>> {
    let out = ok(k, &["get", "pods", "-l", selector, "-o", "jsonpath={range .items[*]}{.status.podIP}{\"\\n\"}{end}"])?;
    Ok(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// The `ENDPOINTS` column of `kubectl get ep NAME` as a set (`<none>` → empty).
fn get_ep(k: &Kubectl, name: &str) -> Result<BTreeSet<String>> {
    let out = ok(k, &["get", "ep", name, "--no-headers"])?;
    let line = out.lines().next().context("kubectl get ep printed nothing")?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.first() != Some(&name) || cols.len() < 3 {
        bail!("unexpected `kubectl get ep` line: {line:?}");
    }
    if cols[1] == "<none>" {
        return Ok(BTreeSet::new());
    }
    Ok(cols[1].split(',').map(str::to_string).collect())
}

async fn cluster() -> Result<(ApiServer, Controllers, FakeNode, FakeNode)> {
    let api = ApiServer::start().await?;
    let ctrl = Controllers::start(&api).await?;
    let client = api.client().await?;
    let a = FakeNode::start(client.clone(), "worker-1").await?;
    let b = FakeNode::start_with(
        client,
        "worker-2",
        FakeNodeOptions { internal_ip: "192.168.56.12".parse()?, ..Default::default() },
    )
    .await?;
    Ok((api, ctrl, a, b))
}

/// Waits until `kubectl get ep NAME` lists exactly the IPs of the pods matching `selector`, on `port`,
/// and there are `want` of them.
async fn ep_matches_pods(k: &Kubectl, name: &str, selector: &str, port: u16, want: usize) -> Result<BTreeSet<String>> {
    wait::until(Duration::from_secs(60), &format!("ep {name} to list the {want} pod IPs of {selector}"), || async {
        let ips = pod_ips(k, selector)?;
        let ep = get_ep(k, name)?;
        let expected: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
        if ips.len() == want && ep == expected {
            Ok(Some(ips))
        } else {
            bail!("pods {ips:?}, ep {ep:?}")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_nginx_deployment_endpoints_follow_pods() -> Result<()> {
    let (api, _ctrl, _a, _b) = cluster().await?;
    let k = api.kubectl();
    ok(&k, &["apply", "-f", &seed("deployment-my-nginx.yaml"), "-f", &seed("service-my-nginx.yaml")])?;
    let out = ok(&k, &["rollout", "status", "deployment/my-nginx", "--timeout=60s"])?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let ips = ep_matches_pods(&k, "my-nginx", "run=my-nginx", 80, 2).await?;

    // The scheduler spread the two replicas over the two nodes.
    let nodes = ok(&k, &["get", "pods", "-l", "run=my-nginx", "-o", "jsonpath={.items[*].spec.nodeName}"])?;
    let nodes: BTreeSet<&str> = nodes.split_whitespace().collect();
    assert_eq!(nodes, BTreeSet::from(["worker-1", "worker-2"]));

    // Delete one pod: the replacement's IP replaces it.
    let victim = ok(&k, &["get", "pods", "-l", "run=my-nginx", "-o", "jsonpath={.items[0].metadata.name}"])?;
    let victim_ip = ok(&k, &["get", "pod", &victim, "-o", "jsonpath={.status.podIP}"])?;
    ok(&k, &["delete", "pod", &victim, "--wait=true", "--timeout=30s"])?;
    let after = wait::until(Duration::from_secs(60), "a replacement pod", || async {
        let ips = ep_matches_pods(&k, "my-nginx", "run=my-nginx", 80, 2).await?;
        Ok((!ips.contains(&victim_ip)).then_some(ips))
    })
    .await?;
    assert_eq!(after.intersection(&ips).count(), 1, "one old IP stays, one new arrives: {ips:?} → {after:?}");

    // Scale to 0: the Endpoints object stays, with no addresses (seed 004).
    ok(&k, &["scale", "deployment/my-nginx", "--replicas=0"])?;
    wait::until(Duration::from_secs(60), "ep my-nginx to be empty", || async {
        let ep = get_ep(&k, "my-nginx")?;
        Ok(ep.is_empty().then_some(()))
    })
    .await?;
    let out = ok(&k, &["get", "ep", "my-nginx"])?;
    assert!(out.contains("<none>"), "{out}");

    // Deleting the Deployment leaves the Service and its (empty) Endpoints (seed 004: `kubectl delete deploy`).
    ok(&k, &["delete", "deploy", "my-nginx"])?;
    wait::until(Duration::from_secs(60), "the ReplicaSets to be collected", || async {
        let rs = ok(&k, &["get", "rs", "-l", "run=my-nginx", "-o", "name"])?;
        Ok(rs.trim().is_empty().then_some(()))
    })
    .await?;
    assert!(get_ep(&k, "my-nginx")?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_replication_controller_and_nginxsvc() -> Result<()> {
    let (api, _ctrl, _a, _b) = cluster().await?;
    let k = api.kubectl();
    let out = ok(&k, &["create", "-f", &seed("replicationcontroller-my-nginx.yaml")])?;
    assert!(out.contains("replicationcontroller/my-nginx created"), "{out}");
    ok(&k, &["create", "-f", &seed("service-nginxsvc.yaml")])?;
    ok(&k, &["wait", "--for=condition=Ready", "pod", "-l", "app=nginx", "--timeout=60s"])?;
    let ips = ep_matches_pods(&k, "nginxsvc", "app=nginx", 80, 2).await?;

    // `kubectl get pods -l app=nginx -o wide` shows them Running with their IPs and nodes.
    let wide = ok(&k, &["get", "pods", "-l", "app=nginx", "-o", "wide"])?;
    for ip in &ips {
        assert!(wide.contains(ip.as_str()), "{wide}");
    }
    assert_eq!(wide.matches("Running").count(), 2, "{wide}");
    let described = ok(&k, &["describe", "svc", "nginxsvc"])?;
    let endpoints_line = described.lines().find(|l| l.starts_with("Endpoints:")).context("no Endpoints line")?;
    for ip in &ips {
        assert!(endpoints_line.contains(&format!("{ip}:80")), "{described}");
    }

    // `kubectl scale rc my-nginx --replicas=0; kubectl scale rc my-nginx --replicas=2`: new pods, new IPs.
    ok(&k, &["scale", "rc", "my-nginx", "--replicas=0"])?;
    wait::until(Duration::from_secs(60), "the RC's pods to go", || async {
        Ok(pod_ips(&k, "app=nginx")?.is_empty().then_some(()))
    })
    .await?;
    ok(&k, &["scale", "rc", "my-nginx", "--replicas=2"])?;
    let new_ips = ep_matches_pods(&k, "nginxsvc", "app=nginx", 80, 2).await?;
    assert!(new_ips.is_disjoint(&ips), "fresh pods get fresh IPs: {ips:?} → {new_ips:?}");
    Ok(())
}
