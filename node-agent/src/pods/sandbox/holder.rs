//! The sandbox holder: `knet-node-agent __sandbox SPEC` (dispatched before the async runtime starts). It
//! detaches from the agent (fork + setsid, so it outlives agent restarts), creates the pod's namespaces
//! (network unless host-network, UTS unless host-network, mount), brings the pod's loopback up and builds the
//! pod's root: an overlayfs with the node's `/` as the read-only lower layer and a tmpfs upper layer, fresh
//! `/proc` and `/sys` (of the pod's network namespace), a private `/dev` (tmpfs with the node's null, zero,
//! full, random, urandom and tty bound in, the node's ptys, a private `/dev/shm`, `/dev/termination-log`),
//! tmpfs `/tmp` and `/run`; then `pivot_root` into it, writes image files, binds volumes and the managed
//! `/etc` files, and detaches the node's root, so the pod's mount namespace references nothing of other pods.
//! Then it reports `{"ready":{"pid":N}}` on stdout and sleeps until killed; containers join its namespaces.
//!
//! There is no PID namespace: processes of a pod see the node's processes (documented in BRIEF.md's spirit —
//! a pod here is network + mount + UTS isolation, enough for every networking lesson).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{fork, pivot_root, setsid, ForkResult};

use super::spec::{HolderReport, HolderSpec};

/// In-pod directory the node's root is moved to during set-up.
const OLD_ROOT: &str = "/.oldroot";

/// Entry point of the hidden subcommand; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    let Some(spec_path) = args.first() else {
        eprintln!("usage: knet-node-agent __sandbox SPEC.json");
        return 2;
    };
    let spec: HolderSpec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            report(&HolderReport::Failed { error: format!("reading sandbox spec {spec_path:?}: {e}") });
            return 1;
        }
    };
    // SAFETY: the process is single-threaded here (no async runtime, no threads started yet).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => 0,
        Ok(ForkResult::Child) => {
            let result = build(&spec);
            match result {
                Ok(()) => {
                    report(&HolderReport::Ready { pid: std::process::id() });
                    detach_stdio();
                    loop {
                        nix::unistd::pause();
                    }
                }
                Err(error) => {
                    report(&HolderReport::Failed { error });
                    1
                }
            }
        }
        Err(e) => {
            report(&HolderReport::Failed { error: format!("fork: {e}") });
            1
        }
    }
}

fn report(r: &HolderReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
    let _ = out.flush();
}

/// Points stdin, stdout and stderr at /dev/null so the agent's pipe closes.
pub fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe {
                nix::libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, what: impl FnOnce() -> String) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

fn build(spec: &HolderSpec) -> Result<(), String> {
    ctx(setsid(), || "setsid".into())?;
    let mut flags = CloneFlags::CLONE_NEWNS;
    if spec.new_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if spec.hostname.is_some() {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    ctx(unshare(flags), || "creating the pod's namespaces".into())?;
    if let Some(h) = &spec.hostname {
        ctx(nix::unistd::sethostname(h), || format!("setting hostname {h:?}"))?;
    }
    if spec.new_netns {
        loopback_up()?;
    }
    build_root(spec)
}

/// Brings `lo` up in the current network namespace.
fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq whose name is set below.
    unsafe {
        let sock = nix::libc::socket(nix::libc::AF_INET, nix::libc::SOCK_DGRAM | nix::libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(format!("socket for lo: {}", std::io::Error::last_os_error()));
        }
        let mut req: nix::libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as nix::libc::c_char;
        }
        let mut result = Ok(());
        if nix::libc::ioctl(sock, nix::libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            result = Err(format!("reading lo's flags: {}", std::io::Error::last_os_error()));
        } else {
            req.ifr_ifru.ifru_flags |= nix::libc::IFF_UP as nix::libc::c_short;
            if nix::libc::ioctl(sock, nix::libc::SIOCSIFFLAGS as _, &req) < 0 {
                result = Err(format!("bringing lo up: {}", std::io::Error::last_os_error()));
            }
        }
        nix::libc::close(sock);
        result
    }
}

fn mount_fs(source: &str, target: &Path, fstype: &str, flags: MsFlags, data: Option<&str>) -> Result<(), String> {
    ctx(mount(Some(source), target, Some(fstype), flags, data), || format!("mounting {fstype} on {}", target.display()))
}

