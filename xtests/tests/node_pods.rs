//! The node agent's pod runtime end to end (root): a Node that becomes Ready with its podCIDR, pods running
//! with IPs from it, pod↔pod and node→pod HTTP on one node, deleting a pod frees its IP.

use std::time::Duration;

use anyhow::Result;
use xtests::node_host::{root_or_skip, NodeHost, NODE_IP, NODE_NAME};

fn pod_ip(p: &k8s_openapi::api::core::v1::Pod) -> String {
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ready_pods_run_and_talk() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    let node = host.pod("default", "x").await.err();
    assert!(node.is_some());

    // The Node as kubelet registers it.
    let k = host.kubectl();
    let nodes = k.run(&["get", "nodes", "-o", "wide"])?.ok()?.stdout;
    let line = nodes.lines().find(|l| l.starts_with(NODE_NAME)).unwrap_or_default().to_string();
    assert!(
        line.contains(" Ready ") && line.contains("v1.34.0-knet") && line.contains(&NODE_IP.to_string()),
        "{nodes}"
    );
    let cidr = k.run(&["get", "node", NODE_NAME, "-o", "jsonpath={.spec.podCIDR}"])?.ok()?.stdout;
    let prefix = cidr.trim_end_matches("0/24").to_string();
    assert!(cidr.starts_with("10.244.") && cidr.ends_with(".0/24"), "{cidr}");
    let lease = k
        .run(&["get", "lease", "-n", "kube-node-lease", NODE_NAME, "-o", "jsonpath={.spec.holderIdentity}"])?
        .ok()?
        .stdout;
    assert_eq!(lease, NODE_NAME);

    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: nginx
    image: nginx
    ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: sh
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-busybox > /www/index.html && httpd -f -p 8080 -h /www"]
"#,
    )?;
    let web = host.wait_running("default", "web").await?;
    let client = host.wait_running("default", "client").await?;
    let (web_ip, client_ip) = (pod_ip(&web), pod_ip(&client));
    assert!(web_ip.starts_with(&prefix) && client_ip.starts_with(&prefix), "{web_ip} {client_ip} not in {cidr}");
    assert_ne!(web_ip, client_ip);
    let status = web.status.clone().unwrap_or_default();
    assert_eq!(status.host_ip.as_deref(), Some(NODE_IP.to_string().as_str()));
    let cs = &status.container_statuses.unwrap_or_default()[0];
    assert!(cs.container_id.as_deref().unwrap_or_default().starts_with("knet://"));
    assert!(cs.ready && cs.started == Some(true) && cs.restart_count == 0);
    let wide = k.run(&["get", "pods", "-o", "wide"])?.ok()?.stdout;
    assert!(
        wide.lines().any(|l| l.starts_with("web ")
            && l.contains("1/1")
            && l.contains("Running")
            && l.contains(&web_ip)
            && l.contains(NODE_NAME)),
        "{wide}"
    );

    // kubelet's events, as `kubectl describe` shows them.
    let describe = k.run(&["describe", "pod", "client"])?.ok()?.stdout;
    for want in ["Container image \"busybox\" already present on machine", "Container created", "Container started"] {
        assert!(describe.contains(want), "{describe}");
    }
    assert!(describe.contains("kubelet"), "{describe}");

    // pod → pod and node → pod, all inside the test's namespaces.
    let page = host.exec_stdout("default", "client", &["wget", "-qO-", &format!("http://{web_ip}/")]).await?;
    assert!(page.contains("<h1>Welcome to nginx!</h1>"), "{page}");
    let out = host.node_command("curl", &["-s", "--max-time", "5", &format!("http://{client_ip}:8080/")])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello-from-busybox");
    let out = host.node_command("curl", &["-s", "--max-time", "5", &format!("http://{web_ip}/")])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("Welcome to nginx!"));
    // The pod's own localhost is shared by its containers and separate from the node's.
    let local = host.exec_stdout("default", "web", &["curl", "-s", "http://127.0.0.1/"]).await?;
    assert!(local.contains("Welcome to nginx!"));

    // Deleting a pod frees its IP.
    let ipam = host.ipam_dir();
    assert!(ipam.join(&web_ip).exists(), "no IPAM file for {web_ip} in {}", ipam.display());
    k.run(&["delete", "pod", "web", "--wait=true", "--timeout=60s"])?.ok()?;
    host.wait_gone("default", "web", Duration::from_secs(30)).await?;
    assert!(!ipam.join(&web_ip).exists(), "the IP of a deleted pod is still leased");
    Ok(())
}
