//! The shim process: `knet-node-agent __shim SPEC` (dispatched before the agent's runtime starts). It binds
//! the attach socket, forks into the background (setsid), starts the container — joining the holder's network,
//! UTS and mount namespaces, in a session of its own, with a pty when `tty`, killed if the shim dies — reports
//! `{"started":…}` or `{"failed":…}` on stdout, and then, on a single-threaded runtime: copies output to the
//! CRI log and to attach clients, feeds stdin from clients, forwards signals and resizes, and when the
//! container's main process ends kills what is left of its process group and writes the exit record.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nix::unistd::{fork, setsid, ForkResult};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};

use super::crilog::{self, LineSplitter};
use super::{proto, write_json, ExitRecord, ShimReport, ShimSpec, ShimState};
use crate::pods::sandbox::holder::detach_stdio;
use crate::pods::sandbox::ProcessId;

/// Entry point of the hidden subcommand; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    let Some(spec_path) = args.first() else {
        eprintln!("usage: knet-node-agent __shim SPEC.json");
        return 2;
    };
    let spec: ShimSpec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            report(&ShimReport::Failed(start_error(None, format!("reading container spec {spec_path:?}: {e}"))));
            return 1;
        }
    };
    let prepared = match prepare(&spec) {
        Ok(p) => p,
        Err(msg) => {
            let rec = start_error(None, msg);
            let _ = write_json(&spec.exit_path, &rec);
            report(&ShimReport::Failed(rec));
            return 1;
        }
    };
    // SAFETY: single-threaded here: nothing but this thread exists before the runtime below is built.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => 0,
        Ok(ForkResult::Child) => {
            let _ = setsid();
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    report(&ShimReport::Failed(start_error(None, format!("starting the shim's runtime: {e}"))));
                    return 1;
                }
            };
            rt.block_on(run(spec, prepared))
        }
        Err(e) => {
            report(&ShimReport::Failed(start_error(None, format!("fork: {e}"))));
            1
        }
    }
}

fn report(r: &ShimReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
    let _ = out.flush();
}

fn start_error(started_at: Option<String>, message: String) -> ExitRecord {
    ExitRecord {
        exit_code: 128,
        signal: None,
        reason: "StartError".into(),
        message: Some(message),
        started_at,
        finished_at: crilog::now(),
    }
}

/// What is opened before forking: the namespaces to join, the socket, the log.
struct Prepared {
    namespaces: Vec<(OwnedFd, nix::sched::CloneFlags)>,
    listener: std::os::unix::net::UnixListener,
    log: std::fs::File,
}

fn prepare(spec: &ShimSpec) -> Result<Prepared, String> {
    if !spec.holder.alive() {
        return Err("the pod's sandbox is gone".into());
    }
    let mut namespaces = Vec::new();
    for (name, flag) in crate::pods::enter::NAMESPACES {
        let path = format!("/proc/{}/ns/{name}", spec.holder.pid);
        let f = std::fs::File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
        namespaces.push((OwnedFd::from(f), flag));
    }
    if !spec.holder.alive() {
        return Err("the pod's sandbox is gone".into());
    }
    let _ = std::fs::remove_file(&spec.socket_path);
    if let Some(parent) = spec.socket_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(&spec.socket_path)
        .map_err(|e| format!("binding {}: {e}", spec.socket_path.display()))?;
    if let Some(parent) = spec.log_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(|e| format!("opening log {}: {e}", spec.log_path.display()))?;
    Ok(Prepared { namespaces, listener, log })
}

/// The container's stdio on the shim's side.
enum Stdio3 {
    Pty {
        master: Arc<AsyncFd<OwnedFd>>,
    },
    Pipes {
        stdin: Option<tokio::process::ChildStdin>,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
}

fn exec_message(argv0: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        if argv0.contains('/') {
            format!("failed to start container process: exec: {argv0:?}: no such file or directory")
        } else {
            format!("failed to start container process: exec: {argv0:?}: executable file not found in $PATH")
        }
    } else {
        format!("failed to start container process: exec: {argv0:?}: {e}")
    }
}

