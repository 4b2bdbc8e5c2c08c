//! Network namespaces: opening one by path, and netlink connections bound to one. A connection for another
//! namespace is opened by a thread that setns()'d into it for just that moment: a socket keeps the namespace
//! it was created in, so everything else the plugin does happens in its own namespace.

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

    /// A netlink connection inside this namespace, driven by the current tokio runtime. The calling thread
    /// enters the namespace just long enough to open the socket and then returns to its own; a socket keeps
    /// the namespace it was opened in. (Cheaper than a helper thread: no clone and no wake-up, which under
    /// load cost milliseconds.)
    pub fn connect(&self) -> Result<Handle, NetError> {
        let own_path = Path::new("/proc/thread-self/ns/net");
        let own =
            File::open(own_path).map_err(|source| NetError::OpenNetns { path: own_path.to_path_buf(), source })?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|source| NetError::EnterNetns { path: self.path.clone(), source })?;
        let opened = rtnetlink::new_connection().map_err(NetError::Socket);
        if let Err(source) = setns(own.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Staying in the container's namespace would make every later host operation wrong: stop here.
            eprintln!(
                "knet-cni: cannot return to the plugin's network namespace after opening a socket in {}: {source}",
                self.path.display()
            );
            std::process::exit(1);
        }
        let (conn, handle, _) = opened?;
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
