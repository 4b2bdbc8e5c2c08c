//! The kernel side: netlink connections in the host's and the container's network namespaces, and the
//! link, address, route and sysctl operations ADD, DEL and CHECK apply. Thin appliers: what to do is decided
//! in `plan`.

pub mod addr;
pub mod link;
pub mod netns;
pub mod route;
pub mod sysctl;

use std::path::PathBuf;

/// Why a kernel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("opening network namespace {path}: {source}")]
    OpenNetns { path: PathBuf, source: std::io::Error },
    #[error("entering network namespace {path}: {source}")]
    EnterNetns { path: PathBuf, source: nix::Error },
    #[error("opening a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{op}: {detail}")]
    Netlink { op: String, detail: String, errno: Option<i32> },
    #[error("{0}")]
    State(String),
    /// Something the request would create exists already.
    #[error("{0}")]
    Exists(String),
    #[error("writing {path}: {source}")]
    Sysctl { path: String, source: std::io::Error },
}

impl NetError {
    /// The errno the kernel answered with, for netlink failures.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink { errno, .. } => *errno,
            _ => None,
        }
    }
}

/// The positive errno of a netlink error answer.
pub fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Wraps a netlink error with what was being done.
pub fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    move |e| {
        let detail = match &e {
            rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
            other => other.to_string(),
        };
        NetError::Netlink { op: op.into(), detail, errno: errno_of(&e) }
    }
}
