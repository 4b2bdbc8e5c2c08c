//! Restarting the agent (root): `kill -9` and a new agent adopt the running pods — same processes, same IPs,
//! still serving, still restartable and deletable — and what no pod owns any more (a pod deleted while the agent
//! was down: its sandbox, veth, IP lease, pinned namespace, processes, files) is removed.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::Api;
use xtests::node_host::{root_or_skip, NodeHost};

fn ip(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_pods_and_removes_orphans() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let mut host = NodeHost::start().await?;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: keep}
spec:
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo kept > /www/index.html && httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: finished}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["echo", "done"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: exits}
spec:
  containers: [{name: c, image: busybox, command: ["sh", "-c", "sleep 3; exit 7"]}]
"#,
    )?;
    let keep = host.wait_running("default", "keep").await?;
    let doomed = host.wait_running("default", "doomed").await?;
    host.wait_running("default", "exits").await?;
    let keep_ip = ip(&keep);
    let doomed_ip = ip(&doomed);
    let keep_holder = host.holder_pid("default", "keep").await?;
    let keep_pid = host.container_pid("default", "keep", "web").await?;
    let doomed_uid = doomed.metadata.uid.clone().unwrap_or_default();
    let finished = host
        .wait_pod("default", "finished", Duration::from_secs(30), "Succeeded", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        })
        .await?;
    let finished_uid = finished.metadata.uid.clone().unwrap_or_default();
    let links_before = host.node_links()?;

    host.kill9_agent();
    // While the agent is down: the pods keep serving, one container exits, one pod is force-deleted.
    let out = host.node_command("curl", &["-s", "--max-time", "5", &format!("http://{keep_ip}:8080/")])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kept");
    let pods: Api<Pod> = Api::namespaced(host.client().await?, "default");
    pods.delete("doomed", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;

    host.start_agent()?;
    host.wait_node_ready(Duration::from_secs(60)).await?;
    // Same holder, same container process, same IP.
    let keep = host.wait_running("default", "keep").await?;
    assert_eq!(ip(&keep), keep_ip);
    assert_eq!(host.holder_pid("default", "keep").await?, keep_holder);
    assert_eq!(host.container_pid("default", "keep", "web").await?, keep_pid);
    let cs = keep.status.and_then(|s| s.container_statuses).unwrap_or_default();
    assert_eq!(cs[0].restart_count, 0);
    let out = host.node_command("curl", &["-s", "--max-time", "5", &format!("http://{keep_ip}:8080/")])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kept");
    // The exit while the agent was down is known, with its code, and the container restarts.
    let exits = host
        .wait_pod("default", "exits", Duration::from_secs(30), "a restart after the exit", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .is_some_and(|c| c.restart_count >= 1)
        })
        .await?;
    let last = exits
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.last_state)
        .and_then(|l| l.terminated);
    assert_eq!(last.map(|t| t.exit_code), Some(7));

    // A finished pod stays finished: no new sandbox, same status.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = host.pod("default", "finished").await?;
    assert_eq!(after.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded"));
    assert_eq!(after.status, finished.status);
    assert!(!host.root_dir().join("pods").join(&finished_uid).join("sandbox.json").exists());
    assert_eq!(host.container_log("default", "finished", "c").await?, "done\n");

    // The orphan is gone: no records, no pin, no lease, no veth, no processes.
    let root = host.root_dir();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let gone = !root.join("pods").join(&doomed_uid).exists()
            && !root.join("netns").join(&doomed_uid).exists()
            && !host.ipam_dir().join(&doomed_ip).exists()
            && host.node_links()?.len() == links_before.len() - 1;
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the orphaned pod's remains are still there; links {:?}",
            host.node_links()?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!host.mounts_under_root().iter().any(|m| m.contains(&doomed_uid)));

    // The adopted pod is still managed: deleting it stops it and frees its IP.
    host.kubectl().run(&["delete", "pod", "keep", "--wait=true", "--timeout=60s"])?.ok()?;
    host.wait_gone("default", "keep", Duration::from_secs(30)).await?;
    assert!(!host.ipam_dir().join(&keep_ip).exists());
    // Gone (or a zombie waiting for whoever adopted it after its parent exited).
    let stat = std::fs::read_to_string(format!("/proc/{keep_holder}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')), "{stat}");
    Ok(())
}
