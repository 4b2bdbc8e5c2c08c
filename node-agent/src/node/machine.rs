//! Facts about the machine the Node reports (kubelet's cAdvisor machine info): CPUs, memory, the root
//! directory's filesystem size, machine and boot IDs, kernel and OS, the default node IP.

use std::net::IpAddr;
use std::path::Path;

/// What the Node says about its machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    pub hostname: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `PRETTY_NAME` of an os-release file.
pub fn parse_os_release(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("PRETTY_NAME="))?;
    Some(line.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string())
}

/// Reads the machine's facts; `root_dir` is the filesystem whose size is the node's ephemeral storage.
pub fn read(root_dir: &Path) -> MachineInfo {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| parse_meminfo(&t)).unwrap_or(0);
    let ephemeral_storage_bytes =
        nix::sys::statvfs::statvfs(root_dir).map(|s| s.blocks() * s.fragment_size()).unwrap_or(0);
    let machine_id = read_trimmed("/etc/machine-id").unwrap_or_default();
    let system_uuid = read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or_else(|| machine_id.clone());
    let uname = nix::sys::utsname::uname().ok();
    MachineInfo {
        cpus,
        memory_bytes,
        ephemeral_storage_bytes,
        machine_id,
        system_uuid,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        kernel_version: uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
        os_image: std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| parse_os_release(&t))
            .unwrap_or_else(|| "Linux".into()),
        hostname: uname.map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// The first global IPv4 address of this network namespace (the default `--node-ip`), else the first
/// global IPv6 one.
pub fn default_node_ip() -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter_map(|a| {
            let sa = a.address?;
            if let Some(v4) = sa.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        })
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    addrs.iter().find(|ip| ip.is_ipv4()).or(addrs.first()).copied()
}

/// The MTU of the interface holding `ip` (SIOCGIFMTU), used for pods when the network part names none.
pub fn mtu_of(ip: IpAddr) -> Option<u32> {
    let ifname = nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let sa = a.address?;
        let matches = sa.as_sockaddr_in().map(|v| IpAddr::V4(v.ip())) == Some(ip)
            || sa.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())) == Some(ip);
        matches.then_some(a.interface_name)
    })?;
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq whose name is copied in (NUL-terminated).
    unsafe {
        let sock = nix::libc::socket(nix::libc::AF_INET, nix::libc::SOCK_DGRAM | nix::libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return None;
        }
        let mut req: nix::libc::ifreq = std::mem::zeroed();
        for (i, b) in ifname.bytes().take(15).enumerate() {
            req.ifr_name[i] = b as nix::libc::c_char;
        }
        let rc = nix::libc::ioctl(sock, nix::libc::SIOCGIFMTU as _, &mut req);
        nix::libc::close(sock);
        (rc == 0).then_some(req.ifr_ifru.ifru_mtu as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(parse_meminfo("MemTotal:       24684096 kB\nMemFree: 1 kB\n"), Some(24684096 * 1024));
        assert_eq!(
            parse_os_release("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }
}