fn build_root(spec: &HolderSpec) -> Result<(), String> {
    ctx(mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>), || {
        "making the pod's mounts private".into()
    })?;
    let layers = spec.pod_dir.join("layers");
    let rootfs = spec.pod_dir.join("rootfs");
    for d in [&layers, &rootfs] {
        ctx(std::fs::create_dir_all(d), || format!("creating {}", d.display()))?;
    }
    mount_fs("tmpfs", &layers, "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=755"))?;
    let (upper, work) = (layers.join("upper"), layers.join("work"));
    for d in [&upper, &work] {
        ctx(std::fs::create_dir_all(d), || format!("creating {}", d.display()))?;
    }
    let opts = format!("lowerdir=/,upperdir={},workdir={}", upper.display(), work.display());
    mount_fs("overlay", &rootfs, "overlay", MsFlags::empty(), Some(&opts))?;
    let sub = |p: &str| rootfs.join(p);
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for d in ["proc", "sys", "dev", "tmp", "run"] {
        ctx(std::fs::create_dir_all(sub(d)), || format!("creating /{d} in the pod's root"))?;
    }
    mount_fs("proc", &sub("proc"), "proc", nodev, None)?;
    mount_fs("sysfs", &sub("sys"), "sysfs", nodev | MsFlags::MS_RDONLY, None)?;
    build_dev(&sub("dev"))?;
    mount_fs("tmpfs", &sub("tmp"), "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    mount_fs("tmpfs", &sub("run"), "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=755"))?;
    let old = rootfs.join(OLD_ROOT.trim_start_matches('/'));
    ctx(std::fs::create_dir_all(&old), || "creating the old root's mount point".into())?;
    ctx(pivot_root(&rootfs, &old), || format!("pivot_root into {}", rootfs.display()))?;
    ctx(std::env::set_current_dir("/"), || "chdir /".into())?;
    for f in &spec.files {
        write_file(&f.path, &f.content, f.mode)?;
    }
    for m in &spec.mounts {
        let source = PathBuf::from(OLD_ROOT).join(m.source.strip_prefix("/").unwrap_or(&m.source));
        bind(&source, &m.target, m.read_only)?;
    }
    ctx(umount2(OLD_ROOT, MntFlags::MNT_DETACH), || "detaching the node's root".into())?;
    let _ = std::fs::remove_dir(OLD_ROOT);
    Ok(())
}

/// The devices a container gets, bound from the node.
const DEVICES: [&str; 7] = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"];

/// A container runtime's `/dev`: a tmpfs (so nothing written there reaches the node) with the usual devices (ptmx included),
/// the node's ptys (the shims' terminals live there), a private `/dev/shm` and `/dev/termination-log`.
fn build_dev(dev: &Path) -> Result<(), String> {
    mount_fs("tmpfs", dev, "tmpfs", MsFlags::MS_NOSUID, Some("mode=755,size=65536k"))?;
    for d in DEVICES {
        let target = dev.join(d);
        ctx(std::fs::write(&target, b""), || format!("creating /dev/{d}"))?;
        let source = PathBuf::from("/dev").join(d);
        ctx(mount(Some(&source), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>), || {
            format!("binding /dev/{d}")
        })?;
    }
    let pts = dev.join("pts");
    ctx(std::fs::create_dir_all(&pts), || "creating /dev/pts".into())?;
    ctx(mount(Some("/dev/pts"), &pts, None::<&str>, MsFlags::MS_BIND, None::<&str>), || "binding /dev/pts".into())?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(std::os::unix::fs::symlink(to, dev.join(link)), || format!("linking /dev/{link}"))?;
    }
    let shm = dev.join("shm");
    ctx(std::fs::create_dir_all(&shm), || "creating /dev/shm".into())?;
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("shm", &shm, "tmpfs", nodev, Some("mode=1777,size=65536k"))?;
    let log = dev.join("termination-log");
    ctx(std::fs::write(&log, b""), || "creating /dev/termination-log".into())?;
    use std::os::unix::fs::PermissionsExt;
    ctx(std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)), || "chmod /dev/termination-log".into())
}

fn write_file(path: &str, content: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let p = Path::new(path);
    if let Some(parent) = p.parent() {
        ctx(std::fs::create_dir_all(parent), || format!("creating {}", parent.display()))?;
    }
    // A symlink in the image (e.g. a log file linked to stdout) is replaced, never followed.
    if p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(p);
    }
    ctx(std::fs::write(p, content), || format!("writing {path}"))?;
    ctx(std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)), || format!("chmod {path}"))
}

/// Binds `source` (under the old root) onto `target` in the pod, creating the target like the source's type.
fn bind(source: &Path, target: &str, read_only: bool) -> Result<(), String> {
    let meta = ctx(std::fs::metadata(source), || format!("volume source {}", source.display()))?;
    let t = Path::new(target);
    if meta.is_dir() {
        ctx(std::fs::create_dir_all(t), || format!("creating mount point {target}"))?;
    } else {
        if let Some(parent) = t.parent() {
            ctx(std::fs::create_dir_all(parent), || format!("creating {}", parent.display()))?;
        }
        if !t.exists() {
            ctx(std::fs::write(t, b""), || format!("creating mount point {target}"))?;
        }
    }
    ctx(mount(Some(source), t, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>), || {
        format!("binding {} onto {target}", source.display())
    })?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        ctx(mount(None::<&str>, t, None::<&str>, flags, None::<&str>), || format!("making {target} read-only"))?;
    }
    Ok(())
}
