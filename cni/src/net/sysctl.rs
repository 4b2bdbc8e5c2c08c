//! Network sysctls under `/proc/sys/net` (these follow the network namespace of the calling thread).

/// Writes `value` to `/proc/sys/<key>` (`key` like `net/ipv4/ip_forward`).
pub fn write(key: &str, value: &str) -> Result<(), super::NetError> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|source| super::NetError::Sysctl { path, source })
}

/// Sets `key` to `value` unless it already is (reading is cheaper than writing, and works read-only).
pub fn ensure(key: &str, value: &str) -> Result<(), super::NetError> {
    let path = format!("/proc/sys/{key}");
    if std::fs::read_to_string(&path).map(|v| v.trim() == value).unwrap_or(false) {
        return Ok(());
    }
    write(key, value)
}
