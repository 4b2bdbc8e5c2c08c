//! What the kubelet API needs from the pod runtime, as a trait so the streaming protocols are tested without
//! pods: where to run an `exec` (a process inside the pod's namespaces, the container's environment), a
//! connection to a running container's stdio for `attach`, the container's log files for `logs`, and the pod's
//! network namespace for `portforward`. `pods` implements it; tests implement it with plain processes.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch};

/// The container a request names (`/exec/{namespace}/{pod}/{container}` etc.).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    /// The pod's UID when the request pins one.
    pub uid: Option<String>,
    pub container: String,
}

/// Where and how to start a process "in" a container.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    /// A process that lives in the pod's network, mount and UTS namespaces (the sandbox); the new process
    /// joins its namespaces through `/proc/{pid}/ns/*`.
    pub pid: u32,
    /// The container's environment, in order (what `printenv` shows in the container).
    pub env: Vec<(String, String)>,
    /// The container's `workingDir`, inside the pod's root.
    pub working_dir: Option<PathBuf>,
}

/// A terminal size, as kubectl sends it on the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// A live connection to a running container's stdio (for `attach`). Output is broadcast so several clients can
/// attach; input from every client goes to the one stdin.
pub struct Attachment {
    /// The container was started with a terminal (`tty: true`): one output stream, resize allowed.
    pub tty: bool,
    /// The container's stdin, when it has one (`stdin: true`).
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// stdout (with a terminal: everything the terminal prints).
    pub stdout: broadcast::Receiver<Bytes>,
    /// stderr, without a terminal.
    pub stderr: Option<broadcast::Receiver<Bytes>>,
    /// Terminal resizes, with a terminal.
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    /// Becomes `Some(exit code)` when the container's process ends.
    pub exited: watch::Receiver<Option<i32>>,
}

/// A container's log files, in the CRI logging format (`<RFC3339Nano> <stdout|stderr> <F|P> <text>` per line).
#[derive(Debug, Clone)]
pub struct LogFiles {
    /// The running (or last) instance's log.
    pub current: PathBuf,
    /// The previous instance's log (`--previous`), when the container restarted.
    pub previous: Option<PathBuf>,
    /// The current instance still runs (`--follow` keeps reading until it ends).
    pub running: bool,
}

/// Why the runtime cannot serve a request; the server maps these to HTTP answers.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such pod or container on this node (404).
    #[error("{0}")]
    NotFound(String),
    /// The container exists but cannot serve this now, e.g. it is not running or has no stdin (400).
    #[error("{0}")]
    BadRequest(String),
    /// Something failed on the node (500).
    #[error("{0}")]
    Internal(String),
}

/// The pod runtime as the kubelet API sees it.
#[async_trait::async_trait]
pub trait StreamingRuntime: Send + Sync + 'static {
    /// Where to start an `exec` in a running container.
    async fn exec_target(&self, container: &ContainerRef) -> Result<ExecTarget, RuntimeError>;
    /// Connects to a running container's stdio.
    async fn attach(&self, container: &ContainerRef) -> Result<Attachment, RuntimeError>;
    /// The container's log files.
    async fn log_files(&self, container: &ContainerRef) -> Result<LogFiles, RuntimeError>;
    /// The path of the pod's network namespace (for port-forwarding into it).
    async fn pod_netns(&self, namespace: &str, pod: &str, uid: Option<&str>) -> Result<PathBuf, RuntimeError>;
}
