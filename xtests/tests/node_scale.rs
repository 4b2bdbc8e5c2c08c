//! 100 pods created and deleted on one node leave nothing behind (root): no veth, no pinned network namespace,
//! no mount, no IPAM file, no runtime process, no pod dir.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use xtests::node_host::{root_or_skip, NodeHost};

const PODS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_pods_leave_nothing_behind() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    let links_before = host.node_links()?;
    let mut yaml = String::new();
    for i in 0..PODS {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: scale}}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers: [{{name: c, image: busybox, command: [\"sleep\", \"3600\"]}}]\n"
        ));
    }
    let k = host.kubectl().with_timeout(Duration::from_secs(120));
    k.run_with_stdin(&["apply", "-f", "-"], &yaml)?.ok()?;
    let pods: Api<Pod> = Api::namespaced(host.client().await?, "default");
    let deadline = Instant::now() + Duration::from_secs(180);
    let ips = loop {
        let list = pods.list(&Default::default()).await?;
        let running: Vec<String> = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()))
            .collect();
        if running.len() == PODS {
            break running;
        }
        assert!(Instant::now() < deadline, "only {} of {PODS} pods running", running.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), PODS, "pod IPs are not unique");
    assert_eq!(host.node_links()?.len(), links_before.len() + 1 + PODS, "a bridge and a veth per pod");
    assert_eq!(std::fs::read_dir(host.root_dir().join("netns"))?.count(), PODS);

    k.run(&["delete", "pods", "-l", "app=scale", "--wait=true", "--timeout=120s"])?.ok()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = pods.list(&Default::default()).await?.items.len();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} pods left");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nothing left: veths (the bridge stays), pins, mounts, IPAM leases, processes, pod dirs.
    let links: Vec<String> = host.node_links()?.into_iter().filter(|l| l.starts_with("veth")).collect();
    assert!(links.is_empty(), "veths left: {links:?}");
    assert_eq!(std::fs::read_dir(host.root_dir().join("netns"))?.count(), 0, "pinned namespaces left");
    assert!(host.mounts_under_root().is_empty(), "mounts left: {:?}", host.mounts_under_root());
    // Pod state lives on the agent's tmpfs mounts (kept while the agent runs); what is in them is checked below.
    assert!(host.state_dirs_not_on_tmpfs().is_empty(), "not on tmpfs: {:?}", host.state_dirs_not_on_tmpfs());
    let leases: Vec<String> = std::fs::read_dir(host.ipam_dir())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "IPAM leases left: {leases:?}");
    assert!(host.runtime_processes().is_empty(), "runtime processes left: {:?}", host.runtime_processes());
    assert_eq!(std::fs::read_dir(host.root_dir().join("pods"))?.count(), 0, "pod dirs left");
    Ok(())
}