fn spawn(spec: &ShimSpec, prepared: &Prepared) -> Result<(tokio::process::Child, Stdio3), String> {
    let argv0 = spec.argv.first().cloned().unwrap_or_default();
    let mut cmd = tokio::process::Command::new(&argv0);
    cmd.args(&spec.argv[1..]).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    let ns: Vec<(i32, i32)> = prepared.namespaces.iter().map(|(fd, f)| (fd.as_raw_fd(), f.bits())).collect();
    let dir = spec.working_dir.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into());
    // Like runc, a missing working directory is created (each ancestor, inside the pod's root).
    let mut ancestors = Vec::new();
    let mut acc = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(part);
        ancestors
            .push(std::ffi::CString::new(acc.clone()).map_err(|_| "the working directory has a NUL byte".to_string())?);
    }
    let dir = std::ffi::CString::new(dir).map_err(|_| "the working directory has a NUL byte".to_string())?;
    let user = spec.user.clone();
    let groups: Vec<nix::libc::gid_t> = user.as_ref().map(|u| u.groups.clone()).unwrap_or_default();
    let tty = spec.tty;
    let mut pty_master = None;
    if tty {
        let pty = nix::pty::openpty(None, None).map_err(|e| format!("opening a pty: {e}"))?;
        let slave = pty.slave;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("duplicating the pty: {e}"));
        cmd.stdin(Stdio::from(dup(&slave)?)).stdout(Stdio::from(dup(&slave)?)).stderr(Stdio::from(dup(&slave)?));
        pty_master = Some(pty.master);
        drop(slave);
    } else {
        cmd.stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    // SAFETY: runs in the forked child before exec; only async-signal-safe calls on values prepared before.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, flag) in &ns {
                if nix::libc::setns(*fd, *flag) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for a in &ancestors {
                nix::libc::mkdir(a.as_ptr(), 0o755);
            }
            if nix::libc::chdir(dir.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            nix::libc::setsid();
            if let Some(u) = &user {
                if nix::libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || nix::libc::setgid(u.gid) != 0
                    || nix::libc::setuid(u.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if tty && nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in
                [nix::libc::SIGTERM, nix::libc::SIGINT, nix::libc::SIGHUP, nix::libc::SIGPIPE, nix::libc::SIGQUIT]
            {
                nix::libc::signal(sig, nix::libc::SIG_DFL);
            }
            if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| exec_message(&argv0, &e))?;
    let stdio = match pty_master {
        Some(master) => {
            nix::fcntl::fcntl(master.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
                .map_err(|e| format!("pty: {e}"))?;
            // SAFETY: the OwnedFd stays open for as long as the AsyncFd owns it.
            let afd = unsafe { AsyncFd::register(master) }.map_err(|e| format!("pty: {e}"))?;
            Stdio3::Pty { master: Arc::new(afd) }
        }
        None => Stdio3::Pipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().ok_or("no stdout pipe")?,
            stderr: child.stderr.take().ok_or("no stderr pipe")?,
        },
    };
    Ok((child, stdio))
}

/// Shared state of the running container.
struct Shared {
    out: broadcast::Sender<(u8, Bytes)>,
    exited: watch::Receiver<Option<i32>>,
    stdin: Mutex<Option<mpsc::Sender<Option<Bytes>>>>,
    pty: Option<Arc<AsyncFd<OwnedFd>>>,
    pid: i32,
    /// Set as soon as the main process is reaped: its pid may be reused from then on.
    reaped: std::sync::atomic::AtomicBool,
    tty: bool,
    has_stdin: bool,
    stdin_once: bool,
}

async fn run(spec: ShimSpec, prepared: Prepared) -> i32 {
    let started_at = crilog::now();
    let (mut child, stdio) = match spawn(&spec, &prepared) {
        Ok(x) => x,
        Err(msg) => {
            let rec = start_error(Some(started_at), msg);
            let _ = write_json(&spec.exit_path, &rec);
            let _ = std::fs::remove_file(&spec.socket_path);
            report(&ShimReport::Failed(rec));
            return 1;
        }
    };
    let pid = child.id().unwrap_or(0);
    let state = ShimState {
        shim: ProcessId::of(std::process::id()).unwrap_or(ProcessId { pid: std::process::id(), start_time: 0 }),
        pid,
        started_at: started_at.clone(),
    };
    let _ = write_json(&spec.state_path, &state);
    report(&ShimReport::Started(state));
    detach_stdio();
    drop(prepared.namespaces);

    let (out_tx, _) = broadcast::channel::<(u8, Bytes)>(1024);
    let (exit_tx, exit_rx) = watch::channel::<Option<i32>>(None);
    let log = Arc::new(Mutex::new(prepared.log));
    let (stdin_tx, stdin_rx) = mpsc::channel::<Option<Bytes>>(64);
    let mut readers = tokio::task::JoinSet::new();
    let pty = match stdio {
        Stdio3::Pty { master } => {
            readers.spawn(pump_pty(master.clone(), log.clone(), out_tx.clone()));
            tokio::spawn(feed_pty(master.clone(), stdin_rx));
            Some(master)
        }
        Stdio3::Pipes { stdin, stdout, stderr } => {
            readers.spawn(pump(stdout, "stdout", proto::STDOUT, log.clone(), out_tx.clone()));
            readers.spawn(pump(stderr, "stderr", proto::STDERR, log.clone(), out_tx.clone()));
            if let Some(stdin) = stdin {
                tokio::spawn(feed_pipe(stdin, stdin_rx));
            }
            None
        }
    };
    let shared = Arc::new(Shared {
        out: out_tx,
        exited: exit_rx,
        stdin: Mutex::new((spec.stdin).then_some(stdin_tx)),
        pty,
        pid: pid as i32,
        reaped: std::sync::atomic::AtomicBool::new(false),
        tty: spec.tty,
        has_stdin: spec.stdin,
        stdin_once: spec.stdin_once,
    });
    let _ = prepared.listener.set_nonblocking(true);
    let mut clients = tokio::task::JoinSet::new();
    let accept = UnixListener::from_std(prepared.listener);
    let status = loop {
        tokio::select! {
            status = child.wait() => {
                shared.reaped.store(true, std::sync::atomic::Ordering::SeqCst);
                break status;
            }
            conn = async { match &accept { Ok(l) => l.accept().await, Err(_) => std::future::pending().await } } => {
                if let Ok((stream, _)) = conn {
                    clients.spawn(serve_client(stream, shared.clone()));
                }
            }
        }
    };
    // The main process ended: what it left running in its session goes too (a container without PID
    // namespace has no kernel to do that), then the output is drained.
    if pid > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while readers.join_next().await.is_some() {} }).await;
    let (code, signal) = match &status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (c, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            _ => (255, None),
        },
        Err(_) => (255, None),
    };
    let rec = ExitRecord {
        exit_code: code,
        signal,
        reason: if code == 0 { "Completed".into() } else { "Error".into() },
        message: None,
        started_at: Some(started_at),
        finished_at: crilog::now(),
    };
    let _ = write_json(&spec.exit_path, &rec);
    let _ = exit_tx.send(Some(code));
    let _ = std::fs::remove_file(&spec.socket_path);
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while clients.join_next().await.is_some() {} }).await;
    0
}

