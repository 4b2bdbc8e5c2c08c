//! Container lifecycles in real pods (root): restarts with kubelet's CrashLoopBackOff back-off, liveness kills,
//! readiness, init containers in order with a shared emptyDir, graceful deletion timing (SIGTERM, SIGKILL after
//! the grace period, preStop), an image not in the catalog failing the pod, and kubelet's events.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::Api;
use xtests::node_host::{root_or_skip, NodeHost};

fn status_of(p: &Pod, c: &str) -> Option<ContainerStatus> {
    p.status.as_ref()?.container_statuses.as_ref()?.iter().find(|s| s.name == c).cloned()
}

async fn events(host: &NodeHost, pod: &str) -> Result<Vec<(String, String, String)>> {
    let api: Api<Event> = Api::namespaced(host.client().await?, "default");
    let list = api.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.source.and_then(|s| s.component).unwrap_or_default(),
            )
        })
        .collect())
}

async fn wait_event(host: &NodeHost, pod: &str, reason: &str, contains: &str) -> Result<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let evs = events(host, pod).await?;
        if let Some(e) = evs.iter().find(|e| e.0 == reason && e.1.contains(contains)) {
            return Ok(e.clone());
        }
        if Instant::now() > deadline {
            anyhow::bail!("no {reason} event containing {contains:?} for {pod}; events: {evs:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_back_off_and_probes() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: c, image: busybox, command: ["sh", "-c", "echo run; exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ready && httpd -f -p 8080 -h /www"]
    livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: slow-start}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/started; sleep 3600"]
    startupProbe: {exec: {command: ["test", "-f", "/tmp/started"]}, periodSeconds: 1, failureThreshold: 30}
---
apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ready && httpd -f -p 8080 -h /www"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
"#,
    )?;
    // A startup probe holds `started` (and readiness) until it succeeds.
    let p = host
        .wait_pod("default", "slow-start", Duration::from_secs(20), "running", |p| {
            status_of(p, "c").and_then(|s| s.state).and_then(|s| s.running).is_some()
        })
        .await?;
    let t_running = Instant::now();
    let cs = status_of(&p, "c").unwrap_or_default();
    assert!(cs.started == Some(false) && !cs.ready, "{cs:?}");
    host.wait_pod("default", "slow-start", Duration::from_secs(20), "started and ready", |p| {
        status_of(p, "c").is_some_and(|s| s.started == Some(true) && s.ready)
    })
    .await?;
    assert!(t_running.elapsed() >= Duration::from_secs(1), "started before the startup probe could pass");

    // Restarts: the first immediately, then after 10 s and 20 s of back-off, measured between the
    // reported finish of one run and the start of the next.
    let backing_off = |n: i32| {
        move |p: &Pod| {
            status_of(p, "c").is_some_and(|s| {
                s.restart_count == n
                    && s.state.as_ref().and_then(|st| st.waiting.as_ref()).and_then(|w| w.reason.as_deref())
                        == Some("CrashLoopBackOff")
            })
        }
    };
    let last_run = |p: &Pod| {
        let t = status_of(p, "c").and_then(|s| s.last_state).and_then(|l| l.terminated).unwrap_or_default();
        (t.started_at.map(|t| t.0), t.finished_at.map(|t| t.0))
    };
    let p1 = host.wait_pod("default", "crash", Duration::from_secs(30), "back-off after run 1", backing_off(1)).await?;
    let p2 = host.wait_pod("default", "crash", Duration::from_secs(30), "back-off after run 2", backing_off(2)).await?;
    let p3 = host.wait_pod("default", "crash", Duration::from_secs(40), "back-off after run 3", backing_off(3)).await?;
    let gap = |a: &Pod, b: &Pod| -> f64 {
        let (Some(finished), (Some(started), _)) = (last_run(a).1, last_run(b)) else { return f64::NAN };
        started.duration_since(finished).as_secs_f64()
    };
    let (g1, g2) = (gap(&p1, &p2), gap(&p2, &p3));
    assert!((9.0..=12.0).contains(&g1), "second restart {g1} s after the exit, want 10 s");
    assert!((19.0..=22.0).contains(&g2), "third restart {g2} s after the exit, want 20 s");
    let p = p3;
    let cs = status_of(&p, "c").unwrap_or_default();
    let last = cs.last_state.and_then(|s| s.terminated).unwrap_or_default();
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let waiting = status_of(&p, "c").and_then(|s| s.state).and_then(|s| s.waiting).unwrap_or_default();
    let uid = p.metadata.uid.clone().unwrap_or_default();
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("restarting failed container=c pod=crash_default({uid})")),
        "{waiting:?}"
    );
    assert_eq!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
    let get = host.kubectl().run(&["get", "pod", "crash"])?.ok()?.stdout;
    assert!(get.contains("CrashLoopBackOff"), "{get}");
    wait_event(
        &host,
        "crash",
        "BackOff",
        &format!("Back-off restarting failed container c in pod crash_default({uid})"),
    )
    .await?;
    let (_, _, source) = wait_event(&host, "crash", "Pulled", "already present on machine").await?;
    assert_eq!(source, "kubelet");
    // Repeats of one event are counted in the first Event (kubelet's correlator), not written again: three runs,
    // one Pulled Event with a count of at least 3.
    let api: Api<Event> = Api::namespaced(host.client().await?, "default");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pulled: Vec<Event> = api
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("crash") && e.reason.as_deref() == Some("Pulled"))
            .collect();
        assert_eq!(pulled.len(), 1, "{pulled:?}");
        if pulled[0].count >= Some(3) {
            assert!(pulled[0].last_timestamp > pulled[0].first_timestamp, "{pulled:?}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the Pulled event was not counted: {pulled:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Liveness: killed and restarted, with kubelet's events.
    host.wait_pod("default", "live", Duration::from_secs(30), "a liveness restart", |p| {
        status_of(p, "c").map(|s| s.restart_count).unwrap_or(0) >= 1
    })
    .await?;
    wait_event(&host, "live", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404").await?;
    wait_event(&host, "live", "Killing", "Container c failed liveness probe, will be restarted").await?;

    // Readiness follows the probe.
    host.wait_running("default", "ready").await?;
    host.exec_stdout("default", "ready", &["rm", "/www/ready"]).await?;
    host.wait_pod("default", "ready", Duration::from_secs(20), "NotReady", |p| {
        status_of(p, "c").is_some_and(|s| !s.ready && s.restart_count == 0)
    })
    .await?;
    let get = host.kubectl().run(&["get", "pod", "ready"])?.ok()?.stdout;
    assert!(get.contains("0/1") && get.contains("Running"), "{get}");
    wait_event(&host, "ready", "Unhealthy", "Readiness probe failed").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_deletion_and_unknown_images() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  initContainers:
  - {name: first, image: busybox, command: ["sh", "-c", "echo one > /data/log"], volumeMounts: [{name: data, mountPath: /data}]}
  - {name: second, image: busybox, command: ["sh", "-c", "echo two >> /data/log"], volumeMounts: [{name: data, mountPath: /data}]}
  containers:
  - {name: main, image: busybox, command: ["sh", "-c", "cat /data/log; sleep 3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: polite}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.2; done"]
    lifecycle: {preStop: {exec: {command: ["sh", "-c", "echo pre-stop > /tmp/pre-stop"]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: msg}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1234, runAsGroup: 2345}
  containers:
  - name: c
    image: busybox
    workingDir: /work/dir
    command: ["sh", "-c", "echo \"$(id -u):$(id -g) $(pwd)\" > /dev/termination-log; exit 2"]
---
apiVersion: v1
kind: Pod
metadata: {name: unknown}
spec:
  containers: [{name: app, image: "example.com/team/app:v1"}]
"#,
    )?;
    let p = host.wait_running("default", "init").await?;
    let inits = p.status.as_ref().and_then(|s| s.init_container_statuses.clone()).unwrap_or_default();
    assert_eq!(inits.len(), 2);
    assert!(inits.iter().all(|s| s
        .state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)));
    assert_eq!(host.container_log("default", "init", "main").await?, "one\ntwo\n");

    // The termination message, runAsUser/runAsGroup and a created workingDir.
    let p = host
        .wait_pod("default", "msg", Duration::from_secs(30), "Failed", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
        })
        .await?;
    let t = p
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.state)
        .and_then(|s| s.terminated)
        .unwrap_or_default();
    assert_eq!(
        (t.exit_code, t.reason.as_deref(), t.message.as_deref()),
        (2, Some("Error"), Some("1234:2345 /work/dir\n"))
    );

    // An image knet cannot run fails the pod with a clear reason and event.
    let p = host
        .wait_pod("default", "unknown", Duration::from_secs(30), "Failed", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
        })
        .await?;
    let s = p.status.clone().unwrap_or_default();
    assert_eq!(s.reason.as_deref(), Some("UnsupportedImage"));
    assert!(s.message.unwrap_or_default().contains("\"example.com/team/app:v1\" is not in knet's image catalog"));
    wait_event(&host, "unknown", "Failed", "is not in knet's image catalog").await?;
    let get = host.kubectl().run(&["get", "pod", "unknown"])?.ok()?.stdout;
    assert!(get.contains("UnsupportedImage"), "{get}");

    // Graceful deletion: a container that exits on SIGTERM goes quickly (after its preStop hook).
    host.wait_running("default", "polite").await?;
    let holder = host.holder_pid("default", "polite").await?;
    let t0 = Instant::now();
    host.kubectl().run(&["delete", "pod", "polite", "--wait=false"])?.ok()?;
    let pre_stop = format!("/proc/{holder}/root/tmp/pre-stop");
    let mut saw_pre_stop = false;
    while t0.elapsed() < Duration::from_secs(10) && !saw_pre_stop {
        saw_pre_stop = std::fs::read_to_string(&pre_stop).is_ok_and(|s| s.trim() == "pre-stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_pre_stop, "the preStop hook did not run");
    host.wait_gone("default", "polite", Duration::from_secs(15)).await?;
    let polite = t0.elapsed();
    assert!(polite < Duration::from_secs(8), "a container that stops on SIGTERM took {polite:?}");
    // One that ignores SIGTERM is killed when its 3 s grace period ends.
    host.wait_running("default", "stubborn").await?;
    let t0 = Instant::now();
    host.kubectl().run(&["delete", "pod", "stubborn", "--wait=false"])?.ok()?;
    host.wait_gone("default", "stubborn", Duration::from_secs(20)).await?;
    let stubborn = t0.elapsed();
    assert!(
        stubborn >= Duration::from_millis(2900) && stubborn < Duration::from_secs(9),
        "grace 3 s took {stubborn:?}"
    );
    wait_event(&host, "stubborn", "Killing", "Stopping container c").await?;
    Ok(())
}
