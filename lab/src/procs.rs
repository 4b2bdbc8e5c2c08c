//! Finding what lives in a network namespace: its nsfs inode (what `/proc/PID/ns/net` links to as
//! `net:[INODE]`), the processes inside it, and the namespaces pinned by bind mounts under a directory (pod
//! sandboxes under the lab's state dir), read from `/proc/self/mountinfo`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The inode of the network namespace at `path` (a `/run/netns/NAME` bind mount or `/proc/PID/ns/net`).
pub fn netns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Every process whose network namespace is one of `inodes`.
pub fn processes_in(inodes: &[u64]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own = std::process::id() as i32;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .and_then(|l| l.to_str().and_then(parse_net_link))
                .is_some_and(|ino| inodes.contains(&ino))
        })
        .collect()
}

/// `net:[4026532281]` → 4026532281.
pub fn parse_net_link(link: &str) -> Option<u64> {
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// A mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's root within its filesystem (`net:[INODE]` for a bind-mounted network namespace).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Parses mountinfo text (fields: id parent major:minor root mount-point options … - fstype source …).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                root: unescape(fields.get(3)?),
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fs_type: fields.get(dash + 1)?.to_string(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The mounts of this process's mount namespace.
pub fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|t| parse_mountinfo(&t)).unwrap_or_default()
}

/// The network namespaces bind-mounted somewhere under `dir`: (mount point, inode).
pub fn netns_mounts_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    mounts()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .filter_map(|m| parse_net_link(&m.root).map(|ino| (m.mount_point, ino)))
        .collect()
}

/// Sends SIGKILL to every process in the network namespaces `inodes` and waits (up to 5 s) until they are gone.
pub fn kill_all_in(inodes: &[u64]) -> Vec<i32> {
    let mut killed = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pids = processes_in(inodes);
        if pids.is_empty() || std::time::Instant::now() > deadline {
            return killed;
        }
        for pid in pids {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
                && !killed.contains(&pid)
            {
                killed.push(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_and_nsfs_roots() {
        let text = "36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    612 29 0:4 net:[4026532281] /run/netns/knet-worker-1 rw shared:310 - nsfs nsfs rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/parent dir"));
        assert_eq!(mounts[0].fs_type, "ext3");
        assert_eq!(mounts[1].root, "net:[4026532281]");
        assert_eq!(parse_net_link(&mounts[1].root), Some(4026532281));
        assert_eq!(parse_net_link("mnt:[1]"), None);
    }

    #[test]
    fn finds_own_namespace_processes() {
        let ino = netns_inode(Path::new("/proc/self/ns/net")).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let found = processes_in(&[ino]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&(child.id() as i32)));
        assert!(!found.contains(&(std::process::id() as i32)), "never lists the caller");
    }
}
