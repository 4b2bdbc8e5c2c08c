//! Container supervisors ("shims", after containerd's): each container process runs under a small process of
//! its own (`knet-node-agent __shim SPEC`, see `process`) that joins nothing itself, starts the container in
//! the pod's namespaces, holds its stdio (a pty with `tty`), writes the CRI log file (`crilog`), serves attach
//! clients on a unix socket (`proto`), and records the exit status in a file — so containers keep running,
//! logging and can be attached to while the agent restarts, and their exit codes are known afterwards.
//! This module is the agent's side: starting a shim, reading its records, attaching, signalling, waiting.

pub mod crilog;
pub mod process;
pub mod proto;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, watch};

use super::sandbox::{run_detached, ProcessId};
use crate::server::runtime::{Attachment, TerminalSize};

/// How long a shim may take to start its container.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a shim runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimSpec {
    /// The sandbox holder whose namespaces the container joins.
    pub holder: ProcessId,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// The CRI log file.
    pub log_path: PathBuf,
    /// Where the exit record goes.
    pub exit_path: PathBuf,
    /// Where the shim records itself once the container runs.
    pub state_path: PathBuf,
    /// The attach socket.
    pub socket_path: PathBuf,
    /// `runAsUser`/`runAsGroup` (and supplementary groups); `None` runs as root.
    #[serde(default)]
    pub user: Option<RunAs>,
}

/// The identity a container runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// A running container as its shim recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimState {
    pub shim: ProcessId,
    /// The container's main process.
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, or `StartError` when the process could not be started.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: String,
}

/// The one line a shim prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShimReport {
    Started(ShimState),
    Failed(ExitRecord),
}

/// Why a shim could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("writing the container spec {path}: {source}")]
    WriteSpec { path: String, source: std::io::Error },
    #[error("starting the container's supervisor: {0}")]
    Spawn(std::io::Error),
    #[error("the container's supervisor printed {0:?}")]
    BadReport(String),
}

/// Starts a shim for `spec` (written to `spec_path`); returns how the start went.
pub async fn start(exe: &Path, spec_path: &Path, spec: &ShimSpec) -> Result<ShimReport, ShimError> {
    std::fs::write(spec_path, serde_json::to_vec_pretty(spec).unwrap_or_default())
        .map_err(|source| ShimError::WriteSpec { path: spec_path.display().to_string(), source })?;
    let log = spec_path.with_file_name("shim.log");
    let line = run_detached(exe, &["__shim".as_ref(), spec_path.as_os_str()], Some(&log), START_TIMEOUT)
        .await
        .map_err(ShimError::Spawn)?;
    serde_json::from_str(&line).map_err(|_| ShimError::BadReport(line))
}

/// Reads a JSON record file, `None` if it is missing or unreadable.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes a JSON record file atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

/// Waits until process `p` has ended (at once if it already has).
pub async fn wait_exit(p: ProcessId) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd =
        unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, p.pid as nix::libc::c_long, 0 as nix::libc::c_long) };
    if fd < 0 {
        return;
    }
    // SAFETY: the descriptor was just returned by pidfd_open and is owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pid may have been reused between reading the record and opening the descriptor.
    if !p.alive() {
        return;
    }
    // SAFETY: the OwnedFd stays open for as long as the AsyncFd owns it.
    match unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) } {
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(_) => {
            while p.alive() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connect(socket: &Path, stdin: bool) -> std::io::Result<(UnixStream, bool, bool)> {
    let mut stream = UnixStream::connect(socket).await?;
    let hello = serde_json::json!({ "stdin": stdin }).to_string();
    proto::write_frame(&mut stream, proto::HELLO, hello.as_bytes()).await?;
    let Some((proto::INFO, info)) = proto::read_frame(&mut stream).await? else {
        return Err(std::io::Error::other("the container's supervisor did not answer"));
    };
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap_or_default();
    let tty = info["tty"].as_bool().unwrap_or(false);
    let has_stdin = info["stdin"].as_bool().unwrap_or(false);
    Ok((stream, tty, has_stdin))
}

/// Sends `signal` to the container's main process through its shim (which knows whether it still runs).
pub async fn signal(socket: &Path, signal: i32) -> std::io::Result<()> {
    let (mut stream, _, _) = connect(socket, false).await?;
    proto::write_frame(&mut stream, proto::SIGNAL, &signal.to_be_bytes()).await
}

/// Attaches to the container's stdio.
pub async fn attach(socket: &Path) -> std::io::Result<Attachment> {
    let (stream, tty, has_stdin) = connect(socket, true).await?;
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, out_rx) = broadcast::channel::<Bytes>(256);
    let (err_tx, err_rx) = broadcast::channel::<Bytes>(256);
    let (exit_tx, exit_rx) = watch::channel::<Option<i32>>(None);
    tokio::spawn(async move {
        // Keep the senders alive until the shim ends the stream.
        while let Ok(Some((kind, payload))) = proto::read_frame(&mut rd).await {
            match kind {
                proto::STDOUT => {
                    let _ = out_tx.send(Bytes::from(payload));
                }
                proto::STDERR => {
                    let _ = err_tx.send(Bytes::from(payload));
                }
                proto::EXIT => {
                    let code = payload.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(-1);
                    let _ = exit_tx.send(Some(code));
                }
                _ => {}
            }
        }
        drop(out_tx);
        drop(err_tx);
    });
    let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(64);
    let (resize_tx, mut resize_rx) = mpsc::channel::<TerminalSize>(8);
    tokio::spawn(async move {
        let mut stdin_open = true;
        loop {
            tokio::select! {
                data = in_rx.recv(), if stdin_open => match data {
                    Some(d) => {
                        if proto::write_frame(&mut wr, proto::STDIN, &d).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        stdin_open = false;
                        if proto::write_frame(&mut wr, proto::STDIN_CLOSE, &[]).await.is_err() {
                            break;
                        }
                    }
                },
                size = resize_rx.recv() => match size {
                    Some(s) => {
                        let mut p = s.width.to_be_bytes().to_vec();
                        p.extend_from_slice(&s.height.to_be_bytes());
                        if proto::write_frame(&mut wr, proto::RESIZE, &p).await.is_err() {
                            break;
                        }
                    }
                    None if !stdin_open => break,
                    None => {
                        // No more resizes; keep forwarding stdin.
                        while let Some(d) = in_rx.recv().await {
                            if proto::write_frame(&mut wr, proto::STDIN, &d).await.is_err() {
                                return;
                            }
                        }
                        let _ = proto::write_frame(&mut wr, proto::STDIN_CLOSE, &[]).await;
                        break;
                    }
                },
            }
        }
    });
    Ok(Attachment {
        tty,
        stdin: has_stdin.then_some(in_tx),
        stdout: out_rx,
        stderr: (!tty).then_some(err_rx),
        resize: tty.then_some(resize_tx),
        exited: exit_rx,
    })
}
