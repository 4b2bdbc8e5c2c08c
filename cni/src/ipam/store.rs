//! host-local's on-disk lease store, byte for byte, so knet-cni and Debian's host-local can share a data
//! directory: `DATADIR/NETWORK/<ip>` holds `containerID\r\nifname`, `last_reserved_ip.<rangeset index>`
//! holds the last address handed out from that range set, and `lock` is flock()ed around every change.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The default data directory, as host-local's.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
const LINE_BREAK: &str = "\r\n";

/// Why the lease store could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating the IPAM data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("locking {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("reading the IPAM data directory {path}: {source}")]
    ReadDir { path: PathBuf, source: std::io::Error },
    #[error("writing lease {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("removing lease {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
}

/// One reserved address and who holds it. `ifname` is `None` for leases written by old host-local versions,
/// which stored the container ID alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: Option<String>,
}

impl Lease {
    /// Whether the lease belongs to the attachment `(container_id, ifname)`.
    pub fn held_by(&self, container_id: &str, ifname: &str) -> bool {
        self.container_id == container_id && self.ifname.as_deref().is_none_or(|i| i == ifname)
    }
}

/// A network's lease directory, locked for as long as the value lives.
pub struct Store {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Store {
    /// Opens (creating it if needed) `data_dir/network` and takes its lock.
    pub fn open_locked(data_dir: &Path, network: &str) -> Result<Store, StoreError> {
        let dir = data_dir.join(network);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir { path: dir.clone(), source })?;
        let lock_path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StoreError::Lock { path: lock_path.clone(), source })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| StoreError::Lock { path: lock_path, source: errno.into() })?;
        Ok(Store { dir, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The addresses that have a lease file, without reading them.
    pub fn reserved(&self) -> Result<HashSet<IpAddr>, StoreError> {
        let mut out = HashSet::new();
        for entry in self.entries()? {
            if let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse::<IpAddr>().ok()) {
                out.insert(ip);
            }
        }
        Ok(out)
    }

    /// Every lease with its holder (unreadable files are skipped: another process may remove them).
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let mut out = Vec::new();
        for entry in self.entries()? {
            let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse::<IpAddr>().ok()) else { continue };
            let Ok(content) = std::fs::read_to_string(entry.path()) else { continue };
            out.push(parse_lease(ip, &content));
        }
        Ok(out)
    }

    /// Reserves `ip` for the attachment; `Ok(false)` when it is taken. Records it as the range set's last.
    pub fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: usize) -> Result<bool, StoreError> {
        let path = self.dir.join(ip.to_string());
        let mut f = match OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => return Err(StoreError::Write { path, source }),
        };
        if let Err(source) = f.write_all(format!("{}{LINE_BREAK}{ifname}", container_id.trim()).as_bytes()) {
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::Write { path, source });
        }
        let last = self.dir.join(format!("{LAST_RESERVED_PREFIX}{range_set}"));
        std::fs::write(&last, ip.to_string()).map_err(|source| StoreError::Write { path: last, source })?;
        Ok(true)
    }

    /// The last address handed out from range set `range_set`, if recorded and readable.
    pub fn last_reserved(&self, range_set: usize) -> Option<IpAddr> {
        std::fs::read_to_string(self.dir.join(format!("{LAST_RESERVED_PREFIX}{range_set}"))).ok()?.trim().parse().ok()
    }

    /// Removes the lease file of `ip` (absent is fine).
    pub fn release(&self, ip: IpAddr) -> Result<(), StoreError> {
        let path = self.dir.join(ip.to_string());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Remove { path, source }),
        }
    }

    /// Releases every lease the attachment holds; returns the released addresses.
    pub fn release_attachment(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>, StoreError> {
        let mut released = Vec::new();
        for lease in self.leases()? {
            if lease.held_by(container_id, ifname) {
                self.release(lease.ip)?;
                released.push(lease.ip);
            }
        }
        Ok(released)
    }

    fn entries(&self) -> Result<Vec<std::fs::DirEntry>, StoreError> {
        let read =
            std::fs::read_dir(&self.dir).map_err(|source| StoreError::ReadDir { path: self.dir.clone(), source })?;
        Ok(read.filter_map(Result::ok).collect())
    }
}

/// Parses a lease file's content: `id\r\nifname`, or just `id` (old host-local).
pub fn parse_lease(ip: IpAddr, content: &str) -> Lease {
    let content = content.trim();
    match content.split_once(LINE_BREAK) {
        Some((id, ifname)) => {
            Lease { ip, container_id: id.trim().to_string(), ifname: Some(ifname.trim().to_string()) }
        }
        None => Lease { ip, container_id: content.to_string(), ifname: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lease_formats() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let l = parse_lease(ip, "abc\r\neth0");
        assert_eq!(l, Lease { ip, container_id: "abc".into(), ifname: Some("eth0".into()) });
        assert!(l.held_by("abc", "eth0") && !l.held_by("abc", "eth1") && !l.held_by("abd", "eth0"));
        let old = parse_lease(ip, "abc\n");
        assert!(old.held_by("abc", "eth1"));
    }

    #[test]
    fn reserves_releases_and_remembers_the_last() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open_locked(tmp.path(), "net1").unwrap();
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "fd00::2".parse().unwrap();
        assert!(s.reserve(a, "c1", "eth0", 0).unwrap());
        assert!(!s.reserve(a, "c2", "eth0", 0).unwrap());
        assert!(s.reserve(b, "c1", "eth0", 1).unwrap());
        assert_eq!(std::fs::read_to_string(tmp.path().join("net1/10.0.0.2")).unwrap(), "c1\r\neth0");
        assert_eq!(std::fs::read_to_string(tmp.path().join("net1/last_reserved_ip.1")).unwrap(), "fd00::2");
        assert_eq!(s.last_reserved(0), Some(a));
        assert_eq!(s.reserved().unwrap(), HashSet::from([a, b]));
        let mut released = s.release_attachment("c1", "eth0").unwrap();
        released.sort();
        assert_eq!(released, vec![a, b]);
        assert!(s.leases().unwrap().is_empty());
        assert!(tmp.path().join("net1/lock").exists());
    }
}