fn log_and_send(log: &Mutex<std::fs::File>, splitter: &mut LineSplitter, stream: &str, data: Option<&[u8]>) {
    let records = match data {
        Some(d) => splitter.feed(d),
        None => splitter.finish().into_iter().collect(),
    };
    if let Ok(mut f) = log.lock() {
        let _ = crilog::write_records(&mut f, stream, &records);
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    stream: &'static str,
    kind: u8,
    log: Arc<Mutex<std::fs::File>>,
    out: broadcast::Sender<(u8, Bytes)>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log_and_send(&log, &mut splitter, stream, Some(&buf[..n]));
                let _ = out.send((kind, Bytes::copy_from_slice(&buf[..n])));
            }
        }
    }
    log_and_send(&log, &mut splitter, stream, None);
}

async fn pump_pty(master: Arc<AsyncFd<OwnedFd>>, log: Arc<Mutex<std::fs::File>>, out: broadcast::Sender<(u8, Bytes)>) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let Ok(mut guard) = master.readable().await else { break };
        let res = guard.try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from));
        match res {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                log_and_send(&log, &mut splitter, "stdout", Some(&buf[..n]));
                let _ = out.send((proto::STDOUT, Bytes::copy_from_slice(&buf[..n])));
            }
            Err(_would_block) => continue,
        }
    }
    log_and_send(&log, &mut splitter, "stdout", None);
}

