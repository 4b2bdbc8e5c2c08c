//! `knet-lab` itself, as root: `up --nodes 2` then `down` leaves nothing behind (namespaces, the root
//! namespace's links, addresses and routes, nftables tables, mounts, processes, files — compared before and
//! after); `down` after `up` was kill -9'd half-way (with a pod-like namespace bind-mounted under the state dir
//! and a process in it); `exec` into hosts; the outside host's HTTP and DNS servers.
//!
//! These tests do not need the node agent: `up --no-wait` brings the hosts up without waiting for Nodes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xtests::apiserver::bin_dir;
use xtests::lab::{require_root, Lab, LabOptions, Snapshot, TEST_STATE_DIR};

fn no_wait() -> LabOptions {
    LabOptions { wait_ready: false, ..LabOptions::default() }
}

fn snapshot() -> Result<Snapshot> {
    Ok(Snapshot::take(&bin_dir()?, &[Path::new(TEST_STATE_DIR), Path::new("/run/knet-lab.lock")]))
}

/// Takes snapshots until nothing is added compared with `before` (zombies need a moment to be reaped).
fn assert_nothing_left(before: &Snapshot) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = before.added_in(&snapshot()?);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("knet-lab down left behind:\n{}", left.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn up_exec_outside_servers_then_down_leaves_nothing() -> Result<()> {
    if !require_root("up_exec_outside_servers_then_down_leaves_nothing") {
        return Ok(());
    }
    // The snapshot is taken while this test holds the lab lock, so no other test's lab is in it.
    let mut lab = Lab::reserve().await?;
    let before = snapshot()?;
    lab.start(&no_wait()).await?;
    // The snapshot sees what the lab made (so an empty difference after `down` means something).
    let during = before.added_in(&snapshot()?);
    for kind in ["namespace: knet-worker-1", "link: ", "address: ", "route: 192.168.56.0/24", "process: ", "file: "] {
        assert!(during.iter().any(|d| d.starts_with(kind)), "the snapshot does not see {kind:?}: {during:?}");
    }
    let result = check_lab(&lab).await;
    if result.is_err() {
        eprintln!("{}", lab.status().unwrap_or_default());
    }
    lab.down()?;
    result?;
    assert_nothing_left(&before)
}

async fn check_lab(lab: &Lab) -> Result<()> {
    // exec: each host has its own address on the underlay and sees the others.
    for (host, ip) in [
        ("control-plane", "192.168.56.10"),
        ("worker-1", "192.168.56.11"),
        ("worker-2", "192.168.56.12"),
        ("outside", "192.168.56.200"),
    ] {
        let (ok, out, err) = lab.exec(host, &["ip", "-br", "addr", "show", "eth0"])?;
        assert!(ok && out.contains(&format!("{ip}/24")), "{host}: {out}{err}");
    }
    let (ok, out, err) =
        lab.exec("worker-2", &["curl", "-sSk", "--max-time", "5", "https://192.168.56.10:6443/readyz"])?;
    assert!(ok && out == "ok", "worker-2 cannot reach the API server: {out}{err}");
    let (ok, _, err) = lab.exec("nosuchhost", &["true"])?;
    assert!(!ok && err.contains("no lab host \"nosuchhost\""), "{err}");
    let (ok, _, _) = lab.exec("worker-1", &["false"])?;
    assert!(!ok, "exec passes the command's failure on");

    // The outside host's HTTP server answers the client's source IP; its DNS server answers example.com and
    // refuses the rest.
    let (ok, out, err) = lab.exec("worker-1", &["curl", "-sS", "--max-time", "5", "http://192.168.56.200/"])?;
    assert!(ok, "{err}");
    assert_eq!(out, "192.168.56.11\n");
    let (_, out, _) =
        lab.exec("control-plane", &["curl", "-sS", "--max-time", "5", "http://192.168.56.200/anything"])?;
    assert_eq!(out, "192.168.56.10\n");
    let (ok, out, err) = lab.exec("worker-2", &["dig", "+short", "+time=2", "@192.168.56.200", "example.com"])?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "192.168.56.200");
    let (_, out, _) =
        lab.exec("worker-2", &["dig", "+tcp", "+short", "+time=2", "@192.168.56.200", "www.example.com"])?;
    assert_eq!(out.trim(), "192.168.56.200", "DNS over TCP");
    let (_, out, _) = lab.exec("worker-2", &["dig", "+time=2", "@192.168.56.200", "kubernetes.io"])?;
    assert!(out.contains("status: REFUSED"), "{out}");
    // The outside host has no route to pod or Service CIDRs.
    let (_, routes, _) = lab.exec("outside", &["ip", "route"])?;
    assert!(!routes.contains("10.244.") && !routes.contains("10.96.") && !routes.contains("default"), "{routes}");

    // The machine reaches the underlay through its one veth: the API server answers kubectl.
    let root_routes =
        String::from_utf8_lossy(&Command::new("ip").args(["route", "show", "dev", "knet-lab0"]).output()?.stdout)
            .into_owned();
    assert_eq!(root_routes.lines().count(), 1, "{root_routes}");
    assert!(root_routes.starts_with("192.168.56.0/24 "), "{root_routes}");
    let out = lab.kubectl().run(&["get", "namespaces", "-o", "name"])?.ok()?;
    assert!(out.stdout.contains("namespace/default"), "{}", out.stdout);

    let status = lab.status()?;
    for needle in ["control-plane", "apiserver[", "controllers[", "worker-2", "dns[", "http["] {
        assert!(status.contains(needle), "status lacks {needle}:\n{status}");
    }
    Ok(())
}

#[tokio::test]
async fn down_after_up_was_killed_half_way() -> Result<()> {
    if !require_root("down_after_up_was_killed_half_way") {
        return Ok(());
    }
    let mut lab = Lab::reserve().await?;
    let before = snapshot()?;
    lab.mark_up();
    let mut up = lab.up_command(&no_wait()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // Half-way: the control plane runs, the workers are not up yet.
    let cp_pid = Path::new(TEST_STATE_DIR).join("control-plane/run/controllers.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cp_pid.exists() {
        if Instant::now() > deadline || up.try_wait()?.is_some() {
            bail!("knet-lab up never got to start the controllers");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    up.kill()?;
    up.wait()?;

    // What a node agent would leave: a pod sandbox namespace bind-mounted under the state dir, a process in it.
    let sandbox = Path::new(TEST_STATE_DIR).join("worker-1/pods/fake/netns");
    std::fs::create_dir_all(sandbox.parent().context("no parent")?)?;
    std::fs::write(&sandbox, "")?;
    let ok = Command::new("unshare").arg(format!("--net={}", sandbox.display())).arg("true").status()?.success();
    assert!(ok, "unshare could not make the sandbox namespace");
    let sleeper = Command::new("nsenter")
        .arg(format!("--net={}", sandbox.display()))
        .args(["setsid", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()?;
    let sleeper_pid = sleeper.id();
    std::thread::sleep(Duration::from_millis(200));

    lab.down()?;
    assert!(
        !Path::new(&format!("/proc/{sleeper_pid}/cmdline")).exists() || {
            std::fs::read_to_string(format!("/proc/{sleeper_pid}/stat")).unwrap_or_default().contains(") Z ")
        },
        "the process in the sandbox namespace survived"
    );
    drop(sleeper);
    assert_nothing_left(&before)
}
