//! The six CNI commands, each in its own module, and the conversions of module errors into CNI errors.

pub mod add;
pub mod check;
pub mod del;
pub mod gc;
pub mod status;
pub mod version;

use crate::error::{code, CniError};
use crate::net::NetError;

impl From<NetError> for CniError {
    fn from(e: NetError) -> Self {
        match &e {
            NetError::OpenNetns { .. } | NetError::EnterNetns { .. } => CniError::with_details(
                code::UNKNOWN_CONTAINER,
                "container network namespace is not usable",
                e.to_string(),
            ),
            NetError::Exists(msg) => CniError::new(code::DUPLICATE_ATTACHMENT, msg.clone()),
            NetError::Sysctl { .. } => CniError::with_details(code::IO_FAILURE, "setting a sysctl", e.to_string()),
            _ => CniError::with_details(code::KERNEL, "kernel operation failed", e.to_string()),
        }
    }
}

/// A random locally administered unicast hardware address.
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}