async fn feed_pipe(mut stdin: tokio::process::ChildStdin, mut rx: mpsc::Receiver<Option<Bytes>>) {
    while let Some(Some(data)) = rx.recv().await {
        if stdin.write_all(&data).await.is_err() {
            break;
        }
    }
    // Dropping the pipe is the container's end of input.
}

async fn write_pty(master: &AsyncFd<OwnedFd>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        let Ok(mut guard) = master.writable().await else { return false };
        match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(_)) => return false,
            Err(_would_block) => continue,
        }
    }
    true
}

async fn feed_pty(master: Arc<AsyncFd<OwnedFd>>, mut rx: mpsc::Receiver<Option<Bytes>>) {
    while let Some(Some(data)) = rx.recv().await {
        if !write_pty(&master, &data).await {
            return;
        }
    }
    // End of input on a terminal: the EOF character.
    let _ = write_pty(&master, &[4]).await;
}

fn close_stdin(shared: &Shared) {
    if let Ok(mut s) = shared.stdin.lock() {
        if let Some(tx) = s.take() {
            let _ = tx.try_send(None);
        }
    }
}

async fn serve_client(mut stream: UnixStream, shared: Arc<Shared>) {
    let Ok(Some((proto::HELLO, _))) = proto::read_frame(&mut stream).await else { return };
    let info = serde_json::json!({ "tty": shared.tty, "stdin": shared.has_stdin }).to_string();
    let mut out = shared.out.subscribe();
    let mut exited = shared.exited.clone();
    let (mut rd, mut wr) = stream.into_split();
    if proto::write_frame(&mut wr, proto::INFO, info.as_bytes()).await.is_err() {
        return;
    }
    let mut sent_stdin = false;
    let (frames_tx, mut frames_rx) = mpsc::channel::<Option<(u8, Vec<u8>)>>(64);
    let reader = tokio::spawn(async move {
        loop {
            match proto::read_frame(&mut rd).await {
                Ok(Some(f)) => {
                    if frames_tx.send(Some(f)).await.is_err() {
                        break;
                    }
                }
                _ => {
                    let _ = frames_tx.send(None).await;
                    break;
                }
            }
        }
    });
    loop {
        let exit_code = *exited.borrow();
        if let Some(code) = exit_code {
            // Flush what is still queued, then the exit code.
            while let Ok((kind, data)) = out.try_recv() {
                let _ = proto::write_frame(&mut wr, kind, &data).await;
            }
            let _ = proto::write_frame(&mut wr, proto::EXIT, &code.to_be_bytes()).await;
            break;
        }
        tokio::select! {
            msg = out.recv() => match msg {
                Ok((kind, data)) => {
                    if proto::write_frame(&mut wr, kind, &data).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {}
            },
            _ = exited.changed() => {}
            frame = frames_rx.recv() => match frame.flatten() {
                Some((proto::STDIN, data)) => {
                    sent_stdin = true;
                    let tx = shared.stdin.lock().ok().and_then(|s| s.clone());
                    if let Some(tx) = tx {
                        let _ = tx.send(Some(Bytes::from(data))).await;
                    }
                }
                Some((proto::STDIN_CLOSE, _)) => {
                    if shared.stdin_once && sent_stdin {
                        close_stdin(&shared);
                    }
                }
                Some((proto::RESIZE, p)) if p.len() == 4 => {
                    if let Some(m) = &shared.pty {
                        let ws = nix::libc::winsize {
                            ws_col: u16::from_be_bytes([p[0], p[1]]),
                            ws_row: u16::from_be_bytes([p[2], p[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
                        unsafe {
                            nix::libc::ioctl(m.get_ref().as_raw_fd(), nix::libc::TIOCSWINSZ as _, &ws);
                        }
                    }
                }
                Some((proto::SIGNAL, p)) if p.len() == 4 => {
                    let sig = i32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    if !shared.reaped.load(std::sync::atomic::Ordering::SeqCst) && shared.pid > 0 {
                        // SAFETY: kill(2) on the shim's own, not yet reaped, child.
                        unsafe {
                            nix::libc::kill(shared.pid, sig);
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if shared.stdin_once && sent_stdin {
                        close_stdin(&shared);
                    }
                    break;
                }
            },
        }
    }
    reader.abort();
}
