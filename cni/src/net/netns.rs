//! Network namespaces: opening one by path, and netlink connections bound to one. A connection for another
//! namespace is opened from a short-lived thread that setns()'d into it: a socket keeps the namespace it was
//! created in, so the rest of the plugin never changes namespace.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use rtnetlink::Handle;

use super::NetError;

/// An open network namespace (a `/run/netns/NAME` or `/proc/PID/ns/net` file).
#[derive(Debug)]
pub struct Netns {
    pub path: PathBuf,
    pub file: File,
}

impl Netns {
    /// Opens the namespace at `path`; `Ok(None)` when it does not exist.
    pub fn open(path: &Path) -> Result<Option<Netns>, NetError> {
        match File::open(path) {
            Ok(file) => Ok(Some(Netns { path: path.to_path_buf(), file })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NetError::OpenNetns { path: path.to_path_buf(), source }),
        }
    }

    /// Whether this is the namespace the calling thread is in.
    pub fn is_current(&self) -> Result<bool, NetError> {
        let current = Path::new("/proc/thread-self/ns/net");
        let here =
            std::fs::metadata(current).map_err(|source| NetError::OpenNetns { path: current.to_path_buf(), source })?;
        let there = self.file.metadata().map_err(|source| NetError::OpenNetns { path: self.path.clone(), source })?;
        Ok(here.dev() == there.dev() && here.ino() == there.ino())
    }

    /// A netlink connection inside this namespace, driven by the current tokio runtime.
    pub fn connect(&self) -> Result<Handle, NetError> {
        let runtime = tokio::runtime::Handle::current();
        let path = self.path.clone();
        let fd = self.file.try_clone().map_err(|source| NetError::OpenNetns { path: path.clone(), source })?;
        let joined = std::thread::spawn(move || {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetError::EnterNetns { path, source })?;
            let _guard = runtime.enter();
            rtnetlink::new_connection().map_err(NetError::Socket)
        })
        .join()
        .map_err(|_| NetError::State("the thread opening a netlink socket in the container panicked".into()))?;
        let (conn, handle, _) = joined?;
        tokio::spawn(conn);
        Ok(handle)
    }
}

/// A netlink connection in the namespace the plugin runs in (the host's).
pub fn connect_host() -> Result<Handle, NetError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::Socket)?;
    tokio::spawn(conn);
    Ok(handle)
}
