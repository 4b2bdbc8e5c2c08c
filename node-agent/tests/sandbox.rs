//! The sandbox holder and container shims as real processes (root): namespaces, the pod's root, CRI logs,
//! exit records, attach, signals. Skipped with a reason outside CI when not root; fails in CI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use knet_node_agent::pods::sandbox::spec::{FileSpec, HolderSpec, MountSpec};
use knet_node_agent::pods::sandbox::{self, ProcessId};
use knet_node_agent::pods::shim::{self, ExitRecord, ShimReport, ShimSpec};

fn root_or_skip() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs root (CI=true)");
    }
    eprintln!("skipping: needs root");
    false
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_knet-node-agent"))
}

struct Pod {
    dir: tempfile::TempDir,
    holder: ProcessId,
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.holder.signal(nix::sys::signal::Signal::SIGKILL);
    }
}

async fn pod(files: Vec<FileSpec>, mounts: impl FnOnce(&Path) -> Vec<MountSpec>) -> Pod {
    let dir = tempfile::tempdir().unwrap();
    let mounts = mounts(dir.path());
    let spec = HolderSpec {
        pod_dir: dir.path().to_path_buf(),
        new_netns: true,
        hostname: Some("test-pod".into()),
        files,
        mounts,
    };
    let holder = sandbox::start(&exe(), &dir.path().join("holder.json"), &spec).await.unwrap();
    Pod { dir, holder }
}

fn spec(pod: &Pod, name: &str, argv: &[&str], tty: bool, stdin: bool) -> (PathBuf, ShimSpec) {
    let d = pod.dir.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    let s = ShimSpec {
        holder: pod.holder,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()), ("GREETING".into(), "hi".into())],
        working_dir: None,
        tty,
        stdin,
        stdin_once: stdin,
        log_path: d.join("0.log"),
        exit_path: d.join("exit.json"),
        state_path: d.join("state.json"),
        socket_path: d.join("a.sock"),
        user: None,
    };
    (d.join("spec.json"), s)
}

async fn wait_exit(s: &ShimSpec) -> ExitRecord {
    for _ in 0..500 {
        if let Some(r) = shim::read_json::<ExitRecord>(&s.exit_path) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no exit record at {}", s.exit_path.display());
}

fn log_texts(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.splitn(4, ' ').skip(1).collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test]
async fn a_container_runs_in_the_pods_namespaces_and_root() {
    if !root_or_skip() {
        return;
    }
    let p = pod(
        vec![FileSpec { path: "/etc/knet-test/conf".into(), content: "from-image\n".into(), mode: 0o644 }],
        |dir| {
            let vol = dir.join("vol");
            std::fs::create_dir_all(&vol).unwrap();
            std::fs::write(vol.join("key"), "secret-value").unwrap();
            std::fs::write(dir.join("hosts"), "1.2.3.4\tpod-entry\n").unwrap();
            vec![
                MountSpec { source: vol, target: "/var/run/secrets/test".into(), read_only: true },
                MountSpec { source: dir.join("hosts"), target: "/etc/hosts".into(), read_only: false },
            ]
        },
    )
    .await;
    let script = "hostname; cat /etc/knet-test/conf; cat /var/run/secrets/test/key; echo; cat /etc/hosts; \
                  echo $GREETING; ls /sys/class/net | tr '\\n' ' '; echo; touch /var/run/secrets/test/x 2>/dev/null || echo read-only; \
                  echo written > /etc/pod-file; echo dev > /dev/knet-sandbox-test; ls /dev | tr '\\n' ' '; echo; \
                  echo err >&2; exit 3";
    let (path, s) = spec(&p, "c1", &["/bin/sh", "-c", script], false, false);
    let report = shim::start(&exe(), &path, &s).await.unwrap();
    let ShimReport::Started(state) = report else { panic!("{report:?}") };
    assert!(state.pid > 0);
    let rec = wait_exit(&s).await;
    assert_eq!((rec.exit_code, rec.reason.as_str()), (3, "Error"));
    let lines = log_texts(&s.log_path);
    let stdout: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("stdout F ")).collect();
    assert_eq!(stdout[0], "test-pod");
    assert_eq!(stdout[1], "from-image");
    assert_eq!(stdout[2], "secret-value");
    assert_eq!(stdout[3], "1.2.3.4\tpod-entry");
    assert_eq!(stdout[4], "hi");
    assert_eq!(stdout[5].trim(), "lo", "the pod's /sys shows its own network namespace");
    assert_eq!(stdout[6], "read-only");
    for dev in ["null", "zero", "urandom", "tty", "ptmx", "pts", "shm", "termination-log", "fd"] {
        assert!(stdout[7].split(' ').any(|d| d == dev), "/dev has no {dev}: {}", stdout[7]);
    }
    assert!(!Path::new("/dev/knet-sandbox-test").exists(), "a pod's /dev write reached the node");
    assert!(lines.contains(&"stderr F err".to_string()), "{lines:?}");
    // Files the pod writes never reach the node.
    assert!(!Path::new("/etc/pod-file").exists());
    // The holder's mount namespace holds nothing of the node's tree under the pod dir.
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", p.holder.pid)).unwrap();
    assert!(!mounts.contains("/run/netns"), "{mounts}");
}

#[tokio::test]
async fn a_start_error_is_recorded() {
    if !root_or_skip() {
        return;
    }
    let p = pod(vec![], |_| vec![]).await;
    let (path, s) = spec(&p, "c1", &["no-such-program"], false, false);
    let report = shim::start(&exe(), &path, &s).await.unwrap();
    let ShimReport::Failed(rec) = report else { panic!("{report:?}") };
    assert_eq!(rec.reason, "StartError");
    assert_eq!(rec.exit_code, 128);
    assert!(rec.message.unwrap().contains("\"no-such-program\": executable file not found in $PATH"));
}

#[tokio::test]
async fn attach_with_a_tty_and_signals() {
    if !root_or_skip() {
        return;
    }
    let p = pod(vec![], |_| vec![]).await;
    let (path, s) = spec(&p, "c1", &["/bin/sh"], true, true);
    let ShimReport::Started(_) = shim::start(&exe(), &path, &s).await.unwrap() else { panic!() };
    let mut a = shim::attach(&s.socket_path).await.unwrap();
    assert!(a.tty);
    let stdin = a.stdin.clone().unwrap();
    stdin.send(bytes::Bytes::from_static(b"echo attached-$((40+2))\n")).await.unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("attached-42") {
        let chunk = tokio::time::timeout_at(deadline, a.stdout.recv()).await.expect("output").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // A second client sees output too.
    let mut b = shim::attach(&s.socket_path).await.unwrap();
    stdin.send(bytes::Bytes::from_static(b"echo second\n")).await.unwrap();
    let mut seen_b = String::new();
    while !seen_b.contains("second") {
        let chunk = tokio::time::timeout_at(deadline, b.stdout.recv()).await.expect("output").unwrap();
        seen_b.push_str(&String::from_utf8_lossy(&chunk));
    }
    shim::signal(&s.socket_path, nix::libc::SIGKILL).await.unwrap();
    let rec = wait_exit(&s).await;
    assert_eq!((rec.exit_code, rec.signal), (137, Some(9)));
    tokio::time::timeout(Duration::from_secs(5), a.exited.wait_for(|c| c.is_some())).await.unwrap().unwrap();
}
